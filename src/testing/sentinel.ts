/**
 * Throwaway Redis Sentinel deployment for tests: one master, its replicas and
 * a few sentinels, all real `redis-server` processes on loopback, each in its
 * own temp dir and killed when the Node process exits. Helpers make it move:
 * kill the master and wait for the failover, force a failover, restart a
 * killed data node or sentinel.
 *
 * Every wait polls with a deadline and throws an error naming the state that
 * was not reached; nothing sleeps for a fixed time.
 *
 * Notes on redis-sentinel 7.0 that shaped this:
 * - A sentinel needs its config file as the first argument and rewrites it,
 *   so every process runs through a two-line launcher script in its dir
 *   (`exec redis-server <dir>/<conf> [--sentinel] "$@"`), handed to
 *   `startRedisServer` as its binary: the same exit hooks, readiness PING and
 *   kill/pause/resume as every other throwaway server. Data nodes get a
 *   config file too, so the `REPLICAOF` + `CONFIG REWRITE` that sentinels
 *   send survives a restart, as in a real deployment.
 * - Sentinels find each other through hello messages published every 2 s and
 *   poll INFO every 10 s; a node that comes back as master after a failover is
 *   turned into a replica only after 4 hello periods (8 s). Each sentinel is
 *   therefore tuned with `SENTINEL DEBUG publish-period 250 info-period 1000`
 *   (on start and restart). Failure detection and election are left at
 *   Redis's defaults (ping 1 s, ask 1 s, up to 1 s of random desync before a
 *   failover starts), so failovers take as long as in production with the
 *   same `down-after-milliseconds`.
 * - After a failover the old master (if alive) keeps saying ROLE master until
 *   a sentinel converts it; `failover()` waits for that, `waitForFailover()`
 *   does not.
 * - Sentinels rewrite `sentinel auth-pass` unquoted, so a data password with a
 *   space or quote would make a restarted sentinel reject its own config;
 *   `restartSentinel` re-quotes that line first.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Conn } from '../conn.js';
import { dial } from '../dial.js';
import { RedisError } from '../errors.js';
import type { Arg } from '../resp/encode.js';
import type { Reply } from '../resp/decode.js';
import { startRedisServer, type TestRedisServer } from './index.js';
import { errorText, PortRange, waitUntil } from './poll.js';

/** Options of {@link startRedisSentinel}. */
export interface StartRedisSentinelOptions {
  /** Replicas of the master. Default 1. */
  replicas?: number | undefined;
  /** Sentinel processes. Default 3. */
  sentinels?: number | undefined;
  /** Sentinels that must agree the master is down. Default 2 (1 with a single sentinel). */
  quorum?: number | undefined;
  /** The monitored master's name. Default `mymaster`. */
  masterName?: string | undefined;
  /** `sentinel down-after-milliseconds`. Default 1000. */
  downAfterMs?: number | undefined;
  /** `sentinel failover-timeout`. Default 3000. */
  failoverTimeoutMs?: number | undefined;
  /** `requirepass` and `masterauth` on the data nodes (and `sentinel auth-pass` on the sentinels). */
  password?: string | undefined;
  /** `requirepass` on the sentinels (they use it to talk to each other too). */
  sentinelPassword?: string | undefined;
  /** Deadline for starting every process and the sentinels agreeing on the deployment. Default 30 s. */
  startTimeoutMs?: number | undefined;
  /** Default deadline of each later helper (failover, restarts, ...). Default 15 s. */
  operationTimeoutMs?: number | undefined;
}

/** Options of {@link TestRedisSentinel.waitForFailover} and {@link TestRedisSentinel.waitSettled}. */
export interface TestSentinelWaitOptions {
  /** Default: the deployment's `operationTimeoutMs`. */
  timeoutMs?: number | undefined;
}

/** What {@link TestRedisSentinel.waitForFailover} resolves. */
export interface TestSentinelFailover {
  /** `host:port` of the promoted master. */
  newMaster: string;
  /** How long the wait took, in ms. */
  ms: number;
}

/** What {@link TestRedisSentinel.failover} resolves. */
export interface TestSentinelForcedFailover extends TestSentinelFailover {
  /** `host:port` of the master before the failover. */
  old: string;
}

