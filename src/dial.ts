/**
 * dial / dialURL: open a socket (TCP, TLS or unix), then run the handshake
 * as one pipeline: AUTH (if a password is set), CLIENT SETNAME (if a name is
 * set), SELECT (if db != 0), READONLY (if asked) — or `HELLO 3 [AUTH]
 * [SETNAME]` in place of AUTH and SETNAME with `protocol: 3`. One deadline,
 * `connectTimeoutMs`, bounds connect and handshake together. Any failure
 * closes the socket and rejects; nothing is left open. A step the server
 * refuses is a configuration error: HandshakeError names the step and the
 * option to check.
 */
import net from 'node:net';
import tls from 'node:tls';
import { checkOptionalTimeoutMs, withinDeadline } from './deadline.js';
import { ConnClosedError, HandshakeError, RedisError, type HandshakeCommand } from './errors.js';
import { newConn, type Conn, type NetConn } from './conn.js';
import { connectChannel, traceSettled, type ConnectTraceContext } from './diagnostics.js';

/** Options of {@link dial} and {@link dialURL}. */
export interface DialOptions {
  /** Database selected after connecting. Default 0 (no SELECT sent). */
  db?: number | undefined;
  /** ACL user name; sent with AUTH only when a password is given too. */
  username?: string | undefined;
  /** Password; when set (and not empty) AUTH is sent first. */
  password?: string | undefined;
  /** Sent as CLIENT SETNAME (visible in CLIENT LIST). */
  clientName?: string | undefined;
  /**
   * Sends READONLY in the handshake pipeline (no extra round trip): the
   * connection may read from a Redis Cluster replica. Default false.
   */
  readOnly?: boolean | undefined;
  /** TLS: true for defaults (certificate verification on), or Node TLS options. */
  tls?: boolean | tls.ConnectionOptions | undefined;
  /**
   * Deadline for TCP/TLS connect and the handshake together (not each of
   * them): past it the dial rejects with TimeoutError. Default 10 000 ms.
   */
  connectTimeoutMs?: number | undefined;
  /**
   * Deadline for each owed reply to arrive whole, from the moment it is the
   * one awaited (see `ConnOptions.readTimeoutMs`); trickling bytes do not
   * extend it. 0 = none. Default 0.
   */
  readTimeoutMs?: number | undefined;
  /** Deadline for a backed-up write to drain. 0 = none. Default 0. */
  writeTimeoutMs?: number | undefined;
  /** TCP keep-alive initial delay; 0 disables keep-alive. Default 300 000 ms. */
  keepAliveMs?: number | undefined;
  /** RESP version: 2 (default) or 3 (sends HELLO 3). */
  protocol?: 2 | 3 | undefined;
  /** Return bulk strings as UTF-8 strings instead of Buffers. Default false. */
  decodeStrings?: boolean | undefined;
  /**
   * Largest reply accepted, in bytes on the wire, aggregates included (every
   * element of an array counts). A larger one breaks the connection with
   * ProtocolError, so a broken or hostile server cannot make the client
   * allocate without bound. Default 512 MiB (Redis's own bulk limit).
   */
  maxReplyBytes?: number | undefined;
  /**
   * Aborts the dial (socket closed, rejects with the signal's reason). Only
   * the dial: aborting after it resolved does not touch the connection.
   */
  signal?: AbortSignal | undefined;
}

/** Where to connect: a TCP host/port or a unix socket path. */
export type Endpoint = { host: string; port: number; path?: undefined } | { path: string; host?: undefined; port?: undefined };

const DEFAULT_PORT = 6379;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_MS = 300_000;

/**
 * Parses `host:port`, `[ipv6]:port`, `host` (port 6379) or a unix socket path
 * (anything containing `/`). Throws `TypeError` on anything else.
 */
export function parseAddress(address: string): Endpoint {
  if (typeof address !== 'string' || address === '') throw new TypeError('redisconn: address must be a non-empty string');
  if (address.includes('/')) return { path: address };
  let host: string;
  let portText: string | undefined;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0) throw new TypeError(`redisconn: bad address ${JSON.stringify(address)}: unclosed [`);
    host = address.slice(1, close);
    const rest = address.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new TypeError(`redisconn: bad address ${JSON.stringify(address)}`);
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon >= 0 && address.indexOf(':') !== colon) {
      throw new TypeError(`redisconn: bad address ${JSON.stringify(address)}: put IPv6 hosts in brackets, e.g. [::1]:6379`);
    }
    host = colon < 0 ? address : address.slice(0, colon);
    portText = colon < 0 ? undefined : address.slice(colon + 1);
  }
  const port = portText === undefined ? DEFAULT_PORT : Number(portText);
  if (host === '' || !Number.isInteger(port) || portText === '' || !/^\d+$/.test(portText ?? '0')) {
    throw new TypeError(`redisconn: bad address ${JSON.stringify(address)}: expected host:port`);
  }
  if (port < 1 || port > 65535) throw new TypeError(`redisconn: bad address ${JSON.stringify(address)}: port ${port} out of range (1-65535)`);
  return { host, port };
}

