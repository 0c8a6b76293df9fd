/**
 * dial / dialURL: open a socket (TCP, TLS or unix), then run the handshake:
 * AUTH (if a password is set), CLIENT SETNAME (if a name is set), SELECT (if
 * db != 0) — or `HELLO 3 [AUTH] [SETNAME]` then SELECT with `protocol: 3`.
 * Any failure closes the socket and rejects; nothing is left open.
 */
import net from 'node:net';
import tls from 'node:tls';
import { checkOptionalTimeoutMs } from './deadline.js';
import { ConnClosedError, RedisError, TimeoutError } from './errors.js';
import { newConn, type Conn, type NetConn } from './conn.js';
import { connectChannel, type ConnectTraceContext } from './diagnostics.js';

/** Options of {@link dial} and {@link dialURL}. */
export interface DialOptions {
  /** Database selected after connecting. Default 0 (no SELECT sent). */
  db?: number;
  /** ACL user name; sent with AUTH only when a password is given too. */
  username?: string;
  /** Password; when set (and not empty) AUTH is sent first. */
  password?: string;
  /** Sent as CLIENT SETNAME (visible in CLIENT LIST). */
  clientName?: string;
  /**
   * Sends READONLY in the handshake pipeline (no extra round trip): the
   * connection may read from a Redis Cluster replica. Default false.
   */
  readOnly?: boolean;
  /** TLS: true for defaults (certificate verification on), or Node TLS options. */
  tls?: boolean | tls.ConnectionOptions;
  /** Deadline for TCP/TLS connect and the handshake. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Deadline for each owed reply to arrive whole, from the moment it is the
   * one awaited (see `ConnOptions.readTimeoutMs`); trickling bytes do not
   * extend it. 0 = none. Default 0.
   */
  readTimeoutMs?: number;
  /** Deadline for a backed-up write to drain. 0 = none. Default 0. */
  writeTimeoutMs?: number;
  /** TCP keep-alive initial delay; 0 disables keep-alive. Default 300 000 ms. */
  keepAliveMs?: number;
  /** RESP version: 2 (default) or 3 (sends HELLO 3). */
  protocol?: 2 | 3;
  /** Return bulk strings as UTF-8 strings instead of Buffers. Default false. */
  decodeStrings?: boolean;
  /**
   * Largest reply accepted, in bytes on the wire, aggregates included (every
   * element of an array counts). A larger one breaks the connection with
   * ProtocolError, so a broken or hostile server cannot make the client
   * allocate without bound. Default 512 MiB (Redis's own bulk limit).
   */
  maxReplyBytes?: number;
  /** Aborts the dial (socket destroyed, rejects with the signal's reason). */
  signal?: AbortSignal;
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

/** Opens the socket; rejects with an error naming the address. */
function connectSocket(endpoint: Endpoint, options: DialOptions, name: string): Promise<net.Socket> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const signal = options.signal;
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
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener(useTls ? 'secureConnect' : 'connect', onConnect);
      signal?.removeEventListener('abort', onAbort);
    };
    const failWith = (err: unknown): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => failWith(new ConnClosedError(`redisconn: dial ${name}: ${socketErrorText(err)}`, { cause: err }));
    const onAbort = (): void => failWith(signal?.reason);
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const timer = setTimeout(() => failWith(new TimeoutError(`redisconn: dial ${name}: connect timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', onError);
    socket.once(useTls ? 'secureConnect' : 'connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sends the handshake as one pipeline; rejects with the first error reply. */
async function handshake(conn: Conn, options: DialOptions): Promise<void> {
  const password = options.password ?? '';
  const username = options.username ?? '';
  const db = options.db ?? 0;
  if (options.protocol === 3) {
    const args: string[] = ['3'];
    if (password !== '') args.push('AUTH', username === '' ? 'default' : username, password);
    if (options.clientName) args.push('SETNAME', options.clientName);
    conn.send('HELLO', ...args);
  } else {
    if (password !== '') {
      if (username !== '') conn.send('AUTH', username, password);
      else conn.send('AUTH', password);
    }
    if (options.clientName) conn.send('CLIENT', 'SETNAME', options.clientName);
  }
  if (db !== 0) conn.send('SELECT', db);
  if (options.readOnly === true) conn.send('READONLY');
  const replies = (await conn.do('')) as unknown[];
  const failed = replies.find((reply) => reply instanceof RedisError);
  if (failed !== undefined) throw failed;
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
  const started = performance.now();
  connectChannel.start.publish(context);
  const dialing = connectEndpoint(endpoint, options); // async: never throws
  connectChannel.end.publish(context);
  return dialing.then(
    (conn) => {
      context.durationMs = performance.now() - started;
      context.outcome = 'ok';
      connectChannel.asyncStart.publish(context);
      connectChannel.asyncEnd.publish(context);
      return conn;
    },
    (err: unknown) => {
      context.durationMs = performance.now() - started;
      context.outcome = 'error';
      context.error = err;
      connectChannel.error.publish(context);
      connectChannel.asyncStart.publish(context);
      connectChannel.asyncEnd.publish(context);
      throw err;
    },
  );
}

async function connectEndpoint(endpoint: Endpoint, options: DialOptions = {}): Promise<Conn> {
  checkOptions(options);
  if (options.signal?.aborted) throw options.signal.reason;
  const name = describeEndpoint(endpoint);
  // connectTimeoutMs bounds connect and handshake together, not each of them.
  const started = performance.now();
  const socket = await connectSocket(endpoint, options, name);
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
  const needsHandshake = (options.password ?? '') !== '' || !!options.clientName || (options.db ?? 0) !== 0 || options.protocol === 3 || options.readOnly === true;
  if (!needsHandshake) return conn;
  // The handshake is part of the dial's trace (redisconn:connect), not commands of the connection.
  conn.traceCommands = false;
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const left = Math.max(0, timeoutMs - (performance.now() - started));
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => void conn.close();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([
      handshake(conn, options),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`redisconn: dial ${name}: connect and handshake took longer than ${timeoutMs} ms`)), left);
      }),
    ]);
    conn.traceCommands = true;
    return conn;
  } catch (err) {
    await conn.close();
    if (options.signal?.aborted) throw options.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Connects to `address` (`host:port`, `[ipv6]:port`, or a unix socket path)
 * and runs the handshake. Rejects with an error naming the address when the
 * connection is refused, the name does not resolve, or the deadline passes;
 * with the server's error reply when AUTH/SETNAME/SELECT fail.
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
