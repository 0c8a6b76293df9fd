/**
 * Throwaway `redis-server` processes for tests, examples and benchmarks.
 *
 * Each server listens on loopback on a free port (or the port you ask for), keeps
 * no data on disk, lives in its own temporary directory, and is killed when the
 * Node process exits — also when a test fails or the process is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** TLS material for a server started with `tls`. Paths to PEM files. */
export interface TestServerTLS {
  certFile: string;
  keyFile: string;
  caFile?: string;
  /** Require client certificates (`tls-auth-clients`). Default false. */
  authClients?: boolean;
}

/** Options of {@link startRedisServer}. */
export interface StartRedisServerOptions {
  /** Port to listen on; default a free one. Useful to restart a killed server. */
  port?: number | undefined;
  /** Also (or, with `tls`, only) listen on a unix socket in the server's dir. */
  unixSocket?: boolean | undefined;
  /** Serve TLS on the port instead of plain TCP. */
  tls?: TestServerTLS | undefined;
  /** `requirepass` for the default user. */
  password?: string | undefined;
  /** Extra `redis-server` arguments, e.g. `['--enable-debug-command', 'yes']`. */
  args?: string[] | undefined;
  /** How long to wait for the server to answer PING. Default 10 s. */
  startTimeoutMs?: number | undefined;
  /** The binary to run. Default `redis-server` from PATH. */
  binary?: string | undefined;
  /**
   * Working directory to use instead of a fresh temporary one, e.g. to restart
   * a killed server on its old files. The caller owns it: `stop()` keeps it.
   */
  dir?: string | undefined;
}

/** A running throwaway server. */
export interface TestRedisServer {
  /** `127.0.0.1:<port>`, ready for `dial()`. */
  readonly addr: string;
  /** `redis://127.0.0.1:<port>` (or `rediss://` with TLS). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Path of the unix socket when `unixSocket` was asked for. */
  readonly socketPath: string | undefined;
  /** The server's working directory (removed by `stop()` unless passed in as `dir`). */
  readonly dir: string;
  readonly pid: number;
  /** Terminates the server and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILLs the server (a crash); the port is free again when this resolves. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
}

const running = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killAllNow(): void {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Kill our servers, then let the signal do what it would have done.
    const onSignal = (): void => {
      killAllNow();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/** Asks the OS for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One PING on a fresh socket; true when the server answered anything RESP. */
function pingOnce(port: number, useTls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: net.Socket = useTls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : net.connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once(useTls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    // +PONG, or -NOAUTH when a password is set: either way it is serving.
    socket.once('data', (chunk: Buffer) => done(chunk[0] === 0x2b || chunk[0] === 0x2d));
  });
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a throwaway `redis-server` and resolves once it answers PING.
 * Rejects (with the server's own log lines) when it exits or does not answer
 * within `startTimeoutMs`.
 */
export async function startRedisServer(opts: StartRedisServerOptions = {}): Promise<TestRedisServer> {
  installExitHooks();
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'redisconn-test-'));
  const socketPath = opts.unixSocket ? join(dir, 'redis.sock') : undefined;
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
  if (opts.tls) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile);
    if (opts.tls.caFile) args.push('--tls-ca-cert-file', opts.tls.caFile);
    args.push('--tls-auth-clients', opts.tls.authClients ? 'yes' : 'no');
  } else {
    args.push('--port', String(port));
  }
  if (socketPath) args.push('--unixsocket', socketPath, '--unixsocketperm', '700');
  if (opts.password !== undefined) args.push('--requirepass', opts.password);
  args.push(...(opts.args ?? []));

  const child = spawn(opts.binary ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.once('exit', () => running.delete(child));

  const cleanup = (): void => {
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      cleanup();
      const why = spawnError ? spawnError.message : `exited with ${child.exitCode ?? child.signalCode}`;
      throw new Error(`redis-server on port ${port} failed to start (${why}): ${output.trim()}`);
    }
    if (await pingOnce(port, opts.tls !== undefined)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await waitForExit(child);
      cleanup();
      throw new Error(`redis-server on port ${port} did not answer PING in time: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  const host = '127.0.0.1';
  let stopped: Promise<void> | undefined;
  return {
    addr: `${host}:${port}`,
    url: `${opts.tls ? 'rediss' : 'redis'}://${host}:${port}`,
    host,
    port,
    socketPath,
    dir,
    pid: child.pid ?? 0,
    stop() {
      stopped ??= (async () => {
        child.kill('SIGKILL');
        await waitForExit(child);
        cleanup();
      })();
      return stopped;
    },
    async kill() {
      child.kill('SIGKILL');
      await waitForExit(child);
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
  };
}

export * from './cluster.js';
export * from './sentinel.js';
