/**
 * The plugin's view of the `redisconn:command` TracingChannel: one
 * process-wide subscriber that times each command (from `start`, when it is
 * written, to `asyncEnd`, when its reply or error settled it) and hands it
 * to the watchers of the source it ran on. The command-duration histogram
 * (`metrics.commandDuration`) and the slow command log (`slowCommandMs`) are
 * such watchers.
 *
 * Attribution. The channel is process-wide: every app, pool and directly
 * dialed connection in the process publishes on it. A command belongs to
 * the source its connection came from, the context's `source` (the Pool,
 * Cluster or SentinelPool object the app holds, for its shared connection,
 * leases and exclusive borrows alike; undefined for a connection from
 * `dial()`), and goes to the watchers of that very object only. Matching
 * by server address instead would count a command twice (or for the wrong
 * app) when two registrations talk to one server, and would have to follow
 * a cluster's or a sentinel pool's changing servers.
 *
 * Cost. Subscribed only while some watcher exists: with none, the client's
 * hot paths see no subscriber. With some, a command of a watched source
 * costs a clock read and a WeakMap entry at `start`, and one lookup at
 * `asyncEnd`; other sources' commands cost one Map lookup. The context's
 * public fields are never written.
 */
import { commandChannel, type CommandTraceContext } from '../src/index.js';

/** Told of each settled command of the watched source, with how long it took in ms. */
export type CommandWatcher = (command: CommandTraceContext, durationMs: number) => void;

/** Watchers by source object. */
const watchers = new Map<object | undefined, Set<CommandWatcher>>();
/** When each command of a watched source was written (`performance.now()`), by its context. */
const started = new WeakMap<CommandTraceContext, number>();
/** Watchers that threw once (warned about once, not again). */
const warned = new WeakSet<CommandWatcher>();

const subscribers = {
  start(context: CommandTraceContext): void {
    if (watchers.has(context.source)) started.set(context, performance.now());
  },
  asyncEnd(context: CommandTraceContext): void {
    const at = started.get(context);
    if (at === undefined) return;
    started.delete(context);
    const durationMs = performance.now() - at;
    const set = watchers.get(context.source);
    if (set === undefined) return;
    for (const watcher of set) {
      // A subscriber that throws would surface as an uncaught exception in the app.
      try {
        watcher(context, durationMs);
      } catch (err) {
        if (!warned.has(watcher)) {
          warned.add(watcher);
          process.emitWarning(`redisconn: a command watcher threw (${String(err)}); its later errors are ignored`);
        }
      }
    }
  },
};

/**
 * Calls `watcher` for each command run on a connection of `source` (once
 * settled, with its duration); returns what stops it (idempotent). The
 * channel is subscribed while any watcher exists.
 */
export function watchCommands(source: object, watcher: CommandWatcher): () => void {
  if (watchers.size === 0) commandChannel.subscribe(subscribers);
  let set = watchers.get(source);
  if (set === undefined) {
    set = new Set();
    watchers.set(source, set);
  }
  set.add(watcher);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    const current = watchers.get(source);
    if (current === undefined) return;
    current.delete(watcher);
    if (current.size > 0) return;
    watchers.delete(source);
    if (watchers.size === 0) commandChannel.unsubscribe(subscribers);
  };
}