/** A running throwaway sentinel deployment made by {@link startRedisSentinel}. */
export interface TestRedisSentinel {
  /** The monitored master's name. */
  readonly masterName: string;
  /** `host:port` of each sentinel, as started (kept across restarts). */
  readonly sentinels: string[];
  /** Each sentinel's current process handle (a new one after `restartSentinel`). */
  readonly sentinelNodes: TestRedisServer[];
  /** The master's process handle, as last learnt (start, `currentMaster`, the failover helpers). */
  master(): TestRedisServer;
  /** Every data node other than {@link master}, killed ones included. */
  replicas(): TestRedisServer[];
  /** Every data node's current handle, in start order (the first master first), killed ones included. */
  dataNodes(): TestRedisServer[];
  /** `host:port` of the master per `SENTINEL GET-MASTER-ADDR-BY-NAME` on the first live sentinel that answers. */
  currentMaster(): Promise<string>;
  /**
   * SIGKILLs the current master (per the sentinels) and resolves once its
   * port is free, without waiting for a failover. Its dir stays for
   * `restartNode`.
   */
  killMaster(): Promise<{ old: string }>;
  /**
   * Resolves once every live sentinel names the same master, other than
   * `from`, and that node answers ROLE master. Does not wait for the other
   * nodes to follow it. Rejects after `timeoutMs` naming what was not reached.
   */
  waitForFailover(from: string, opts?: TestSentinelWaitOptions): Promise<TestSentinelFailover>;
  /**
   * Waits until the deployment is settled (see {@link waitSettled}), sends
   * `SENTINEL FAILOVER <name>` to a live sentinel (no agreement needed, the
   * master stays up), then waits as {@link waitForFailover} does, and further
   * until the deployment is settled again: every live data node follows the
   * new master (the old one converted by the sentinels) with its link up,
   * and every live sentinel sees them all. `ms` is the time until the
   * sentinels agreed on the new master.
   */
  failover(): Promise<TestSentinelForcedFailover>;
  /**
   * Starts a killed data node again on its port and dir (its config file as
   * the sentinels last rewrote it) and resolves once the deployment is
   * settled: the node is the master if the sentinels still say so, else a
   * replica of the current master with its link up (sentinels reconfigure an
   * old master that comes back as master), and every live sentinel sees it.
   */
  restartNode(addr: string): Promise<void>;
  /**
   * Resolves once the deployment is at rest: every live sentinel names the
   * same master, flags it plain `master` (no failover in progress), knows
   * every other sentinel and data node and sees the live ones healthy, the
   * master says ROLE master and every other live data node follows it with its
   * link up. What start-up, `failover()` and the restarts wait for; useful
   * after `waitForFailover()`, which does not wait for the other replicas.
   */
  waitSettled(opts?: TestSentinelWaitOptions): Promise<void>;
  /** SIGKILLs a sentinel; its port is free when this resolves. Its dir stays for `restartSentinel`. */
  killSentinel(addr: string): Promise<void>;
  /**
   * Starts a killed sentinel again on its port and dir (with the config it
   * rewrote) and resolves once the deployment is settled: it names the same
   * master as the others and every live sentinel sees every other.
   */
  restartSentinel(addr: string): Promise<void>;
  /** Stops every process and removes their dirs. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Ports are picked below the OS's ephemeral range (32768+), where outgoing
 * connections never take them, and clear of the cluster launcher's ports
 * (15000-22767 and those + 10000).
 */
const PORT_MIN = 22_768;
const PORT_MAX = 24_999;
const START_ATTEMPTS = 5;
const HOST = '127.0.0.1';
/** `SENTINEL DEBUG` periods: see the module notes. */
const PUBLISH_PERIOD_MS = 250;
const INFO_PERIOD_MS = 1_000;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_OPERATION_TIMEOUT_MS = 15_000;

const ports = new PortRange('redis sentinel', PORT_MIN, PORT_MAX);

/** A config-file string: double-quoted, every byte but [A-Za-z0-9._-] as \xHH, so any password survives. */
function confString(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9._-]/.test(ch) ? ch : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** A string for a POSIX shell: single-quoted. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** One command on a fresh short-lived connection (bulk strings decoded as UTF-8). */
async function call(addr: string, password: string | undefined, cmd: string, ...args: Arg[]): Promise<Reply> {
  const conn: Conn = await dial(addr, { connectTimeoutMs: 2_000, readTimeoutMs: 5_000, decodeStrings: true, password });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** A reply expected to be text. */
function replyText(reply: Reply | undefined): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw new TypeError(`redis sentinel: expected a text reply, got ${reply === null ? 'null' : typeof reply}`);
}

/** A field of an INFO text (`name:value` lines). */
function infoField(info: string, name: string): string | undefined {
  const line = info.split('\r\n').find((l) => l.startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

/** A RESP2 field/value array (SENTINEL MASTER, one entry of SENTINEL REPLICAS) as a record. */
function fieldsOf(reply: Reply): Record<string, string> {
  if (!Array.isArray(reply)) throw new TypeError('redis sentinel: expected a field/value array');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[replyText(reply[i])] = replyText(reply[i + 1]);
  return out;
}

function listOfFields(reply: Reply): Record<string, string>[] {
  if (!Array.isArray(reply)) throw new TypeError('redis sentinel: expected an array of field/value arrays');
  return reply.map(fieldsOf);
}

/** `host:port` of a GET-MASTER-ADDR-BY-NAME reply. */
function addrOf(reply: Reply): string {
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error('redis sentinel: the sentinel does not know the master');
  return `${replyText(reply[0])}:${replyText(reply[1])}`;
}

/** What a process of the deployment is; sentinels run with `--sentinel`. */
type Kind = 'data' | 'sentinel';

/**
 * One process of the deployment: stable port, dir and launcher, current
 * server handle.
 */
class Proc {
  readonly addr: string;

  constructor(
    readonly port: number,
    readonly dir: string,
    /** The launcher script: runs redis-server on this process's config file. */
    readonly launcher: string,
    /** Arguments after the config file (startRedisServer adds port, dir, requirepass). */
    readonly args: readonly string[],
    readonly password: string | undefined,
    public server: TestRedisServer,
  ) {
    this.addr = `${HOST}:${port}`;
  }

  /** True while the current process runs (also when it was killed through its handle directly). */
  get alive(): boolean {
    try {
      return this.server.pid > 0 && process.kill(this.server.pid, 0);
    } catch {
      return false;
    }
  }

  call(cmd: string, ...args: Arg[]): Promise<Reply> {
    return call(this.addr, this.password, cmd, ...args);
  }
}

/** What a new process needs: its config text (given its port and dir), arguments, password. */
interface ProcSpec {
  kind: Kind;
  config: (port: number, dir: string) => string;
  args: readonly string[];
  password: string | undefined;
}

function sentinelConfPath(dir: string): string {
  return join(dir, 'sentinel.conf');
}

/** Writes the config file and launcher of a process into `dir`; returns the launcher's path. */
function writeLauncher(spec: ProcSpec, port: number, dir: string): string {
  const confPath = spec.kind === 'sentinel' ? sentinelConfPath(dir) : join(dir, 'redis.conf');
  writeFileSync(confPath, spec.config(port, dir));
  const launcher = join(dir, 'run.sh');
  const mode = spec.kind === 'sentinel' ? ' --sentinel' : '';
  writeFileSync(launcher, `#!/bin/sh\nexec redis-server ${shellQuote(confPath)}${mode} "$@"\n`);
  chmodSync(launcher, 0o700);
  return launcher;
}

/** Runs the launcher of a process on its port; rejects when another process answers there. */
async function runProcess(port: number, dir: string, launcher: string, spec: Pick<ProcSpec, 'args' | 'password'>, deadline: number): Promise<TestRedisServer> {
  const server = await startRedisServer({
    port,
    dir,
    binary: launcher,
    args: [...spec.args],
    password: spec.password,
    startTimeoutMs: Math.max(1, deadline - Date.now()),
  });
  // Another server that took the port first could answer the start-up PING before ours exits on the failed bind.
  // A check that fails (a foreign server wanting another password, a timeout) must not leave ours running.
  const info = await call(server.addr, spec.password, 'INFO', 'server').catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  if (infoField(replyText(info), 'process_id') === String(server.pid)) return server;
  await server.stop();
  throw new Error(`port ${port} is in use by another redis-server`);
}

/** A new process on a fresh port and dir; retries on a port taken meanwhile. */
async function startProc(spec: ProcSpec, deadline: number): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const port = await ports.reserve();
    const dir = mkdtempSync(join(tmpdir(), `redisconn-sentinel-${spec.kind}-`));
    try {
      const launcher = writeLauncher(spec, port, dir);
      const server = await runProcess(port, dir, launcher, spec, deadline);
      return new Proc(port, dir, launcher, spec.args, spec.password, server);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      ports.release(port);
      if (attempt >= START_ATTEMPTS || !/in use/i.test(errorText(err))) throw err;
    }
  }
}

/** The settings shared by the deployment's helpers. */
interface Settings {
  masterName: string;
  password: string | undefined;
  operationTimeoutMs: number;
}

/** The deployment handle; see {@link TestRedisSentinel} for each method's contract. */
class Deployment implements TestRedisSentinel {
  readonly masterName: string;
  readonly sentinels: string[];
  /** Address of the master as last learnt. */
  private masterAddr: string;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly data: Proc[],
    private readonly sentinelProcs: Proc[],
    private readonly settings: Settings,
  ) {
    this.masterName = settings.masterName;
    this.sentinels = sentinelProcs.map((proc) => proc.addr);
    this.masterAddr = data[0]?.addr ?? '';
  }

