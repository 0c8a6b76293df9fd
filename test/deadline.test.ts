/**
 * The one deadline behaviour (src/deadline.ts), on fake timers: a deadline
 * that passes rejects with a TimeoutError naming what and the ms; an abort
 * rejects with the signal's reason; the timer and the listener go once the
 * race is decided; the losing side never becomes an unhandled rejection and
 * a late value reaches `onLate`. Pool, dial, pub/sub and cluster suites test
 * the same behaviour where it is used, against real servers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadline, deadlineError, withinDeadline } from '../src/deadline.js';
import { TimeoutError } from '../src/errors.js';
import { guardProcessErrors, settle } from './helpers.js';

guardProcessErrors();

/** A promise settled from outside. */
function pending<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every ready promise callback run. */
async function flushPromises(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('withinDeadline', () => {
  it('without a timeout or a signal returns the work itself (no timer)', () => {
    const work = Promise.resolve(1);
    expect(withinDeadline(work, 'nothing', undefined, null)).toBe(work);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('settles like the work when it wins, and clears its timer and listener', async () => {
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, 'removeEventListener');
    const work = pending<string>();
    const outcome = settle(withinDeadline(work.promise, 'the work', 1_000, controller.signal));
    expect(vi.getTimerCount()).toBe(1);
    work.resolve('done');
    expect(await outcome).toEqual({ ok: true, value: 'done' });
    expect(vi.getTimerCount()).toBe(0);
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));

    const failing = pending<string>();
    const failed = settle(withinDeadline(failing.promise, 'the work', 1_000));
    const reason = new Error('work failed');
    failing.reject(reason);
    expect(await failed).toEqual({ ok: false, error: reason });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a deadline that passes rejects with TimeoutError naming what and the ms; a late rejection is dropped', async () => {
    const work = pending<string>();
    const gaveUp = vi.fn();
    const outcome = settle(withinDeadline(work.promise, 'dial 127.0.0.1:6379: connect', 250, null, { onGiveUp: gaveUp }));
    await vi.advanceTimersByTimeAsync(249);
    expect(gaveUp).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    const result = await outcome;
    expect(result.ok).toBe(false);
    const err = (result as { error: unknown }).error;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'REDIS_TIMEOUT', message: 'redisconn: dial 127.0.0.1:6379: connect timed out after 250 ms' });
    expect(gaveUp).toHaveBeenCalledExactlyOnceWith(err);
    // The loser settles later: neither an unhandled rejection (guardProcessErrors) nor a second give-up.
    work.reject(new Error('too late'));
    await flushPromises();
    expect(gaveUp).toHaveBeenCalledTimes(1);
  });

  it('fractional ms are said to 0.1 ms', () => {
    expect(deadlineError('x', 12.345).message).toBe('redisconn: x timed out after 12.3 ms');
  });

  it('an abort rejects with the signal reason and clears the timer; a late value goes to onLate', async () => {
    const controller = new AbortController();
    const work = pending<{ id: number }>();
    const late = vi.fn();
    const gaveUp = vi.fn();
    const outcome = settle(withinDeadline(work.promise, 'the work', 1_000, controller.signal, { onGiveUp: gaveUp, onLate: late }));
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(await outcome).toEqual({ ok: false, error: reason });
    expect(gaveUp).toHaveBeenCalledExactlyOnceWith(reason);
    expect(vi.getTimerCount()).toBe(0);
    const value = { id: 1 };
    work.resolve(value);
    await flushPromises();
    expect(late).toHaveBeenCalledExactlyOnceWith(value);
  });

  it('an already aborted signal rejects at once, without a timer; a late value still goes to onLate', async () => {
    const reason = new Error('aborted before');
    const work = pending<string>();
    const late = vi.fn();
    const gaveUp = vi.fn();
    const outcome = settle(withinDeadline(work.promise, 'the work', 1_000, AbortSignal.abort(reason), { onGiveUp: gaveUp, onLate: late }));
    expect(vi.getTimerCount()).toBe(0);
    expect(await outcome).toEqual({ ok: false, error: reason });
    expect(gaveUp).toHaveBeenCalledExactlyOnceWith(reason);
    work.resolve('value');
    await flushPromises();
    expect(late).toHaveBeenCalledExactlyOnceWith('value');
  });

  it('a timeout that wins leaves no listener on the signal; a later abort changes nothing', async () => {
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, 'removeEventListener');
    const gaveUp = vi.fn();
    const outcome = settle(withinDeadline(pending<void>().promise, 'the work', 10, controller.signal, { onGiveUp: gaveUp }));
    await vi.advanceTimersByTimeAsync(10);
    expect((await outcome).ok).toBe(false);
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));
    controller.abort(new Error('after the deadline'));
    expect(gaveUp).toHaveBeenCalledTimes(1);
  });
});

describe('Deadline', () => {
  it('makes no signal and no timer until asked; without a timeout it is the caller signal', () => {
    const controller = new AbortController();
    expect(new Deadline('x', undefined, controller.signal).signal()).toBe(controller.signal);
    expect(new Deadline('x', undefined, undefined).signal()).toBeUndefined();
    new Deadline('x', 100, controller.signal);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts with the TimeoutError naming what and the ms at the deadline, counted from construction', async () => {
    const deadline = new Deadline('waiting for a connection from the pool', 300, undefined);
    await vi.advanceTimersByTimeAsync(100);
    const signal = deadline.signal() as AbortSignal;
    expect(deadline.signal()).toBe(signal);
    await vi.advanceTimersByTimeAsync(199);
    expect(signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
    expect((signal.reason as Error).message).toBe('redisconn: waiting for a connection from the pool timed out after 300 ms');
  });

  it("aborts with the caller's reason (already aborted or later); disarm clears the timer and the listener", () => {
    const early = new Error('early');
    expect(new Deadline('x', 100, AbortSignal.abort(early)).signal()?.reason).toBe(early);

    const controller = new AbortController();
    const deadline = new Deadline('x', 100, controller.signal);
    const signal = deadline.signal() as AbortSignal;
    const later = new Error('later');
    controller.abort(later);
    expect(signal.reason).toBe(later);

    vi.clearAllTimers();
    const outer = new AbortController();
    const remove = vi.spyOn(outer.signal, 'removeEventListener');
    const armed = new Deadline('x', 100, outer.signal);
    armed.signal();
    expect(vi.getTimerCount()).toBe(1);
    armed.disarm();
    expect(vi.getTimerCount()).toBe(0);
    expect(remove).toHaveBeenCalledWith('abort', armed);
  });
});
