/**
 * What the launchers share: polling for a state with a deadline, and
 * checking a loopback port is free.
 */
import net from 'node:net';

const POLL_MS = 25;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Polls `check` every 25 ms until it returns true (a string is kept as the
 * detail of why not yet); throws `<label>: <what> not reached within N ms`
 * (with the last error or detail) at `deadline` (a Date.now() time).
 */
export async function waitUntil(label: string, what: string, deadline: number, check: () => Promise<boolean | string>): Promise<void> {
  const started = Date.now();
  let last = '';
  for (;;) {
    try {
      const result = await check();
      if (result === true) return;
      if (typeof result === 'string') last = result;
    } catch (err) {
      last = errorText(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(`${label}: ${what} not reached within ${Date.now() - started} ms${last ? ` (last: ${last})` : ''}`);
    }
    await sleep(POLL_MS);
  }
}

/** True when nothing listens on (and nothing holds) 127.0.0.1:`port`. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The ports a launcher hands out: picked at random in [min, max] (below the
 * OS's ephemeral range, so outgoing connections never take them), each free
 * with its `companions` (offsets that must be free too: a cluster bus port),
 * and reserved until released so two starts in this process never pick the
 * same one.
 */
export class PortRange {
  private readonly reserved = new Set<number>();

  constructor(
    private readonly label: string,
    private readonly min: number,
    private readonly max: number,
    private readonly companions: readonly number[] = [],
  ) {}

  /** A free port, now reserved; throws after 200 tries. */
  async reserve(): Promise<number> {
    for (let tries = 0; tries < 200; tries++) {
      const port = this.min + Math.floor(Math.random() * (this.max - this.min + 1));
      if (this.reserved.has(port)) continue;
      this.reserved.add(port);
      if ((await portFree(port)) && (await this.companionsFree(port))) return port;
      this.reserved.delete(port);
    }
    const also = this.companions.map((offset) => `, P+${offset}`).join('');
    throw new Error(`${this.label}: no free port ${also === '' ? '' : `pair (P${also}) `}found in ${this.min}-${this.max}`);
  }

  release(port: number): void {
    this.reserved.delete(port);
  }

  private async companionsFree(port: number): Promise<boolean> {
    for (const offset of this.companions) if (!(await portFree(port + offset))) return false;
    return true;
  }
}