  get sentinelNodes(): TestRedisServer[] {
    return this.sentinelProcs.map((proc) => proc.server);
  }

  private deadline(timeoutMs = this.settings.operationTimeoutMs): number {
    return Date.now() + timeoutMs;
  }

  private liveSentinels(): Proc[] {
    return this.sentinelProcs.filter((proc) => proc.alive);
  }

  private dataNode(addr: string): Proc {
    const found = this.data.find((proc) => proc.addr === addr);
    if (!found) throw new Error(`redis sentinel: no data node at ${addr}`);
    return found;
  }

  private sentinel(addr: string): Proc {
    const found = this.sentinelProcs.find((proc) => proc.addr === addr);
    if (!found) throw new Error(`redis sentinel: no sentinel at ${addr}`);
    return found;
  }

  master(): TestRedisServer {
    return this.dataNode(this.masterAddr).server;
  }

  replicas(): TestRedisServer[] {
    return this.data.filter((proc) => proc.addr !== this.masterAddr).map((proc) => proc.server);
  }

  dataNodes(): TestRedisServer[] {
    return this.data.map((proc) => proc.server);
  }

  async currentMaster(): Promise<string> {
    let last: unknown = new Error('no live sentinel');
    for (const sentinel of this.liveSentinels()) {
      try {
        const addr = addrOf(await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName));
        this.masterAddr = addr;
        return addr;
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`redis sentinel: no sentinel answered GET-MASTER-ADDR-BY-NAME ${this.masterName}: ${errorText(last)}`);
  }

