/**
 * Throwaway Redis Cluster for tests: `redis-server --cluster-enabled yes`
 * processes on loopback, formed with our own client (no redis-cli), plus the
 * helpers tests need to make a cluster move: failover, kill and restart a node,
 * migrate a slot step by step (to observe ASK), announce hostnames.
 *
 * Every wait polls with a deadline and throws an error naming the state that
 * was not reached; nothing hangs.
 *
 * Notes on redis-server 7.0 that shaped this:
 * - CLUSTER SLOTS leaves out replicas whose replication offset is still 0, so
 *   formation writes once (FLUSHALL) on every master before waiting for them.
 * - Elections are rate-limited: masters refuse to vote about the same master
 *   twice within 2 × cluster-node-timeout, and a replica that started an
 *   election cannot start another until 4 × cluster-node-timeout later (8 s
 *   here). Failing a shard over A→B→A→B with CLUSTER FAILOVER would stall, so
 *   `failover()` coordinates by hand and uses TAKEOVER.
 * - Masters report cluster_state:ok no sooner than 2 s after start (Redis's
 *   writable delay): that, not gossip, bounds formation time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Conn } from '../conn.js';
import { dial } from '../dial.js';
import type { Arg } from '../resp/encode.js';
import type { Reply } from '../resp/decode.js';
import { startRedisServer, type TestRedisServer } from './index.js';
import { errorText, PortRange, waitUntil } from './poll.js';

/** Options of {@link startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Masters, each owning an even share of the 16384 slots. Default 3. */
  masters?: number | undefined;
  /** Replicas of each master. Default 1. */
  replicasPerMaster?: number | undefined;
  /** Deadline for starting the nodes and forming the cluster. Default 30 s. */
  startTimeoutMs?: number | undefined;
  /** Deadline of each later helper (failover, restart, migration, ...). Default 15 s. */
  operationTimeoutMs?: number | undefined;
  /** Extra `redis-server` arguments for every node. */
  args?: string[] | undefined;
}

/** One node of a {@link TestRedisCluster}. */
export interface TestClusterNode {
  /** `127.0.0.1:<port>`, ready for `dial()`; kept across restarts. */
  readonly addr: string;
  readonly port: number;
  /** Pid of the current process (a new one after `restartNode`). */
  readonly pid: number;
  /** As last read from the cluster (`refreshRoles()` re-reads it). */
  role: 'master' | 'replica';
  /** The cluster node id (40 hex characters), kept across restarts. */
  id: string;
  /** The id of its master when a replica, else undefined. */
  masterId: string | undefined;
  /** False between `killNode` and `restartNode`, and after `stop`. */
  readonly alive: boolean;
  /** The underlying server handle (a new one after `restartNode`). */
  readonly server: TestRedisServer;
}

/** A node, or its address `host:port`. */
export type ClusterNodeRef = TestClusterNode | string;

/** Extra condition for {@link TestRedisCluster.waitForState}. */
export type ClusterStatePredicate = (cluster: TestRedisCluster) => boolean | Promise<boolean>;

/** Source and target of a slot migration in progress. */
export interface SlotMigration {
  from: TestClusterNode;
  to: TestClusterNode;
}

