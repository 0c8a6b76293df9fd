/**
 * The throwaway redis-server launcher: free distinct ports, stop() really
 * stops, kill() + restart on the same port, extra args, unix sockets,
 * passwords, pause/resume, and a clear error when the server cannot start.
 */
import { existsSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dial } from '../src/dial.js';
import { ConnClosedError, RedisError, TimeoutError } from '../src/errors.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { alive, guardProcessErrors, rejection, text } from './helpers.js';

guardProcessErrors();

const started: TestRedisServer[] = [];

async function start(opts: Parameters<typeof startRedisServer>[0] = {}): Promise<TestRedisServer> {
  const server = await startRedisServer(opts);
  started.push(server);
  return server;
}

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
});

/** True while a process with this pid exists. */
describe('startRedisServer', () => {
  it('starts servers on distinct free ports, each answering PING', async () => {
    const servers = await Promise.all([start(), start(), start()]);
    const ports = servers.map((server) => server.port);
    expect(new Set(ports).size).toBe(3);
    for (const server of servers) {
      expect(server.addr).toBe(`127.0.0.1:${server.port}`);
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(alive(server.pid)).toBe(true);
      const conn = await dial(server.addr);
      expect(await conn.do('PING')).toBe('PONG');
      // Each is its own server: the port it reports is the one it listens on.
      const [, port] = (await conn.do('CONFIG', 'GET', 'port')) as Buffer[];
      expect(text(port)).toBe(String(server.port));
      await conn.close();
    }
  });

  it('keeps no data on disk (no RDB save points, no AOF)', async () => {
    const server = await start();
    const conn = await dial(server.addr);
    const save = (await conn.do('CONFIG', 'GET', 'save')) as Buffer[];
    const aof = (await conn.do('CONFIG', 'GET', 'appendonly')) as Buffer[];
    expect(text(save[1])).toBe('');
    expect(text(aof[1])).toBe('no');
    expect(text(((await conn.do('CONFIG', 'GET', 'dir')) as Buffer[])[1])).toBe(server.dir);
    await conn.close();
  });

  it('stop() kills the process and removes its directory; a second stop() is harmless', async () => {
    const server = await start();
    const conn = await dial(server.addr);
    expect(existsSync(server.dir)).toBe(true);
    expect(alive(server.pid)).toBe(true);
    await server.stop();
    expect(() => process.kill(server.pid, 0)).toThrow();
    expect(existsSync(server.dir)).toBe(false);
    await server.stop();
    // A conn to the stopped server is closed.
    const err = await rejection(conn.do('PING'));
    expect(err).toBeInstanceOf(ConnClosedError);
    expect(await rejection(dial(server.addr))).toBeInstanceOf(ConnClosedError);
  });

  it('restarts on the same port after kill(), with no data kept', async () => {
    const first = await start();
    const conn = await dial(first.addr);
    await conn.do('SET', 'survives', 'no');
    await first.kill();
    expect(alive(first.pid)).toBe(false);
    expect(await rejection(conn.do('PING'))).toBeInstanceOf(ConnClosedError);
    expect(await rejection(dial(first.addr))).toBeInstanceOf(ConnClosedError);

    const second = await start({ port: first.port });
    expect(second.port).toBe(first.port);
    expect(second.pid).not.toBe(first.pid);
    const again = await dial(second.addr);
    expect(await again.do('PING')).toBe('PONG');
    expect(await again.do('GET', 'survives')).toBeNull();
    await again.close();
  });

  it('passes extra args to redis-server', async () => {
    const server = await start({ args: ['--maxmemory', '12345678', '--enable-debug-command', 'yes'] });
    const conn = await dial(server.addr);
    const [, maxmemory] = (await conn.do('CONFIG', 'GET', 'maxmemory')) as Buffer[];
    expect(text(maxmemory)).toBe('12345678');
    expect(await conn.do('DEBUG', 'SLEEP', '0')).toBe('OK');
    await conn.close();
  });

  it('without --enable-debug-command, DEBUG is refused (so the arg above mattered)', async () => {
    const server = await start();
    const conn = await dial(server.addr);
    const err = await rejection(conn.do('DEBUG', 'SLEEP', '0'));
    expect(err).toBeInstanceOf(RedisError);
    await conn.close();
  });

  it('unixSocket: listens on a socket inside its directory', async () => {
    const server = await start({ unixSocket: true });
    expect(server.socketPath).toBeDefined();
    const socketPath = server.socketPath as string;
    expect(socketPath.startsWith(server.dir)).toBe(true);
    expect(statSync(socketPath).isSocket()).toBe(true);
    const conn = await dial(socketPath);
    expect(await conn.do('PING')).toBe('PONG');
    await conn.close();
  });

  it('password: requirepass is set (NOAUTH without it, OK with it)', async () => {
    const server = await start({ password: 'launcher-pw' });
    const anonymous = await dial(server.addr);
    expect(((await rejection(anonymous.do('PING'))) as RedisError).code).toBe('NOAUTH');
    const authed = await dial(server.addr, { password: 'launcher-pw' });
    expect(await authed.do('PING')).toBe('PONG');
    await Promise.all([anonymous.close(), authed.close()]);
  });

  it('pause() freezes the server and resume() thaws it', async () => {
    const server = await start();
    const conn = await dial(server.addr);
    server.pause();
    const pending = conn.doWithTimeout(2000, 'PING');
    // A paused server's silence sends no event: it must stay silent for a while.
    const early = await Promise.race([pending.then(() => 'answered', () => 'failed'), new Promise((r) => setTimeout(() => r('silent'), 200))]);
    expect(early).toBe('silent');
    server.resume();
    expect(await pending).toBe('PONG');
    await conn.close();
  });

  it('a paused server times a read out', async () => {
    const server = await start();
    const conn = await dial(server.addr);
    server.pause();
    try {
      expect(await rejection(conn.doWithTimeout(150, 'PING'))).toBeInstanceOf(TimeoutError);
    } finally {
      server.resume();
    }
  });

  it('rejects with the server output when redis-server cannot start', async () => {
    const port = await freePort();
    const err = await rejection(startRedisServer({ port, args: ['--no-such-directive', 'x'] }));
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`port ${port}`);
    expect((err as Error).message).toMatch(/failed to start/);
    expect((err as Error).message).toMatch(/no-such-directive/i);
  });

  it('rejects when the binary does not exist', async () => {
    const err = await rejection(startRedisServer({ binary: '/nonexistent/redis-server' }));
    expect((err as Error).message).toMatch(/failed to start/);
  });

  it('freePort returns a port nothing listens on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(await rejection(dial(`127.0.0.1:${port}`))).toBeInstanceOf(ConnClosedError);
  });
});