  async killMaster(): Promise<{ old: string }> {
    const old = await this.currentMaster();
    const node = this.dataNode(old);
    if (!node.alive) throw new Error(`redis sentinel: killMaster: master ${old} is not running`);
    await node.server.kill();
    return { old };
  }

  /** The master every live sentinel names (GET-MASTER-ADDR-BY-NAME); throws saying who disagrees when they do not agree. */
  private async agreedMaster(): Promise<string> {
    const live = this.liveSentinels();
    if (live.length === 0) throw new Error('no live sentinel');
    const views = await Promise.all(live.map(async (s) => [s.addr, addrOf(await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName))] as const));
    const first = views[0]?.[1] ?? '';
    const other = views.find(([, addr]) => addr !== first);
    if (other) throw new Error(`sentinel ${live[0]?.addr} names ${first}, ${other[0]} names ${other[1]}`);
    return first;
  }

  /** The first element of ROLE on the node: master, slave. */
  private async roleOf(node: Proc): Promise<string> {
    const reply = await node.call('ROLE');
    return Array.isArray(reply) ? replyText(reply[0]) : '';
  }

  async waitForFailover(from: string, opts: TestSentinelWaitOptions = {}): Promise<TestSentinelFailover> {
    const started = Date.now();
    const deadline = this.deadline(opts.timeoutMs);
    let newMaster = '';
    await waitUntil('redis sentinel', `every live sentinel naming a master other than ${from}, which says ROLE master`, deadline, async () => {
      const agreed = await this.agreedMaster();
      if (agreed === from) return `the sentinels still name ${from}`;
      const role = await this.roleOf(this.dataNode(agreed));
      if (role !== 'master') return `the sentinels name ${agreed}, which says ROLE ${role}`;
      newMaster = agreed;
      return true;
    });
    this.masterAddr = newMaster;
    return { newMaster, ms: Date.now() - started };
  }

  async failover(): Promise<TestSentinelForcedFailover> {
    const deadline = this.deadline();
    // Sentinels refuse while a failover runs (-INPROG) or before they trust a replica (-NOGOODSLAVE).
    await this.waitSettledBy(deadline);
    const old = await this.currentMaster();
    await this.anySentinel('SENTINEL', 'FAILOVER', this.masterName);
    const { newMaster, ms } = await this.waitForFailover(old, { timeoutMs: Math.max(1, deadline - Date.now()) });
    await this.waitSettledBy(deadline);
    return { old, newMaster, ms };
  }

  /** A command on the first live sentinel that can be reached (an error reply is thrown, not retried elsewhere). */
  private async anySentinel(cmd: string, ...args: Arg[]): Promise<Reply> {
    let last: unknown = new Error('no live sentinel');
    for (const sentinel of this.liveSentinels()) {
      try {
        return await sentinel.call(cmd, ...args);
      } catch (err) {
        if (err instanceof RedisError) throw new Error(`redis sentinel: ${cmd} ${args.join(' ')}: ${err.message}`, { cause: err });
        last = err;
      }
    }
    throw new Error(`redis sentinel: no sentinel answered ${cmd}: ${errorText(last)}`);
  }

  /**
   * True when the deployment is at rest: every live sentinel names the same
   * master, flags it plain `master`, knows all the other sentinels and data
   * nodes, sees every live sentinel and live replica as healthy (a replica
   * with its link up to that master), and every live data node agrees (the
   * master says ROLE master, the others follow it with their link up).
   */
  private async settled(): Promise<boolean | string> {
    const master = await this.agreedMaster();
    const [host, port] = [master.slice(0, master.lastIndexOf(':')), master.slice(master.lastIndexOf(':') + 1)];
    const liveSentinels = this.liveSentinels();
    const liveReplicas = this.data.filter((proc) => proc.alive && proc.addr !== master);
    for (const sentinel of liveSentinels) {
      const view = fieldsOf(await sentinel.call('SENTINEL', 'MASTER', this.masterName));
      const at = sentinel.addr;
      if (view.flags !== 'master') return `${at} flags the master ${view.flags}`;
      if (view['num-other-sentinels'] !== String(this.sentinelProcs.length - 1)) return `${at} knows ${view['num-other-sentinels']} other sentinels`;
      if (view['num-slaves'] !== String(this.data.length - 1)) return `${at} knows ${view['num-slaves']} replicas`;
      const replicas = listOfFields(await sentinel.call('SENTINEL', 'REPLICAS', this.masterName));
      for (const replica of liveReplicas) {
        const seen = replicas.find((r) => `${r.ip}:${r.port}` === replica.addr);
        if (!seen) return `${at} does not list replica ${replica.addr}`;
        if (seen.flags !== 'slave') return `${at} flags replica ${replica.addr} ${seen.flags}`;
        if (seen['master-link-status'] !== 'ok' || seen['master-host'] !== host || seen['master-port'] !== port) {
          return `${at} sees replica ${replica.addr} following ${seen['master-host']}:${seen['master-port']} (link ${seen['master-link-status']})`;
        }
      }
      const peers = listOfFields(await sentinel.call('SENTINEL', 'SENTINELS', this.masterName));
      for (const other of liveSentinels) {
        if (other === sentinel) continue;
        const seen = peers.find((p) => `${p.ip}:${p.port}` === other.addr);
        if (!seen) return `${at} does not list sentinel ${other.addr}`;
        // master_down is a stale vote: it lingers for 5 ask periods after a failover.
        if (seen.flags?.split(',').some((flag) => flag === 's_down' || flag === 'o_down' || flag === 'disconnected')) {
          return `${at} flags sentinel ${other.addr} ${seen.flags}`;
        }
      }
    }
    const masterNode = this.dataNode(master);
    if (masterNode.alive) {
      const role = await this.roleOf(masterNode);
      if (role !== 'master') return `master ${master} says ROLE ${role}`;
    }
    for (const replica of liveReplicas) {
      const info = replyText(await replica.call('INFO', 'replication'));
      const following = `${infoField(info, 'master_host')}:${infoField(info, 'master_port')}`;
      const link = infoField(info, 'master_link_status');
      if (infoField(info, 'role') !== 'slave' || following !== master || link !== 'up') {
        return `${replica.addr} says role ${infoField(info, 'role')}, following ${following} (link ${link})`;
      }
    }
    this.masterAddr = master;
    return true;
  }

  async waitSettled(opts: TestSentinelWaitOptions = {}): Promise<void> {
    await this.waitSettledBy(this.deadline(opts.timeoutMs));
  }

  async waitSettledBy(deadline: number): Promise<void> {
    await waitUntil('redis sentinel', 'the sentinels and data nodes agreeing on the master and its replicas', deadline, () => this.settled());
  }

  async restartNode(addr: string): Promise<void> {
    const node = this.dataNode(addr);
    if (node.alive) throw new Error(`redis sentinel: restartNode: ${addr} is still running (kill it first)`);
    const deadline = this.deadline();
    node.server = await runProcess(node.port, node.dir, node.launcher, node, deadline);
    await this.waitSettledBy(deadline);
  }

  async killSentinel(addr: string): Promise<void> {
    const sentinel = this.sentinel(addr);
    await sentinel.server.kill();
  }

  async restartSentinel(addr: string): Promise<void> {
    const sentinel = this.sentinel(addr);
    if (sentinel.alive) throw new Error(`redis sentinel: restartSentinel: ${addr} is still running (killSentinel it first)`);
    const deadline = this.deadline();
    this.repairAuthPass(sentinel);
    sentinel.server = await runProcess(sentinel.port, sentinel.dir, sentinel.launcher, sentinel, deadline);
    await tuneSentinel(sentinel);
    await this.waitSettledBy(deadline);
  }

  /**
   * Re-quotes the `sentinel auth-pass` line of a sentinel's config file: Redis
   * 7.0 rewrites it unquoted, so a password with a space or quote would make
   * the restarted sentinel reject its own config.
   */
  private repairAuthPass(sentinel: Proc): void {
    const { password } = this.settings;
    if (password === undefined) return;
    const path = sentinelConfPath(sentinel.dir);
    const prefix = `sentinel auth-pass ${this.masterName} `;
    const lines = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, lines.map((line) => (line.startsWith(prefix) ? prefix + confString(password) : line)).join('\n'));
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all(
        [...this.data, ...this.sentinelProcs].map(async (proc) => {
          await proc.server.stop();
          rmSync(proc.dir, { recursive: true, force: true });
          ports.release(proc.port);
        }),
      );
    })();
    return this.stopped;
  }
}