function describeEndpoint(endpoint: Endpoint): string {
  if (endpoint.path !== undefined) return endpoint.path;
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

function checkOptions(options: DialOptions): void {
  const { db, protocol } = options;
  if (db !== undefined && (!Number.isInteger(db) || db < 0)) throw new RangeError(`redisconn: db must be a non-negative integer, got ${db}`);
  if (protocol !== undefined && protocol !== 2 && protocol !== 3) throw new RangeError(`redisconn: protocol must be 2 or 3, got ${String(protocol)}`);
  for (const key of ['connectTimeoutMs', 'readTimeoutMs', 'writeTimeoutMs', 'keepAliveMs'] as const) checkOptionalTimeoutMs(key, options[key]);
  const maxReplyBytes = options.maxReplyBytes;
  if (maxReplyBytes !== undefined && (!Number.isInteger(maxReplyBytes) || maxReplyBytes <= 0)) {
    throw new RangeError(`redisconn: maxReplyBytes must be a positive integer, got ${String(maxReplyBytes)}`);
  }
}

/**
 * A socket error without the address Node appends ("connect ECONNREFUSED
 * 127.0.0.1:6379"): the message names the address once, before it.
 */
function socketErrorText(err: Error): string {
  const { syscall, code } = err as NodeJS.ErrnoException;
  return typeof syscall === 'string' && typeof code === 'string' ? `${syscall} ${code}` : err.message;
}

/**
 * Opens the socket; rejects with an error naming the address. No deadline
 * of its own: `cancelled` (the dial's deadline or signal) destroys the
 * socket and rejects with its reason.
 */
function connectSocket(endpoint: Endpoint, options: DialOptions, name: string, cancelled: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const useTls = options.tls !== undefined && options.tls !== false;
    if (useTls) {
      const tlsOptions: tls.ConnectionOptions = options.tls === true ? {} : { ...(options.tls as tls.ConnectionOptions) };
      if (endpoint.host !== undefined && tlsOptions.servername === undefined && net.isIP(endpoint.host) === 0) tlsOptions.servername = endpoint.host;
      socket = endpoint.path !== undefined ? tls.connect({ ...tlsOptions, path: endpoint.path }) : tls.connect({ ...tlsOptions, host: endpoint.host, port: endpoint.port });
    } else {
      socket = endpoint.path !== undefined ? net.connect(endpoint.path) : net.connect(endpoint.port, endpoint.host);
    }
    const cleanup = (): void => {
      socket.removeListener('error', onError);
      socket.removeListener(useTls ? 'secureConnect' : 'connect', onConnect);
      cancelled.removeEventListener('abort', onCancel);
    };
    const failWith = (err: unknown): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => failWith(new ConnClosedError(`redisconn: dial ${name}: ${socketErrorText(err)}`, { cause: err }));
    const onCancel = (): void => failWith(cancelled.reason);
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once(useTls ? 'secureConnect' : 'connect', onConnect);
    cancelled.addEventListener('abort', onCancel, { once: true });
  });
}

/** A handshake step as sent: the name HandshakeError gives it, and how its message shows it. */
interface Step {
  command: HandshakeCommand;
  /** The command as shown in the message: never a password or a user name. */
  shown: string;
}

/**
 * Sends the handshake as one pipeline; rejects with a HandshakeError for
 * the first step the server refused (replies come in the order sent).
 */
async function handshake(conn: Conn, options: DialOptions, name: string): Promise<void> {
  const password = options.password ?? '';
  const username = options.username ?? '';
  const db = options.db ?? 0;
  const steps: Step[] = [];
  if (options.protocol === 3) {
    const args: string[] = ['3'];
    if (password !== '') args.push('AUTH', username === '' ? 'default' : username, password);
    if (options.clientName) args.push('SETNAME', options.clientName);
    conn.send('HELLO', ...args);
    steps.push({ command: 'HELLO', shown: 'HELLO 3' });
  } else {
    if (password !== '') {
      if (username !== '') conn.send('AUTH', username, password);
      else conn.send('AUTH', password);
      steps.push({ command: 'AUTH', shown: 'AUTH' });
    }
    if (options.clientName) {
      conn.send('CLIENT', 'SETNAME', options.clientName);
      steps.push({ command: 'CLIENT SETNAME', shown: 'CLIENT SETNAME' });
    }
  }
  if (db !== 0) {
    conn.send('SELECT', db);
    steps.push({ command: 'SELECT', shown: `SELECT ${db}` });
  }
  if (options.readOnly === true) {
    conn.send('READONLY');
    steps.push({ command: 'READONLY', shown: 'READONLY' });
  }
  const replies = (await conn.do('')) as unknown[];
  for (let i = 0; i < replies.length; i++) {
    const reply = replies[i];
    const step = steps[i];
    if (reply instanceof RedisError && step !== undefined) throw new HandshakeError(name, step.command, step.shown, reply);
  }
  if (options.protocol === 3) (conn as NetConn).protocol = 3;
}

