/**
 * The decoder against a broken or hostile server: memory follows the bytes
 * received, never a declared length (a large bulk is collected, then gets its
 * one buffer once half of it came); `maxReplyBytes` bounds one reply, refused
 * as early as the wire allows; `release()` drops everything held.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Decoder, NEED_MORE, type DecoderOptions, type Reply } from '../src/resp/decode.js';
import { ProtocolError, RedisError } from '../src/errors.js';
import { Rng } from './rng.js';
import { expectProtocolError } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;
const wire = (s: string): Buffer => Buffer.from(s, 'latin1');

function randomBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (let i = size & ~3; i < size; i++) out[i] = i & 0xff;
  // Protocol bytes inside the body must be taken as data.
  for (let i = 0; i + 6 <= size; i += 4099) out.write('\r\n$5\r\n', i, 'latin1');
  return out;
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return chunks;
}

/** Feeds every chunk, draining `next()` after each; returns all replies, then `end()`. */
function decodeChunks(chunks: Iterable<Buffer>, options?: DecoderOptions): Reply[] {
  const d = new Decoder(options);
  const out: Reply[] = [];
  for (const chunk of chunks) {
    d.feed(chunk);
    for (let r = d.next(); r !== NEED_MORE; r = d.next()) out.push(r);
  }
  d.end();
  return out;
}


const TOO_LARGE = /reply larger than maxReplyBytes \(\d+ bytes\)/;