/** Shortens the sentinel's hello and INFO periods (see the module notes); not persisted, so applied on every start. */
async function tuneSentinel(sentinel: Proc): Promise<void> {
  await sentinel.call('SENTINEL', 'DEBUG', 'publish-period', PUBLISH_PERIOD_MS, 'info-period', INFO_PERIOD_MS);
}

/** Waits until the replica's link to its master is up. */
async function waitLinkUp(replica: Proc, deadline: number): Promise<void> {
  await waitUntil('redis sentinel', `master_link_status:up on replica ${replica.addr}`, deadline, async () => {
    const status = infoField(replyText(await replica.call('INFO', 'replication')), 'master_link_status');
    return status === 'up' || `master_link_status:${status ?? '?'}`;
  });
}

function checkCount(name: string, value: number, min: number, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`redis sentinel: ${name} must be an integer in ${min}-${max}, got ${value}`);
}

function checkMs(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`redis sentinel: ${name} must be a positive integer, got ${value}`);
}

/** The resolved options of {@link startRedisSentinel}. */
interface Plan {
  replicas: number;
  sentinels: number;
  quorum: number;
  masterName: string;
  downAfterMs: number;
  failoverTimeoutMs: number;
  password: string | undefined;
  sentinelPassword: string | undefined;
}

