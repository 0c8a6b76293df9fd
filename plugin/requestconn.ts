/**
 * Connections borrowed through a request. Each is tracked on its request so
 * one the handler forgot to close is released (with a warning naming the
 * route) once the handler is done: when the response is sent, or when the
 * client went away and the handler has produced its response. (The HTTP
 * status of their errors is set once, by the plugin's onError hook.)
 */
import type { FastifyRequest } from 'fastify';
import type { Arg, Conn, Reply } from '../src/index.js';

/** A borrowed connection lent to one request. */
export class RequestConn implements Conn {
  /** False once the handler closed it (or it was released for the handler). */
  open = true;

  constructor(private readonly inner: Conn) {}

  get protocol(): 2 | 3 {
    return this.inner.protocol;
  }

  get readTimeoutMs(): number {
    return this.inner.readTimeoutMs;
  }

  inFlight(): number {
    return this.inner.inFlight();
  }

  err(): Error | null {
    return this.inner.err();
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.inner.do(cmd, ...args);
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.inner.doWithTimeout(timeoutMs, cmd, ...args);
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.inner.doWithSignal(signal, cmd, ...args);
  }

  send(cmd: string, ...args: Arg[]): void {
    this.inner.send(cmd, ...args);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  receive(): Promise<Reply> {
    return this.inner.receive();
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    return this.inner.receiveWithTimeout(timeoutMs);
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    return this.inner.receiveWithSignal(signal);
  }

  close(): Promise<void> {
    this.open = false;
    return this.inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Closes the connections a request left open, logging a warning for each
 * (the handler should have closed it). Safe to call more than once and for
 * requests that borrowed nothing.
 */
export function releaseForgotten(request: FastifyRequest, conns: RequestConn[]): Promise<void> | undefined {
  let closing: Promise<void>[] | undefined;
  for (const conn of conns) {
    if (!conn.open) continue;
    request.log.warn(
      { route: request.routeOptions.url ?? request.url, method: request.method },
      'redisconn: the handler did not close a Redis connection it borrowed; released it for the handler (close it yourself, e.g. with `await using`)',
    );
    (closing ??= []).push(conn.close());
  }
  conns.length = 0;
  return closing === undefined ? undefined : Promise.all(closing).then(() => undefined);
}