/** Records the size of every Buffer allocation made through the Buffer statics. */
function spyAllocations(): number[] {
  const sizes: number[] = [];
  for (const fn of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const original = Buffer[fn].bind(Buffer) as (n: number, ...rest: unknown[]) => Buffer;
    vi.spyOn(Buffer, fn).mockImplementation(((n: number, ...rest: unknown[]) => {
      sizes.push(n);
      return original(n, ...rest);
    }) as never);
  }
  return sizes;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * process.memoryUsage().arrayBuffers once freed array buffers are gone: they
 * are released by a sweeper that runs after the GC, so collect until the
 * figure stops moving (or `below` is reached).
 */
async function settledArrayBuffers(below = 0): Promise<number> {
  let last = Infinity;
  for (let i = 0; i < 50; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const now = process.memoryUsage().arrayBuffers;
    if (now === last || now < below) return now;
    last = now;
  }
  return last;
}

// ---------------------------------------------------------------- large bulk memory

describe('decoder: a large bulk allocates from bytes received, not from its header', () => {
  it('$536870912 plus a few body bytes allocates little', () => {
    gc();
    const before = process.memoryUsage().arrayBuffers;
    // maxReplyBytes above 512 MiB: this is about the assembly, not the budget.
    const d = new Decoder({ maxReplyBytes: 1024 * MiB });
    d.feed(wire('$536870912\r\nabcdefgh'));
    expect(d.next()).toBe(NEED_MORE);
    d.feed(wire('ijklmnop'));
    expect(d.next()).toBe(NEED_MORE);
    expect(d.hasPartial).toBe(true);
    const growth = process.memoryUsage().arrayBuffers - before;
    expect(growth).toBeLessThan(8 * MiB);
    d.release();
  });

  it('with the default limits, $536870912 is refused at its header (it cannot fit in 512 MiB)', () => {
    const sizes = spyAllocations();
    const d = new Decoder();
    d.feed(wire('$536870912\r\nabc'));
    expectProtocolError(() => d.next(), TOO_LARGE);
    expect(Math.max(0, ...sizes)).toBeLessThan(64 * 1024);
  });

  it('the one buffer of the final size is allocated only once half the body has arrived', () => {
    for (const size of [16 * 1024 + 1, MiB, 3 * MiB + 7]) {
      const body = randomBytes(size, size);
      const input = Buffer.concat([wire(`$${size}\r\n`), body, wire('\r\n')]);
      const sizes = spyAllocations();
      const d = new Decoder();
      const header = `$${size}\r\n`.length;
      let fed = 0;
      let receivedAtAlloc = -1; // body bytes (CRLF included) fed when the final buffer was allocated
      const replies: Reply[] = [];
      for (const chunk of chunked(input, 4096 + 3)) {
        const seen = sizes.length;
        d.feed(chunk);
        fed += chunk.length;
        const received = Math.min(size + 2, Math.max(0, fed - header));
        for (let r = d.next(); r !== NEED_MORE; r = d.next()) replies.push(r);
        if (receivedAtAlloc < 0 && sizes.slice(seen).includes(size + 2)) receivedAtAlloc = received;
      }
      d.end();
      expect(replies.length).toBe(1);
      expect((replies[0] as Buffer).equals(body)).toBe(true);
      expect(sizes.filter((n) => n >= size).length, `one final buffer for ${size}`).toBe(1);
      expect(receivedAtAlloc * 2, `allocated after ${receivedAtAlloc} of ${size + 2} bytes`).toBeGreaterThanOrEqual(size + 2);
      // Nothing else is large (staging for small pieces takes 64 KiB at most).
      expect(Math.max(0, ...sizes.filter((n) => n < size))).toBeLessThanOrEqual(64 * 1024);
      vi.restoreAllMocks();
    }
  });

  it('bodies fed in random chunks across the half-way point decode byte-exact', () => {
    const rng = new Rng(0x1a2b3c4d);
    const plans: [number, [number, number]][] = [
      [16 * 1024, [1, 64]],
      [16 * 1024 + 1, [1, 64]],
      [16 * 1024 + 1, [1, 9000]],
      [MiB, [1, 8192]],
      [MiB, [1, 128 * 1024]],
      [MiB + 1, [900, 1200]], // around the staging threshold (1 KiB)
      [16 * MiB, [1, 128 * 1024]],
    ];
    for (const [size, [lo, hi]] of plans) {
      const body = randomBytes(size, size ^ lo);
      const input = Buffer.concat([wire(`*3\r\n+before\r\n$${size}\r\n`), body, wire('\r\n:7\r\n+after\r\n')]);
      const d = new Decoder();
      const replies: Reply[] = [];
      for (let at = 0; at < input.length; ) {
        const n = rng.range(lo, hi);
        d.feed(input.subarray(at, at + n));
        at += n;
        // Drain at random moments: feeds may follow each other without next().
        if (rng.next() < 0.7 || at >= input.length) {
          for (let r = d.next(); r !== NEED_MORE; r = d.next()) replies.push(r);
        }
      }
      d.end();
      const label = `${size} bytes in chunks of ${lo}..${hi}`;
      expect(replies.length, label).toBe(2);
      const [arr, after] = replies as [Reply[], Reply];
      expect(arr[0]).toBe('before');
      expect(Buffer.isBuffer(arr[1]), label).toBe(true);
      expect((arr[1] as Buffer).length, label).toBe(size);
      expect((arr[1] as Buffer).equals(body), label).toBe(true);
      expect(arr[2]).toBe(7);
      expect(after).toBe('after');
    }
  });

  it('large verbatim strings, blob errors and decodeStrings go through the same assembly', () => {
    const rng = new Rng(7);
    const text = 'é'.repeat(20_000); // 40,000 bytes of UTF-8
    const cases: [string, DecoderOptions, Reply][] = [
      [`$${Buffer.byteLength(text)}\r\n${text}\r\n`, { decodeStrings: true }, text],
      [`=${Buffer.byteLength(text) + 4}\r\ntxt:${text}\r\n`, {}, text],
      [`!${Buffer.byteLength(text) + 4}\r\nERR ${text}\r\n`, {}, new RedisError(`ERR ${text}`)],
    ];
    for (const [s, options, want] of cases) {
      const input = Buffer.from(s, 'utf8');
      const chunks: Buffer[] = [];
      for (let at = 0; at < input.length; ) {
        const n = rng.range(1, 6000);
        chunks.push(input.subarray(at, at + n));
        at += n;
      }
      expect(decodeChunks(chunks, options)).toEqual([want]);
    }
  });

  it('a body sent a few bytes per chunk does not hold an object per chunk', () => {
    const size = 4 * MiB;
    const source = randomBytes(size, 99);
    gc();
    const before = process.memoryUsage();
    const d = new Decoder();
    d.feed(wire(`$${size}\r\n`));
    expect(d.next()).toBe(NEED_MORE);
    // Just under half of the body, 3 bytes at a time: ~700k chunks.
    const half = size / 2 - 16;
    for (let at = 0; at < half; at += 3) d.feed(source.subarray(at, Math.min(at + 3, half)));
    expect(d.next()).toBe(NEED_MORE);
    gc();
    const after = process.memoryUsage();
    // Held: the 2 MiB received, in 64 KiB staging buffers; not 700k Buffer objects.
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(size / 2 + 2 * MiB);
    // And it still decodes exactly.
    d.feed(source.subarray(half));
    d.feed(wire('\r\n'));
    expect((d.next() as Buffer).equals(source)).toBe(true);
    d.end();
  });

  it('an assembled bulk that arrived through collected pieces still checks its CRLF', () => {
    const size = 40_000;
    const input = Buffer.concat([wire(`$${size}\r\n`), Buffer.alloc(size, 0x61), wire('xy')]);
    for (const n of [1, 100, 5000, 30_000]) {
      expectProtocolError(() => decodeChunks(chunked(input, n)), /not terminated by CRLF/);
    }
  });
});

// ---------------------------------------------------------------- maxReplyBytes

describe('decoder: maxReplyBytes', () => {
  it('a bulk whose declared length exceeds the budget is refused at its header', () => {
    const sizes = spyAllocations();
    const cases: [string, number][] = [
      ['$2000\r\n', 1000],
      ['$994\r\n', 1000], // 6 + 994 + 2 = 1002
      ['=268435456\r\n', 1000],
      ['!268435456\r\n', 1000],
      [`*2\r\n$500\r\n${'a'.repeat(500)}\r\n$490\r\n`, 1000], // 512 consumed, 498 more do not fit
      ['*1\r\n$268435456\r\nabc', 64 * MiB],
      ['%1\r\n+k\r\n$268435456\r\n', 64 * MiB],
    ];
    for (const [input, maxReplyBytes] of cases) {
      const d = new Decoder({ maxReplyBytes });
      d.feed(wire(input)); // the header and no body (or a few bytes of it)
      const err = expectProtocolError(() => {
        for (let r = d.next(); r !== NEED_MORE; r = d.next());
      }, TOO_LARGE);
      expect(err.message).toContain(`maxReplyBytes (${maxReplyBytes} bytes)`);
    }
    expect(Math.max(0, ...sizes)).toBeLessThan(64 * 1024);
  });

  it('maxBulkBytes still applies on its own', () => {
    expectProtocolError(() => decodeChunks([wire('$2000\r\n')], { maxBulkBytes: 1000, maxReplyBytes: MiB }), /bad bulk length 2000/);
  });

  it('an aggregate whose count cannot fit at 3 bytes an element is refused at its header', () => {
    // Default limit: 2^31-1 elements take 6 GiB at least.
    for (const header of ['*2147483647\r\n', '>2147483647\r\n', '~1000000000\r\n', '%500000000\r\n', '|500000000\r\n']) {
      const d = new Decoder();
      d.feed(wire(header));
      expectProtocolError(() => d.next(), TOO_LARGE);
    }
    // 2000 bytes: after "*664\r\n" (6) there is room for 664 elements of 3 bytes, not 665.
    const nulls = (n: number): string => `*${n}\r\n${'_\r\n'.repeat(n)}`;
    expect(decodeChunks([wire(nulls(664))], { maxReplyBytes: 2000 })).toEqual([new Array(664).fill(null)]);
    const d = new Decoder({ maxReplyBytes: 2000 });
    d.feed(wire('*665\r\n'));
    expectProtocolError(() => d.next(), TOO_LARGE);
    // A map counts two elements a pair.
    const m = new Decoder({ maxReplyBytes: 2000 });
    m.feed(wire('%333\r\n'));
    expectProtocolError(() => m.next(), TOO_LARGE);
    // Consumed bytes are taken off first: an inner count must fit in what is left.
    const nested = new Decoder({ maxReplyBytes: 2000 });
    nested.feed(wire(`*2\r\n+${'x'.repeat(1000)}\r\n*330\r\n`));
    expectProtocolError(() => nested.next(), TOO_LARGE);
  });

  it('an endless :1 stream in *2147483647 is refused after at most the limit plus one chunk', () => {
    const limit = MiB;
    const chunk = wire(':1\r\n'.repeat(16 * 1024)); // 64 KiB
    const d = new Decoder({ maxReplyBytes: limit });
    let fed = 0;
    const header = wire('*2147483647\r\n');
    let thrown: unknown;
    try {
      d.feed(header);
      fed += header.length;
      for (;;) {
        for (let r = d.next(); r !== NEED_MORE; r = d.next()) expect.unreachable('no reply expected');
        expect(fed, 'still accepted past the limit').toBeLessThanOrEqual(limit + chunk.length);
        d.feed(chunk);
        fed += chunk.length;
      }
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect((thrown as Error).message).toMatch(TOO_LARGE);
    expect(fed).toBeLessThanOrEqual(limit + chunk.length);
  });

  it('an endless stream whose header fits is refused as soon as its bytes pass the limit', () => {
    const limit = MiB;
    // 300,000 elements of 3 bytes would fit; these take 10 each.
    const element = ':1234567\r\n';
    const chunk = wire(element.repeat(6000)); // 60,000 bytes
    const d = new Decoder({ maxReplyBytes: limit });
    d.feed(wire('*300000\r\n'));
    expect(d.next()).toBe(NEED_MORE);
    let fed = 10;
    let thrown: unknown;
    try {
      for (;;) {
        expect(fed, 'still accepted past the limit').toBeLessThanOrEqual(limit + chunk.length);
        d.feed(chunk);
        fed += chunk.length;
        expect(d.next()).toBe(NEED_MORE);
      }
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect((thrown as Error).message).toMatch(TOO_LARGE);
    expect(fed).toBeGreaterThan(limit);
    expect(fed).toBeLessThanOrEqual(limit + chunk.length);
  });

  it('a reply of exactly maxReplyBytes is accepted, one byte more is refused', () => {
    const big = 'b'.repeat(40_000);
    const vectors: [string, string, Reply, DecoderOptions?][] = [
      ['simple string', '+OK\r\n', 'OK'],
      ['null bulk', '$-1\r\n', null],
      ['bulk', '$3\r\nfoo\r\n', Buffer.from('foo')],
      ['integer', ':12345\r\n', 12345],
      ['nested array', '*2\r\n*1\r\n:1\r\n$3\r\nbar\r\n', [[1], Buffer.from('bar')]],
      ['map and set', '%1\r\n+k\r\n~2\r\n#t\r\n,1.5\r\n', new Map<Reply, Reply>([['k', new Set<Reply>([true, 1.5])]])],
      ['attribute then value', '|1\r\n+key\r\n+val\r\n:1\r\n', 1],
      ['push', '>2\r\n+pubsub\r\n_\r\n', ['pubsub', null]],
      ['large bulk', `*2\r\n$${big.length}\r\n${big}\r\n:1\r\n`, [Buffer.from(big), 1]],
      ['empty aggregates', '*3\r\n*0\r\n%0\r\n~0\r\n', [[], new Map(), new Set()]],
    ];
    for (const [name, s, want, options] of vectors) {
      const input = wire(s);
      for (const split of [(b: Buffer) => [b], (b: Buffer) => chunked(b, 1), (b: Buffer) => chunked(b, 7), (b: Buffer) => chunked(b, 5000)]) {
        const chunks = split(input);
        expect(decodeChunks(chunks, { ...options, maxReplyBytes: input.length }), name).toEqual([want]);
        expectProtocolError(() => decodeChunks(chunks, { ...options, maxReplyBytes: input.length - 1 }), TOO_LARGE);
      }
    }
  });

  it('the count starts over with each reply returned, pushes included', () => {
    const replies = ['+abcdefghijk\r\n', '>2\r\n+ab\r\n:12\r\n', '|1\r\n+a\r\n+b\r\n:1\r\n', '$6\r\nabcdef\r\n', '*2\r\n:1\r\n:22\r\n'];
    const limit = 16;
    for (const r of replies) expect(wire(r).length).toBeLessThanOrEqual(limit);
    const input = wire(replies.join('').repeat(50));
    for (const split of [(b: Buffer) => [b], (b: Buffer) => chunked(b, 1), (b: Buffer) => chunked(b, 13)]) {
      expect(decodeChunks(split(input), { maxReplyBytes: limit }).length).toBe(250);
    }
  });

  it('bytes of a skipped attribute count toward the reply it precedes', () => {
    // 16 bytes of attribute, then a 4-byte value: 20 in all.
    const input = wire('|1\r\n+k1\r\n+v123\r\n:1\r\n');
    expect(input.length).toBe(20);
    expect(decodeChunks([input], { maxReplyBytes: 20 })).toEqual([1]);
    expectProtocolError(() => decodeChunks([input], { maxReplyBytes: 19 }), TOO_LARGE);
    // Also when the value is a bulk refused at its header.
    const d = new Decoder({ maxReplyBytes: 30 });
    d.feed(wire('|1\r\n+k1\r\n+v123\r\n$10\r\n'));
    expectProtocolError(() => d.next(), TOO_LARGE);
  });

  it('must be a positive integer', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, -Infinity, '10', null]) {
      expect(() => new Decoder({ maxReplyBytes: bad as never }), String(bad)).toThrow(RangeError);
      expect(() => new Decoder({ maxReplyBytes: bad as never })).toThrow(/maxReplyBytes/);
    }
    expect(() => new Decoder({ maxReplyBytes: undefined })).not.toThrow();
    expect(decodeChunks([wire('_\r\n')], { maxReplyBytes: 3 })).toEqual([null]);
  });
});