function planOf(options: StartRedisSentinelOptions): Plan {
  const plan: Plan = {
    replicas: options.replicas ?? 1,
    sentinels: options.sentinels ?? 3,
    quorum: options.quorum ?? Math.min(2, options.sentinels ?? 3),
    masterName: options.masterName ?? 'mymaster',
    downAfterMs: options.downAfterMs ?? 1_000,
    failoverTimeoutMs: options.failoverTimeoutMs ?? 3_000,
    password: options.password || undefined,
    sentinelPassword: options.sentinelPassword || undefined,
  };
  checkCount('replicas', plan.replicas, 0);
  checkCount('sentinels', plan.sentinels, 1);
  checkCount('quorum', plan.quorum, 1, plan.sentinels);
  checkMs('downAfterMs', plan.downAfterMs);
  checkMs('failoverTimeoutMs', plan.failoverTimeoutMs);
  if (!/^[A-Za-z0-9._:-]+$/.test(plan.masterName)) throw new RangeError(`redis sentinel: masterName must be made of [A-Za-z0-9._:-], got ${JSON.stringify(plan.masterName)}`);
  return plan;
}

/** The data node spec; a replica's config file says whom it follows (sentinels rewrite it later). */
function dataSpec(plan: Plan, masterPort: number | undefined): ProcSpec {
  const args = ['--repl-diskless-sync-delay', '0'];
  if (plan.password !== undefined) args.push('--masterauth', plan.password);
  return {
    kind: 'data',
    config: () => (masterPort === undefined ? '# master\n' : `replicaof ${HOST} ${masterPort}\n`),
    args,
    password: plan.password,
  };
}