/** A running throwaway cluster made by {@link startRedisCluster}. */
export interface TestRedisCluster {
  /** Every node's `host:port`, masters first (as started). */
  readonly seeds: string[];
  /** Every node, masters first (as started); roles kept up to date by the helpers. */
  readonly nodes: TestClusterNode[];
  /** The nodes whose role is master (dead ones included). */
  masters(): TestClusterNode[];
  /** The nodes whose role is replica (dead ones included). */
  replicas(): TestClusterNode[];
  /** The master serving `slot`, by asking a live node (CLUSTER SLOTS). */
  masterOf(slot: number): Promise<TestClusterNode>;
  /** Re-reads every node's role, id and master from the cluster. */
  refreshRoles(): Promise<void>;
  /** FLUSHALL on every live master; resolves once they and their live replicas report DBSIZE 0. */
  flushAll(): Promise<void>;
  /**
   * Promotes a live replica of `master` and resolves once the replica says it
   * is master, the old master (if alive) says it is a replica, and every live
   * node's CLUSTER SLOTS gives the slots to the new master; returns the new
   * master. A coordinated failover done by hand: CLIENT PAUSE WRITE on a live
   * master, wait for the replica to catch up, `CLUSTER FAILOVER TAKEOVER`,
   * CLIENT UNPAUSE (a dead master: TAKEOVER at once). Not an election, because
   * Redis refuses elections for seconds after one (see the module notes), so
   * tests can fail a shard over and back as often as they like.
   */
  failover(master: ClusterNodeRef): Promise<TestClusterNode>;
  /** SIGKILLs the node (a crash); its port is free when this resolves. Its files stay for `restartNode`. */
  killNode(node: ClusterNodeRef): Promise<void>;
  /**
   * Starts a killed node again on its port and directory (same nodes.conf, so
   * it rejoins with its id; as a replica when it was failed over). Resolves
   * when it answers PING, says cluster_state:ok, every live node agrees on the
   * slots, and, if it is a replica, its replication link is up.
   */
  restartNode(node: ClusterNodeRef): Promise<void>;
  /**
   * Waits until every live node says cluster_state:ok, all agree on who serves
   * which slots, and `predicate` (if given) holds. Rejects naming what was
   * not reached after `timeoutMs` (default: the cluster's `operationTimeoutMs`).
   */
  waitForState(predicate?: ClusterStatePredicate, options?: { timeoutMs?: number }): Promise<void>;
  /** CLUSTER SETSLOT IMPORTING on `to`, then MIGRATING on the slot's master. `to` must be another master. */
  beginSlotMigration(slot: number, to: ClusterNodeRef): Promise<SlotMigration>;
  /**
   * Moves keys of a slot being migrated (CLUSTER GETKEYSINSLOT + MIGRATE ...
   * KEYS) from source to target: all of them, or at most `count`. Returns how many moved.
   */
  migrateKeys(slot: number, opts?: { count?: number }): Promise<number>;
  /** CLUSTER SETSLOT NODE <target> on target, source and every other master; resolves once every live node agrees. */
  finishSlotMigration(slot: number): Promise<void>;
  /** {@link beginSlotMigration}, {@link migrateKeys} (all), {@link finishSlotMigration}; nothing when `to` already serves it. */
  moveSlot(slot: number, to: ClusterNodeRef): Promise<void>;
  /**
   * Sets `cluster-announce-hostname` (from `hostnameFor`) and
   * `cluster-preferred-endpoint-type hostname` on every live node (kept on
   * restart); resolves once every live node's CLUSTER SLOTS shows the
   * hostnames of all live nodes.
   */
  announceHostname(hostnameFor: (node: TestClusterNode) => string): Promise<void>;
  /** Stops every node and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

const SLOT_COUNT = 16384;
const BUS_PORT_OFFSET = 10_000;
/** Ports are picked below the OS's ephemeral range (32768+), bus ports too, so `freePort()` users never collide. */
const PORT_MIN = 15_000;
const PORT_MAX = 32_767 - BUS_PORT_OFFSET;
const NODE_TIMEOUT_MS = 2_000;
const START_ATTEMPTS = 5;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_OPERATION_TIMEOUT_MS = 15_000;

/** Node ports P whose bus port P+10000 is free too. */
const ports = new PortRange('redis cluster', PORT_MIN, PORT_MAX, [BUS_PORT_OFFSET]);

/** The `redis-server` arguments of a cluster node living in `dir`. */
function nodeArgs(dir: string, extra: readonly string[]): string[] {
  return [
    '--cluster-enabled', 'yes',
    '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
    '--repl-diskless-sync-delay', '0',
    '--cluster-config-file', join(dir, 'nodes.conf'),
    '--appendonly', 'no',
    '--save', '',
    ...extra,
  ];
}

/**
 * True when the server on the port is the process we spawned: another
 * process's server that took the port first could answer the start-up PING
 * before ours exits on the failed bind.
 */
async function answeredByOwnProcess(server: TestRedisServer): Promise<boolean> {
  const info = replyText(await call(server.addr, 'INFO', 'server'));
  return infoField(info, 'process_id') === String(server.pid);
}

/** A new node on a fresh port pair and directory; retries on a port taken meanwhile. */
async function startNodeServer(extra: readonly string[], startTimeoutMs: number): Promise<TestRedisServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await ports.reserve();
    const dir = mkdtempSync(join(tmpdir(), 'redisconn-cluster-'));
    try {
      const server = await startRedisServer({ port, dir, args: nodeArgs(dir, extra), startTimeoutMs });
      // A check that fails (a foreign server wanting a password, a timeout) must not leave ours running.
      const own = await answeredByOwnProcess(server).catch(async (err: unknown) => {
        await server.stop();
        throw err;
      });
      if (own) return server;
      await server.stop();
      throw new Error(`port ${port} is in use by another redis-server`);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      ports.release(port);
      if (attempt >= START_ATTEMPTS || !/in use/i.test(errorText(err))) throw err;
    }
  }
}

