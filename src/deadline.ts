/**
 * The one rule for every timeout, deadline and interval this package takes:
 * a finite number of milliseconds from 0 to {@link MAX_TIMEOUT_MS}. Larger
 * values would overflow Node's timers (which then fire after 1 ms), so they
 * are refused with a `RangeError` naming the option, never silently clamped
 * or turned into "no timeout". Where 0 is meaningful it means "none".
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

/**
 * Settles like `work`, unless `timeoutMs` passes first (rejects with
 * TimeoutError saying `what` took too long) or `signal` aborts (rejects
 * with its reason). The outcome of `work` that comes later is dropped, a
 * rejection included (never unhandled). No timer when neither is given.
 * `onGiveUp` hears the error of a deadline or signal that won (the caller
 * may have to break a connection whose reply is now lost).
 */
export function withinDeadline<T>(work: Promise<T>, what: string, timeoutMs?: number, signal?: AbortSignal | null, onGiveUp?: (err: unknown) => void): Promise<T> {
  if (timeoutMs === undefined && (signal === undefined || signal === null)) return work;
  if (signal?.aborted) {
    work.catch(() => {});
    onGiveUp?.(signal.reason);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const fail = (err: unknown): void => {
      finish();
      reject(err);
    };
    const giveUp = (err: unknown): void => {
      fail(err);
      onGiveUp?.(err);
    };
    const onAbort = (): void => giveUp(signal?.reason);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => giveUp(new TimeoutError(`redisconn: ${what} took longer than ${formatMs(timeoutMs)} ms`)), timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        finish();
        resolve(value);
      },
      fail,
    );
  });
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