/**
 * Dials an already parsed endpoint; shared by {@link dial} and
 * {@link dialURL}. Traced on `redisconn:connect` when someone subscribes.
 */
export function dialEndpoint(endpoint: Endpoint, options: DialOptions = {}): Promise<Conn> {
  return connectChannel.hasSubscribers ? tracedDial(endpoint, options) : connectEndpoint(endpoint, options);
}

/** {@link dialEndpoint} publishing its `redisconn:connect` context. */
function tracedDial(endpoint: Endpoint, options: DialOptions): Promise<Conn> {
  const db = options.db;
  const context: ConnectTraceContext = {
    serverAddress: endpoint.path ?? endpoint.host,
    serverPort: endpoint.port,
    db: typeof db === 'number' ? db : 0,
    tls: options.tls !== undefined && options.tls !== false,
    protocol: options.protocol === 3 ? 3 : 2,
    durationMs: undefined,
    outcome: undefined,
    error: undefined,
  };
  return traceSettled(connectChannel, context, () => connectEndpoint(endpoint, options));
}

/** True when the dial sends anything after connecting. */
function needsHandshake(options: DialOptions): boolean {
  return (options.password ?? '') !== '' || !!options.clientName || (options.db ?? 0) !== 0 || options.protocol === 3 || options.readOnly === true;
}

/**
 * Connect and handshake under one deadline (`connectTimeoutMs`) and the
 * caller's signal: whichever ends the dial first also cancels the step
 * still running, so the socket is closed and nothing is left open.
 */
function connectEndpoint(endpoint: Endpoint, options: DialOptions = {}): Promise<Conn> {
  try {
    checkOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);
  const name = describeEndpoint(endpoint);
  const handshaking = needsHandshake(options);
  const cancel = new AbortController();
  return withinDeadline(
    open(endpoint, options, name, handshaking, cancel.signal),
    `dial ${name}: ${handshaking ? 'connect and handshake' : 'connect'}`,
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    options.signal,
    { onGiveUp: (err) => cancel.abort(err), onLate: closeLate },
  );
}

/** A connection whose dial was given up just as it completed. */
function closeLate(conn: Conn): void {
  void conn.close();
}

/** Connects, then runs the handshake (if any); `cancelled` stops either step and closes the socket. */
async function open(endpoint: Endpoint, options: DialOptions, name: string, handshaking: boolean, cancelled: AbortSignal): Promise<Conn> {
  const socket = await connectSocket(endpoint, options, name, cancelled);
  // Given up between the connect and this continuation: no listener would hear it any more.
  if (cancelled.aborted) {
    socket.destroy();
    throw cancelled.reason;
  }
  socket.setNoDelay(true);
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
  if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
  const conn = newConn(socket, {
    name,
    readTimeoutMs: options.readTimeoutMs ?? 0,
    writeTimeoutMs: options.writeTimeoutMs ?? 0,
    decodeStrings: options.decodeStrings ?? false,
    maxReplyBytes: options.maxReplyBytes,
    host: endpoint.path ?? endpoint.host,
    port: endpoint.port,
    db: options.db ?? 0,
  }) as NetConn;
  if (!handshaking) return conn;
  // The handshake is part of the dial's trace (redisconn:connect), not commands of the connection.
  conn.traceCommands = false;
  const onCancel = (): void => void conn.close();
  cancelled.addEventListener('abort', onCancel, { once: true });
  try {
    await handshake(conn, options, name);
  } catch (err) {
    await conn.close();
    throw err;
  } finally {
    cancelled.removeEventListener('abort', onCancel);
  }
  conn.traceCommands = true;
  return conn;
}

/**
 * Connects to `address` (`host:port`, `[ipv6]:port`, or a unix socket path)
 * and runs the handshake. Rejects with an error naming the address when the
 * connection is refused, the name does not resolve, or `connectTimeoutMs`
 * passes (TimeoutError); with {@link HandshakeError} when the server refuses
 * a handshake step (AUTH, HELLO, CLIENT SETNAME, SELECT, READONLY).
 */
export function dial(address: string, options: DialOptions = {}): Promise<Conn> {
  let endpoint: Endpoint;
  try {
    endpoint = parseAddress(address);
  } catch (err) {
    return Promise.reject(err);
  }
  return dialEndpoint(endpoint, options);
}