// ---------------------------------------------------------------- release

describe('decoder: release()', () => {
  const big = 40_000;
  const states: [string, Buffer[]][] = [
    ['in the middle of a line', [wire('+abc')]],
    ['inside an aggregate', [wire('*3\r\n:1\r\n')]],
    ['after a skipped attribute', [wire('|1\r\n+a\r\n+b\r\n')]],
    ['waiting for a small bulk body', [wire('$100\r\nabc')]],
    ['collecting a large bulk', [wire(`*2\r\n$${big}\r\n`), Buffer.alloc(5000, 1), Buffer.alloc(100, 2)]],
    ['assembling a large bulk', [wire(`$${big}\r\n`), Buffer.alloc(30_000, 1)]],
    ['holding a finished large bulk and bytes after it', [wire(`$${big}\r\n`), Buffer.alloc(big, 1), wire('\r\n+next\r\n+and')]],
  ];

  for (const [name, chunks] of states) {
    it(`${name}: hasPartial is false after, and the decoder cannot be fooled into decoding again`, () => {
      const d = new Decoder();
      chunks.forEach((c, i) => {
        d.feed(c);
        // Leave the finished bulk undrained: release must drop it too.
        if (i < chunks.length - 1 || !name.startsWith('holding')) expect(d.next()).toBe(NEED_MORE);
      });
      expect(d.hasPartial).toBe(true);
      d.release();
      expect(d.hasPartial).toBe(false);
      expect(() => d.end()).not.toThrow();
      // A fresh, valid feed is dropped, never decoded (nor glued to old bytes).
      expect(() => d.feed(wire('+OK\r\n'))).not.toThrow();
      expect(d.hasPartial).toBe(false);
      expectProtocolError(() => d.next(), /release/);
      expectProtocolError(() => d.next(), /release/);
      d.release(); // idempotent
      expect(d.hasPartial).toBe(false);
    });
  }

  it('on a fresh decoder and between replies', () => {
    const d = new Decoder();
    d.feed(wire('+a\r\n'));
    expect(d.next()).toBe('a');
    d.release();
    expect(d.hasPartial).toBe(false);
    expectProtocolError(() => d.next());
  });

  it('lets go of collected chunks', async () => {
    const d = new Decoder();
    // The memory of the chunks, not the Buffer objects: a piece may be a subarray.
    const refs = ((): WeakRef<ArrayBufferLike>[] => {
      const a = Buffer.concat([wire('$1000000\r\n'), Buffer.alloc(100_000, 3)]);
      const b = Buffer.alloc(100_000, 4);
      d.feed(a);
      expect(d.next()).toBe(NEED_MORE);
      d.feed(b);
      expect(d.next()).toBe(NEED_MORE);
      return [new WeakRef(a.buffer), new WeakRef(b.buffer)];
    })();
    d.release();
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job ends
    gc();
    expect(refs.map((r) => r.deref())).toEqual([undefined, undefined]);
  });

  it('lets go of the assembly buffer', async () => {
    const size = 64 * MiB;
    const source = Buffer.alloc(MiB, 5);
    const base = await settledArrayBuffers();
    const d = new Decoder();
    d.feed(wire(`$${size}\r\n`));
    expect(d.next()).toBe(NEED_MORE);
    for (let i = 0; i < 40; i++) d.feed(source); // past half: the 64 MiB buffer exists
    expect(d.next()).toBe(NEED_MORE);
    expect((await settledArrayBuffers()) - base).toBeGreaterThan(size - MiB);
    d.release();
    expect((await settledArrayBuffers(base + 8 * MiB)) - base).toBeLessThan(8 * MiB);
  });
});
