/**
 * Deadlines, in one place. First the one rule for every timeout, deadline
 * and interval this package takes: a finite number of milliseconds from 0
 * to {@link MAX_TIMEOUT_MS}. Larger values would overflow Node's timers
 * (which then fire after 1 ms), so they are refused with a `RangeError`
 * naming the option, never silently clamped or turned into "no timeout".
 * Where 0 is meaningful it means "none".
 *
 * Then the one behaviour of every deadline on work that is not a single
 * command on a connection (those are the connection's own, allocation-free
 * timers): {@link withinDeadline} for a promise, {@link Deadline} for work
 * that waits under an AbortSignal. A deadline that passes rejects with a
 * TimeoutError naming what timed out and the ms; a signal that aborts
 * rejects with its reason; the timer is cleared once the work settles; the
 * work's own late outcome never becomes an unhandled rejection.
 */
import { TimeoutError } from './errors.js';

/** The longest timeout Node's timers can represent: 2^31 − 1 ms (about 24.8 days). */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * Returns `value` when it is a valid timeout in ms (0 ≤ value ≤ 2^31 − 1,
 * and > 0 when `positive`); throws `RangeError` naming `name` otherwise.
 */
export function checkTimeoutMs(name: string, value: unknown, positive = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (positive && value === 0) || value > MAX_TIMEOUT_MS) {
    throw new RangeError(
      `redisconn: ${name} must be a ${positive ? 'positive' : 'non-negative'} number of ms no greater than ${MAX_TIMEOUT_MS}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** `checkTimeoutMs` for an optional value: undefined passes through. */
export function checkOptionalTimeoutMs(name: string, value: unknown, positive = false): number | undefined {
  return value === undefined ? undefined : checkTimeoutMs(name, value, positive);
}

/** Milliseconds for a message: whole numbers as they are, others to 0.1 ms. */
export function formatMs(ms: number): string {
  return Number.isInteger(ms) ? String(ms) : ms.toFixed(1);
}

/**
 * Whole ms left of a `timeoutMs` deadline that started at `startedAt`
 * (performance.now()), at least 1: rounded down, so a call given it never
 * outlives the deadline (and a message quoting it stays exact).
 */
export function msLeft(timeoutMs: number, startedAt: number): number {
  return Math.max(1, Math.floor(timeoutMs - (performance.now() - startedAt)));
}

/** The error of a deadline that passed: names what timed out and the deadline in ms. */
export function deadlineError(what: string, timeoutMs: number): TimeoutError {
  return new TimeoutError(`redisconn: ${what} timed out after ${formatMs(timeoutMs)} ms`);
}

/** What a deadline does besides rejecting (see {@link withinDeadline}). */
export interface DeadlineHooks<T> {
  /**
   * Hears the error of a deadline or signal that won, once, after the
   * rejection: the caller cancels the work or breaks a connection whose
   * reply is now lost.
   */
  onGiveUp?: (err: unknown) => void;
  /**
   * Gets a value `work` produced after the deadline or signal won (a
   * connection, say), so it is given back instead of leaked. Without it a
   * late value is dropped.
   */
  onLate?: (value: T) => void;
}

/**
 * The one way a promise gets a deadline: settles like `work`, unless
 * `timeoutMs` passes first (rejects with the TimeoutError of
 * {@link deadlineError}, naming `what` and the ms) or `signal` aborts
 * (rejects with its reason; an already aborted signal rejects at once).
 * Whatever `work` does after that is handled, never an unhandled
 * rejection: a late rejection is dropped, a late value goes to
 * `hooks.onLate`. The timer is cleared and the listener removed as soon as
 * the race is decided. Returns `work` itself when there is neither a
 * timeout nor a signal (no timer, no allocation). The timer is an ordinary
 * (ref'd) one: an awaited deadline fires even when nothing else keeps the
 * process alive. Where the deadline must reach work that takes an
 * AbortSignal (a queue), use {@link Deadline}.
 */
export function withinDeadline<T>(work: Promise<T>, what: string, timeoutMs?: number, signal?: AbortSignal | null, hooks?: DeadlineHooks<T>): Promise<T> {
  if (timeoutMs === undefined && (signal === undefined || signal === null)) return work;
  if (signal?.aborted) {
    work.then(hooks?.onLate, ignore);
    hooks?.onGiveUp?.(signal.reason);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let decided = false;
    const giveUp = (err: unknown): void => {
      if (decided) return;
      decided = true;
      finish();
      reject(err);
      hooks?.onGiveUp?.(err);
    };
    const onAbort = (): void => giveUp(signal?.reason);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => giveUp(deadlineError(what, timeoutMs)), timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        if (decided) {
          hooks?.onLate?.(value);
          return;
        }
        decided = true;
        finish();
        resolve(value);
      },
      (err: unknown) => {
        if (decided) return;
        decided = true;
        finish();
        reject(err);
      },
    );
  });
}

function ignore(): void {}

/**
 * A deadline (`timeoutMs`, counted from construction) and a caller's
 * signal as one AbortSignal, for work that waits on something taking a
 * signal (a queue, a dial) rather than a promise to race. It aborts with
 * what {@link withinDeadline} rejects with: the TimeoutError of
 * {@link deadlineError}, or the caller's reason. The signal and the timer
 * are made on first use only, so work that never waits costs nothing;
 * `disarm()` when the work settles, so nothing outlives it. (Not
 * `AbortSignal.any`: on Node 20 a long-lived caller signal keeps every
 * combined signal made from it.)
 */
export class Deadline {
  private controller: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt: number;

  constructor(
    private readonly what: string,
    private readonly timeoutMs: number | undefined,
    readonly outer: AbortSignal | undefined,
  ) {
    this.startedAt = timeoutMs === undefined ? 0 : performance.now();
  }

  /**
   * The signal to wait under: the caller's alone without `timeoutMs`; else,
   * made on first use, one that aborts at the deadline or with the caller's
   * signal.
   */
  signal(): AbortSignal | undefined {
    if (this.timeoutMs === undefined) return this.outer;
    if (this.controller !== null) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const left = Math.max(0, this.timeoutMs - (performance.now() - this.startedAt));
    this.timer = setTimeout(expire, left, this);
    if (this.outer?.aborted) controller.abort(this.outer.reason);
    else this.outer?.addEventListener('abort', this);
    return controller.signal;
  }

  /** The caller's signal aborted (an object listener: no closure per deadline). */
  handleEvent(): void {
    this.controller?.abort(this.outer?.reason);
  }

  /** The work settled: clears the timer and stops listening to the caller's signal. */
  disarm(): void {
    if (this.controller === null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this);
  }

  /** The timer fired. */
  expire(): void {
    this.outer?.removeEventListener('abort', this);
    this.controller?.abort(deadlineError(this.what, this.timeoutMs as number));
  }
}

function expire(deadline: Deadline): void {
  deadline.expire();
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