function sentinelSpec(plan: Plan, masterPort: number): ProcSpec {
  const name = plan.masterName;
  const lines = (port: number, dir: string): string[] => [
    `port ${port}`,
    `dir ${confString(dir)}`,
    `sentinel monitor ${name} ${HOST} ${masterPort} ${plan.quorum}`,
    `sentinel down-after-milliseconds ${name} ${plan.downAfterMs}`,
    `sentinel failover-timeout ${name} ${plan.failoverTimeoutMs}`,
    // All replicas re-synced at once: failovers with several replicas finish sooner.
    `sentinel parallel-syncs ${name} ${Math.max(1, plan.replicas)}`,
    ...(plan.password === undefined ? [] : [`sentinel auth-pass ${name} ${confString(plan.password)}`]),
  ];
  return { kind: 'sentinel', config: (port, dir) => `${lines(port, dir).join('\n')}\n`, args: [], password: plan.sentinelPassword };
}

/**
 * Starts a master, `replicas` replicas following it and `sentinels` sentinels
 * monitoring it as `masterName`, every one a `redis-server` on a free loopback
 * port in its own temp dir (killed when the process exits), and resolves once
 * every sentinel flags the master plain `master` and knows the other
 * sentinels and every replica, all healthy, and every replica's link is up.
 * Rejects (stopping whatever was started) when that is not reached within
 * `startTimeoutMs`, and with `RangeError` on bad options.
 */
export async function startRedisSentinel(options: StartRedisSentinelOptions = {}): Promise<TestRedisSentinel> {
  const plan = planOf(options);
  const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  const master = await startProc(dataSpec(plan, undefined), deadline);
  // Slots filled as processes start, so the handles keep start order.
  const replicas: (Proc | undefined)[] = [];
  const sentinels: (Proc | undefined)[] = [];
  // Replicas first, each until its link is up, so a sentinel's first INFO of
  // the master lists them all; one that missed a replica would find it only on
  // its next INFO, a second later. Then the sentinels, side by side.
  const started: PromiseSettledResult<void>[] = await Promise.allSettled(
    Array.from({ length: plan.replicas }, async (_, i) => {
      const replica = await startProc(dataSpec(plan, master.port), deadline);
      replicas[i] = replica;
      await waitLinkUp(replica, deadline);
    }),
  );
  if (!started.some((result) => result.status === 'rejected')) {
    const startedSentinels = await Promise.allSettled(
      Array.from({ length: plan.sentinels }, async (_, i) => {
        const sentinel = await startProc(sentinelSpec(plan, master.port), deadline);
        sentinels[i] = sentinel;
        await tuneSentinel(sentinel);
      }),
    );
    started.push(...startedSentinels);
  }
  const present = (procs: (Proc | undefined)[]): Proc[] => procs.filter((proc): proc is Proc => proc !== undefined);
  const deployment = new Deployment([master, ...present(replicas)], present(sentinels), {
    masterName: plan.masterName,
    password: plan.password,
    operationTimeoutMs: options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
  });
  try {
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    await deployment.waitSettledBy(deadline);
    return deployment;
  } catch (err) {
    await deployment.stop();
    throw err;
  }
}