/** One command on a fresh short-lived connection (bulk strings decoded as UTF-8). */
async function call(addr: string, cmd: string, ...args: Arg[]): Promise<Reply> {
  const conn: Conn = await dial(addr, { connectTimeoutMs: 2_000, readTimeoutMs: 5_000, decodeStrings: true });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** A reply expected to be text. */
function replyText(reply: Reply): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw new TypeError(`redis cluster: expected a text reply, got ${reply === null ? 'null' : typeof reply}`);
}

/** A field of an INFO / CLUSTER INFO text (`name:value` lines). */
function infoField(info: string, name: string): string | undefined {
  const line = info.split('\r\n').find((l) => l.startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

/** One line of CLUSTER NODES. */
interface NodesLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string | undefined;
}

function parseClusterNodes(text: string): NodesLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-'] = line.split(' ');
      const hostPort = address.split('@')[0] ?? '';
      return {
        id,
        port: Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)),
        flags: flags.split(','),
        masterId: master === '-' ? undefined : master,
      };
    });
}

/** A node entry of CLUSTER SLOTS: preferred endpoint (ip, hostname or '?'), port, id. */
interface SlotsEndpoint {
  host: string;
  port: number;
  id: string;
}

/** One range of CLUSTER SLOTS. */
interface SlotsRange {
  start: number;
  end: number;
  master: SlotsEndpoint;
  replicas: SlotsEndpoint[];
}

function parseEndpoint(reply: Reply): SlotsEndpoint {
  if (!Array.isArray(reply)) throw new TypeError('redis cluster: bad CLUSTER SLOTS node entry');
  const [host, port, id] = reply;
  return { host: replyText(host ?? null), port: Number(port), id: replyText(id ?? null) };
}

function parseClusterSlots(reply: Reply): SlotsRange[] {
  if (!Array.isArray(reply)) throw new TypeError('redis cluster: CLUSTER SLOTS did not answer an array');
  const ranges = reply.map((entry): SlotsRange => {
    if (!Array.isArray(entry) || entry.length < 3) throw new TypeError('redis cluster: bad CLUSTER SLOTS range');
    const [start, end, master, ...replicas] = entry;
    return { start: Number(start), end: Number(end), master: parseEndpoint(master ?? null), replicas: replicas.map(parseEndpoint) };
  });
  return ranges.sort((a, b) => a.start - b.start);
}

/** `start-end=masterId` for every range: equal on two nodes when they agree on slot owners. */
function ownersKey(ranges: SlotsRange[]): string {
  return ranges.map((r) => `${r.start}-${r.end}=${r.master.id}`).join(' ');
}

/** Slots covered by `ranges`. */
function coveredSlots(ranges: SlotsRange[]): number {
  return ranges.reduce((sum, r) => sum + (r.end - r.start + 1), 0);
}

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`redis cluster: slot ${slot} is not in 0-${SLOT_COUNT - 1}`);
}

