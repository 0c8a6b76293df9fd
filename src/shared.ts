/**
 * The pool's shared connection: one connection on which stateless commands
 * from any number of callers are auto-pipelined (every command issued in the
 * same tick goes out in one write) without an exclusive borrow.
 */
import type { Conn } from './conn.js';
import type { Reply } from './resp/decode.js';
import type { Arg } from './resp/encode.js';

function flushShared(shared: SharedConn): void {
  shared.flushNow();
}

function ignore(): void {}

/** What the shared connection needs from its pool. */
export interface SharedConnHost {
  /** Dials a connection counted in the pool's stats. */
  dialShared(): Promise<Conn>;
  /** The shared connection broke or was replaced; uncount it. */
  releaseShared(conn: Conn): void;
}

/**
 * Holds the shared connection, dialing it on first use and again after it
 * breaks. Calls in flight when it breaks reject with its fatal error; the
 * next call gets a new connection. Nothing is retried (commands need not be
 * idempotent).
 */
export class SharedConn {
  private conn: Conn | null = null;
  private dialing: Promise<Conn> | null = null;
  /** A write of what was sent is scheduled for the end of this event-loop turn. */
  private flushScheduled = false;

  constructor(private readonly host: SharedConnHost) {}

  /**
   * Sends the command and claims its reply now; the bytes go out once per
   * event-loop turn (setImmediate), so the commands of every I/O callback of
   * the turn (one per HTTP request, say) share one write, where a per-tick
   * flush would write once per callback.
   */
  do(cmd: string, args: Arg[]): Promise<Reply> {
    const conn = this.conn;
    if (conn !== null && conn.err() === null) return this.enqueue(conn, cmd, args);
    return this.connect().then((fresh) => this.enqueue(fresh, cmd, args));
  }

  private enqueue(conn: Conn, cmd: string, args: Arg[]): Promise<Reply> {
    try {
      conn.send(cmd, ...args);
    } catch (err) {
      return Promise.reject(err);
    }
    const reply = conn.receive();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(flushShared, this);
    }
    return reply;
  }

  /**
   * Writes what this turn's callers sent (see `do`) on the current shared
   * connection: one that replaced a broken one during the turn has its
   * commands written too (the broken one's calls were rejected with it).
   */
  flushNow(): void {
    this.flushScheduled = false;
    const conn = this.conn;
    // A failed write breaks the connection, which rejects the replies claimed.
    if (conn !== null && conn.err() === null) conn.flush().catch(ignore);
  }

  /**
   * Closes the shared connection (pool close, purge). A dial in flight is
   * given up: its connection is released when it lands (see `connect`), so
   * it can never replace one dialed after this close.
   */
  async close(): Promise<void> {
    this.dialing = null;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) this.host.releaseShared(conn);
  }

  private connect(): Promise<Conn> {
    if (this.conn !== null) {
      this.host.releaseShared(this.conn);
      this.conn = null;
    }
    if (this.dialing !== null) return this.dialing;
    const dialing: Promise<Conn> = this.host.dialShared().then(
      (conn) => {
        if (this.dialing !== dialing) {
          // close() gave this dial up (a purge, say) and a newer dial may own
          // the slot: release it; its callers fail with its close error.
          this.host.releaseShared(conn);
          return conn;
        }
        this.dialing = null;
        this.conn = conn;
        return conn;
      },
      (err: unknown) => {
        if (this.dialing === dialing) this.dialing = null;
        throw err;
      },
    );
    this.dialing = dialing;
    return dialing;
  }
}