/** A cluster node: stable address and id, current server handle. */
class ClusterNode implements TestClusterNode {
  readonly addr: string;
  readonly port: number;
  role: 'master' | 'replica';
  id = '';
  masterId: string | undefined = undefined;
  alive = true;
  /** Arguments added on restart (announced hostname). */
  restartArgs: string[] = [];
  private current: TestRedisServer;

  constructor(server: TestRedisServer, role: 'master' | 'replica') {
    this.current = server;
    this.addr = server.addr;
    this.port = server.port;
    this.role = role;
  }

  get server(): TestRedisServer {
    return this.current;
  }

  get pid(): number {
    return this.current.pid;
  }

  replaceServer(server: TestRedisServer): void {
    this.current = server;
    this.alive = true;
  }
}

/** The cluster handle; see {@link TestRedisCluster} for each method's contract. */
class Cluster implements TestRedisCluster {
  readonly seeds: string[];
  private readonly migrations = new Map<number, { from: ClusterNode; to: ClusterNode }>();
  private stopped: Promise<void> | undefined;

  constructor(
    readonly nodes: ClusterNode[],
    private readonly extraArgs: readonly string[],
    private readonly operationTimeoutMs: number,
  ) {
    this.seeds = nodes.map((node) => node.addr);
  }

  private deadline(): number {
    return Date.now() + this.operationTimeoutMs;
  }

  private live(): ClusterNode[] {
    return this.nodes.filter((node) => node.alive);
  }

  private node(ref: ClusterNodeRef): ClusterNode {
    const addr = typeof ref === 'string' ? ref : ref.addr;
    const found = this.nodes.find((node) => node.addr === addr);
    if (!found) throw new Error(`redis cluster: no node at ${addr}`);
    return found;
  }

  private byId(id: string): ClusterNode {
    const found = this.nodes.find((node) => node.id === id);
    if (!found) throw new Error(`redis cluster: no node with id ${id}`);
    return found;
  }

  masters(): TestClusterNode[] {
    return this.nodes.filter((node) => node.role === 'master');
  }

  replicas(): TestClusterNode[] {
    return this.nodes.filter((node) => node.role === 'replica');
  }

  private async slotsOn(node: ClusterNode): Promise<SlotsRange[]> {
    return parseClusterSlots(await call(node.addr, 'CLUSTER', 'SLOTS'));
  }

  /** CLUSTER SLOTS from the first live node that answers. */
  private async anySlots(): Promise<SlotsRange[]> {
    let last: unknown = new Error('no live node');
    for (const node of this.live()) {
      try {
        return await this.slotsOn(node);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`redis cluster: no node answered CLUSTER SLOTS: ${errorText(last)}`);
  }

  async masterOf(slot: number): Promise<TestClusterNode> {
    return this.ownerOf(slot);
  }

  private async ownerOf(slot: number): Promise<ClusterNode> {
    checkSlot(slot);
    const range = (await this.anySlots()).find((r) => r.start <= slot && slot <= r.end);
    if (!range) throw new Error(`redis cluster: no node serves slot ${slot}`);
    return this.byId(range.master.id);
  }

  async refreshRoles(): Promise<void> {
    const views = new Map<string, NodesLine[]>();
    for (const node of this.live()) views.set(node.addr, parseClusterNodes(replyText(await call(node.addr, 'CLUSTER', 'NODES'))));
    const anyView = views.values().next().value ?? [];
    for (const node of this.nodes) {
      // A live node's own "myself" line is the truth; a dead one is as the others see it.
      const own = views.get(node.addr)?.find((line) => line.flags.includes('myself'));
      const line = own ?? anyView.find((l) => l.port === node.port);
      if (!line) continue;
      node.id = line.id;
      node.role = line.flags.includes('master') ? 'master' : 'replica';
      node.masterId = node.role === 'replica' ? line.masterId : undefined;
    }
  }

  async flushAll(): Promise<void> {
    const deadline = this.deadline();
    await this.refreshRoles();
    const masters = this.live().filter((node) => node.role === 'master');
    await Promise.all(masters.map((master) => call(master.addr, 'FLUSHALL')));
    // Replicas follow asynchronously; wait for those whose master is up.
    const ids = new Set(masters.map((master) => master.id));
    const followers = this.live().filter((node) => ids.has(node.id) || (node.masterId !== undefined && ids.has(node.masterId)));
    for (const node of followers) {
      await waitUntil('redis cluster', `DBSIZE 0 on ${node.addr} after FLUSHALL`, deadline, async () => {
        const size = await call(node.addr, 'DBSIZE');
        return size === 0 || `${node.addr} DBSIZE ${String(size)}`;
      });
    }
  }

  /** True when the node says cluster_state:ok. */
  private async stateOk(node: ClusterNode): Promise<boolean | string> {
    const state = infoField(replyText(await call(node.addr, 'CLUSTER', 'INFO')), 'cluster_state');
    return state === 'ok' || `${node.addr} cluster_state:${state ?? '?'}`;
  }

  /** True when the replica's replication link to its master is up. */
  private async linkUp(node: ClusterNode): Promise<boolean | string> {
    const status = infoField(replyText(await call(node.addr, 'INFO', 'replication')), 'master_link_status');
    return status === 'up' || `${node.addr} master_link_status:${status ?? '?'}`;
  }

  /** True when every live node is ok and they agree on slot owners covering all slots. */
  private async settled(): Promise<boolean | string> {
    let key: string | undefined;
    for (const node of this.live()) {
      const ok = await this.stateOk(node);
      if (ok !== true) return ok;
      const ranges = await this.slotsOn(node);
      if (coveredSlots(ranges) !== SLOT_COUNT) return `${node.addr} covers ${coveredSlots(ranges)} slots`;
      const own = ownersKey(ranges);
      if (key !== undefined && own !== key) return `${node.addr} disagrees on slot owners`;
      key = own;
    }
    return true;
  }

  async waitForState(predicate?: ClusterStatePredicate, options: { timeoutMs?: number } = {}): Promise<void> {
    await this.waitSettled(Date.now() + (options.timeoutMs ?? this.operationTimeoutMs), predicate);
  }

  private async waitSettled(deadline: number, predicate?: ClusterStatePredicate): Promise<void> {
    await waitUntil('redis cluster', 'cluster_state:ok and slot agreement on every live node', deadline, () => this.settled());
    if (predicate) await waitUntil('redis cluster', 'the waitForState predicate', deadline, async () => predicate(this));
  }

  /** Waits until every live replica's replication link is up. */
  private async waitReplicasInSync(deadline: number): Promise<void> {
    for (const replica of this.live().filter((node) => node.role === 'replica')) {
      await waitUntil('redis cluster', `master_link_status:up on replica ${replica.addr}`, deadline, () => this.linkUp(replica));
    }
  }

  /** True when every live node's CLUSTER SLOTS lists `replica` (7.0 hides replicas at replication offset 0). */
  private async replicaListed(replica: ClusterNode): Promise<boolean | string> {
    for (const node of this.live()) {
      const ranges = await this.slotsOn(node);
      if (!ranges.some((range) => range.replicas.some((r) => r.id === replica.id))) return `${node.addr} does not list ${replica.addr}`;
    }
    return true;
  }

  /**
   * Formation's end, once the replicas were told whom to follow: their links
   * up, a FLUSHALL on each master (so every replica's replication offset
   * leaves 0, which CLUSTER SLOTS in 7.0 requires to list it), then settled
   * with every replica listed.
   */
  async waitFormed(deadline: number): Promise<void> {
    await this.refreshRoles();
    await this.waitReplicasInSync(deadline);
    await Promise.all(this.masters().map((master) => call(master.addr, 'FLUSHALL')));
    await this.waitSettled(deadline);
    for (const replica of this.replicas()) {
      await waitUntil('redis cluster', `every node listing replica ${replica.addr} in CLUSTER SLOTS`, deadline, () => this.replicaListed(replica as ClusterNode));
    }
  }

  async failover(masterRef: ClusterNodeRef): Promise<TestClusterNode> {
    const deadline = this.deadline();
    await this.refreshRoles();
    const master = this.node(masterRef);
    const replica = this.replicaToPromote(master);
    const ownedBefore = (await this.anySlots()).filter((r) => r.master.id === master.id);
    if (master.alive) await this.pauseUntilCaughtUp(master, replica, deadline);
    try {
      await call(replica.addr, 'CLUSTER', 'FAILOVER', 'TAKEOVER');
      await waitUntil('redis cluster', `${replica.addr} reporting role master`, deadline, async () => (await this.roleOf(replica)) === 'master');
      if (master.alive) {
        await waitUntil('redis cluster', `old master ${master.addr} reporting role slave`, deadline, async () => (await this.roleOf(master)) === 'slave');
      }
    } finally {
      if (master.alive) await this.unpause(master);
    }
    await waitUntil('redis cluster', `every live node giving ${master.addr}'s slots to ${replica.addr}`, deadline, () =>
      this.allAgreeOwner(ownedBefore, replica.id),
    );
    await this.refreshRoles();
    return replica;
  }

  /** A live replica of `master`; throws when `master` is no master or has none. */
  private replicaToPromote(master: ClusterNode): ClusterNode {
    if (master.role !== 'master') throw new Error(`redis cluster: failover: ${master.addr} is not a master`);
    const replica = this.live().find((node) => node.role === 'replica' && node.masterId === master.id);
    if (!replica) throw new Error(`redis cluster: failover: master ${master.addr} has no live replica`);
    return replica;
  }

  /**
   * What a coordinated CLUSTER FAILOVER does first, by hand: pause writes on
   * the master, then wait until the replica has processed its whole
   * replication stream. The caller unpauses.
   */
  private async pauseUntilCaughtUp(master: ClusterNode, replica: ClusterNode, deadline: number): Promise<void> {
    await waitUntil('redis cluster', `master_link_status:up on replica ${replica.addr}`, deadline, () => this.linkUp(replica));
    await call(master.addr, 'CLIENT', 'PAUSE', Math.max(1, deadline - Date.now()), 'WRITE');
    try {
      const target = Number(infoField(replyText(await call(master.addr, 'INFO', 'replication')), 'master_repl_offset'));
      await waitUntil('redis cluster', `replica ${replica.addr} catching up with ${master.addr} (offset ${target})`, deadline, async () => {
        const offset = Number(infoField(replyText(await call(replica.addr, 'INFO', 'replication')), 'slave_repl_offset'));
        return offset >= target || `${replica.addr} at offset ${offset}`;
      });
    } catch (err) {
      await this.unpause(master);
      throw err;
    }
  }

  /** CLIENT UNPAUSE; a node that cannot answer it any more has no pause left to lift. */
  private async unpause(node: ClusterNode): Promise<void> {
    await call(node.addr, 'CLIENT', 'UNPAUSE').catch(() => undefined);
  }

  /** The first element of ROLE on the node: master, slave. */
  private async roleOf(node: ClusterNode): Promise<string> {
    const reply = await call(node.addr, 'ROLE');
    return Array.isArray(reply) ? replyText(reply[0] ?? null) : '';
  }

  /** True when every live node's CLUSTER SLOTS gives each of `ranges` to `ownerId`. */
  private async allAgreeOwner(ranges: SlotsRange[], ownerId: string): Promise<boolean | string> {
    for (const node of this.live()) {
      const view = await this.slotsOn(node);
      for (const { start } of ranges) {
        const range = view.find((r) => r.start <= start && start <= r.end);
        if (range?.master.id !== ownerId) return `${node.addr} gives slot ${start} to ${range?.master.id ?? 'nobody'}`;
      }
    }
    return true;
  }

  async killNode(ref: ClusterNodeRef): Promise<void> {
    const node = this.node(ref);
    await node.server.kill();
    node.alive = false;
  }

  async restartNode(ref: ClusterNodeRef): Promise<void> {
    const node = this.node(ref);
    if (node.alive) throw new Error(`redis cluster: restartNode: ${node.addr} is still running (killNode it first)`);
    const deadline = this.deadline();
    const { dir } = node.server;
    const server = await startRedisServer({
      port: node.port,
      dir,
      args: nodeArgs(dir, [...this.extraArgs, ...node.restartArgs]),
      startTimeoutMs: Math.max(1, deadline - Date.now()),
    });
    node.replaceServer(server);
    await waitUntil('redis cluster', `cluster_state:ok on restarted ${node.addr}`, deadline, () => this.stateOk(node));
    await this.waitSettled(deadline);
    await this.refreshRoles();
    if (node.role !== 'replica') return;
    await waitUntil('redis cluster', `master_link_status:up on restarted ${node.addr}`, deadline, () => this.linkUp(node));
    await waitUntil('redis cluster', `every node listing restarted replica ${node.addr} in CLUSTER SLOTS`, deadline, () => this.replicaListed(node));
  }

  async beginSlotMigration(slot: number, toRef: ClusterNodeRef): Promise<SlotMigration> {
    checkSlot(slot);
    if (this.migrations.has(slot)) throw new Error(`redis cluster: slot ${slot} is already being migrated`);
    const to = this.node(toRef);
    const from = await this.ownerOf(slot);
    if (from === to) throw new Error(`redis cluster: slot ${slot} is already served by ${to.addr}`);
    await this.refreshRoles();
    if (to.role !== 'master') throw new Error(`redis cluster: cannot migrate slot ${slot} to replica ${to.addr}`);
    await call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    this.migrations.set(slot, { from, to });
    return { from, to };
  }

  private migration(slot: number): { from: ClusterNode; to: ClusterNode } {
    const migration = this.migrations.get(slot);
    if (!migration) throw new Error(`redis cluster: slot ${slot} is not being migrated (call beginSlotMigration first)`);
    return migration;
  }

  async migrateKeys(slot: number, opts: { count?: number } = {}): Promise<number> {
    const { from, to } = this.migration(slot);
    const limit = opts.count ?? Infinity;
    let moved = 0;
    while (moved < limit) {
      const batch = Math.min(100, limit - moved);
      const keys = await call(from.addr, 'CLUSTER', 'GETKEYSINSLOT', slot, batch);
      if (!Array.isArray(keys) || keys.length === 0) break;
      await call(from.addr, 'MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'KEYS', ...keys.map((key) => replyText(key)));
      moved += keys.length;
    }
    return moved;
  }

  async finishSlotMigration(slot: number): Promise<void> {
    const { from, to } = this.migration(slot);
    const deadline = this.deadline();
    await call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    await call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    const others = this.live().filter((node) => node.role === 'master' && node !== to && node !== from);
    await Promise.all(others.map((node) => call(node.addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', to.id)));
    this.migrations.delete(slot);
    const range: SlotsRange = { start: slot, end: slot, master: { host: '', port: to.port, id: to.id }, replicas: [] };
    await waitUntil('redis cluster', `every live node giving slot ${slot} to ${to.addr}`, deadline, () => this.allAgreeOwner([range], to.id));
  }

  async moveSlot(slot: number, toRef: ClusterNodeRef): Promise<void> {
    if ((await this.ownerOf(slot)) === this.node(toRef)) return;
    await this.beginSlotMigration(slot, toRef);
    await this.migrateKeys(slot);
    await this.finishSlotMigration(slot);
  }

  async announceHostname(hostnameFor: (node: TestClusterNode) => string): Promise<void> {
    const deadline = this.deadline();
    const live = this.live();
    const expected = new Map(live.map((node) => [node.id, hostnameFor(node)]));
    for (const node of live) {
      const hostname = expected.get(node.id) ?? '';
      await call(node.addr, 'CONFIG', 'SET', 'cluster-announce-hostname', hostname, 'cluster-preferred-endpoint-type', 'hostname');
      node.restartArgs = ['--cluster-announce-hostname', hostname, '--cluster-preferred-endpoint-type', 'hostname'];
    }
    await waitUntil('redis cluster', 'every live node showing the announced hostnames in CLUSTER SLOTS', deadline, async () => {
      for (const node of live) {
        for (const range of await this.slotsOn(node)) {
          for (const endpoint of [range.master, ...range.replicas]) {
            const want = expected.get(endpoint.id);
            if (want !== undefined && endpoint.host !== want) return `${node.addr} shows ${endpoint.host} for ${want}`;
          }
        }
      }
      return true;
    });
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all(
        this.nodes.map(async (node) => {
          await node.server.stop();
          node.alive = false;
          rmSync(node.server.dir, { recursive: true, force: true });
          ports.release(node.port);
        }),
      );
    })();
    return this.stopped;
  }
}

/** Slot range `[start, end]` of master `index` of `masters`: an even split of the 16384 slots. */
function slotRangeOf(index: number, masters: number): [number, number] {
  return [Math.floor((index * SLOT_COUNT) / masters), Math.floor(((index + 1) * SLOT_COUNT) / masters) - 1];
}

/** Waits until every node lists all `count` nodes, none still in handshake. */
async function waitAllMet(nodes: ClusterNode[], deadline: number): Promise<void> {
  await waitUntil('redis cluster', `all ${nodes.length} nodes knowing each other (CLUSTER NODES)`, deadline, async () => {
    for (const node of nodes) {
      const lines = parseClusterNodes(replyText(await call(node.addr, 'CLUSTER', 'NODES')));
      const known = lines.filter((line) => !line.flags.includes('handshake') && !line.flags.includes('noaddr'));
      if (known.length !== nodes.length) return `${node.addr} knows ${known.length} of ${nodes.length}`;
    }
    return true;
  });
}

/** Slots on masters, distinct config epochs, MEET, REPLICATE; then waits until ok and in sync. */
async function formCluster(cluster: Cluster, nodes: ClusterNode[], masters: number, replicasPerMaster: number, deadline: number): Promise<void> {
  await Promise.all(
    nodes.map(async (node, i) => {
      node.id = replyText(await call(node.addr, 'CLUSTER', 'MYID'));
      if (i < masters) await call(node.addr, 'CLUSTER', 'ADDSLOTSRANGE', ...slotRangeOf(i, masters));
      // Distinct epochs up front, as redis-cli does, so no epoch collision needs resolving.
      await call(node.addr, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
    }),
  );
  // Every pair meets once (not all to the first): no waiting for gossip to spread the news.
  await Promise.all(
    nodes.map(async (node, i) => {
      for (const other of nodes.slice(0, i)) await call(node.addr, 'CLUSTER', 'MEET', '127.0.0.1', other.port);
    }),
  );
  await waitAllMet(nodes, deadline);
  await Promise.all(
    nodes.slice(masters).map(async (replica, j) => {
      const master = nodes[Math.floor(j / replicasPerMaster)];
      if (!master) throw new Error(`redis cluster: no master for replica ${replica.addr}`);
      await call(replica.addr, 'CLUSTER', 'REPLICATE', master.id);
      replica.masterId = master.id;
    }),
  );
  await cluster.waitFormed(deadline);
}

/**
 * Starts `masters × (1 + replicasPerMaster)` cluster-enabled redis-servers on
 * loopback (each on a free port P with its bus port P+10000 free too, in its
 * own temp dir, killed when the process exits), forms a cluster of them with
 * an even slot split, and resolves once every node says cluster_state:ok, all
 * agree on the slots and every replica's link is up. Rejects (stopping
 * whatever was started) when that is not reached within `startTimeoutMs`.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  if (!Number.isInteger(masters) || masters < 1 || masters > SLOT_COUNT) throw new RangeError(`redis cluster: masters must be 1-${SLOT_COUNT}, got ${masters}`);
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) throw new RangeError(`redis cluster: replicasPerMaster must be an integer >= 0, got ${replicasPerMaster}`);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + startTimeoutMs;
  const extra = options.args ?? [];
  const total = masters * (1 + replicasPerMaster);

  const started = await Promise.allSettled(Array.from({ length: total }, () => startNodeServer(extra, startTimeoutMs)));
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const nodes = servers.map((server, i) => new ClusterNode(server, i < masters ? 'master' : 'replica'));
  const cluster = new Cluster(nodes, extra, options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS);
  try {
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    await formCluster(cluster, nodes, masters, replicasPerMaster, deadline);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
