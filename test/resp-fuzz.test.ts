/**
 * Seeded fuzzing of the RESP codec. Every case is generated from its own seed
 * (SEED mixed with the case number), so a failure names a case that can be
 * replayed alone.
 *
 * Properties checked:
 * - valid streams, split at random points and drained at random moments,
 *   decode to exactly the values they were generated from;
 * - mutated valid streams and random bytes never make the decoder throw
 *   anything but ProtocolError, and every drain loop terminates (the number
 *   of next() calls is bounded by the input size);
 * - memory stays bounded (small limits, heap measured after a forced GC);
 * - encoded commands decode back to the bytes of their arguments.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Decoder, NEED_MORE, type DecoderOptions, type Reply } from '../src/resp/decode.js';
import { CommandWriter, decimal, encodeCommand, type Arg } from '../src/resp/encode.js';
import { ProtocolError, RedisError } from '../src/errors.js';
import { Rng } from './rng.js';

const SEED = 0x5eed_2024;
const VALID_CASES = 40_000;
const MUTATED_CASES = 30_000;
const RANDOM_CASES = 30_000;
const ENCODER_CASES = 10_000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

// ---------------------------------------------------------------- PRNG (test/rng.ts)

const caseSeed = (kind: number, i: number): number => (SEED ^ Math.imul(kind + 1, 0x85ebca6b) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;

// ---------------------------------------------------------------- valid values

const TEXT_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :-_$*+#,(=!%~>|', 'é', '日', '😀', '\t'];
/** Bytes that mean something in RESP: the mutators and the random inputs favour them. */
const SPECIAL = Buffer.from('\r\n\r\n$*:+-_#,(=!%~>|0123456789-1tf', 'latin1');

function text(rng: Rng, max: number): string {
  let s = '';
  const n = rng.int(max + 1);
  for (let i = 0; i < n; i++) s += rng.pick(TEXT_CHARS);
  return s;
}

function digits(rng: Rng, n: number): string {
  let s = String(rng.range(1, 9));
  for (let i = 1; i < n; i++) s += String(rng.int(10));
  return s;
}

interface Gen {
  /** Whether bulk strings decode as strings. */
  decodeStrings: boolean;
  /** Chance that a bulk string is big enough to be assembled across chunks. */
  bigBulk: number;
}

interface Item {
  parts: Buffer[];
  value: Reply;
}

const line = (prefix: string, body: string): Buffer => Buffer.from(`${prefix}${body}\r\n`, 'utf8');

function blob(prefix: string, body: Buffer): Buffer[] {
  return [Buffer.from(`${prefix}${body.length}\r\n`, 'latin1'), body, Buffer.from('\r\n', 'latin1')];
}

function bulkBody(rng: Rng, g: Gen): Buffer {
  if (rng.chance(g.bigBulk)) {
    const n = rng.range(16 * 1024, 40 * 1024);
    const out = Buffer.alloc(n, rng.int(256));
    for (let i = 0; i < 64; i++) out[rng.int(n)] = rng.pick([13, 10, 0x24, rng.int(256)]);
    return out;
  }
  return rng.bytes(rng.int(rng.chance(0.1) ? 300 : 24));
}

function genInteger(rng: Rng): Item {
  if (rng.chance(0.6)) {
    const n = rng.range(-1000, 1000);
    return { parts: [line(':', String(n))], value: n };
  }
  const t = (rng.chance(0.5) ? '-' : '') + digits(rng, rng.range(1, 19));
  const big = BigInt(t);
  const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
  return { parts: [line(':', t)], value: safe ? Number(big) : big };
}

function genDouble(rng: Rng): Item {
  const forms: [string, number][] = [
    ['inf', Infinity],
    ['-inf', -Infinity],
    ['nan', NaN],
    ['10', 10],
    ['1.5e-7', 1.5e-7],
  ];
  if (rng.chance(0.3)) {
    const [t, v] = rng.pick(forms);
    return { parts: [line(',', t)], value: v };
  }
  const v = (rng.next() - 0.5) * 10 ** rng.range(-10, 20);
  const t = String(v);
  return { parts: [line(',', t)], value: Number(t) };
}

/** A value that is not an aggregate. */
function genScalar(rng: Rng, g: Gen): Item {
  switch (rng.int(13)) {
    case 0: {
      const s = text(rng, 20);
      return { parts: [line('+', s)], value: s };
    }
    case 1: {
      const s = `ERR ${text(rng, 20)}`;
      return { parts: [line('-', s)], value: new RedisError(s) };
    }
    case 2:
      return genInteger(rng);
    case 3:
    case 4: {
      const body = bulkBody(rng, g);
      return { parts: blob('$', body), value: g.decodeStrings ? body.toString('utf8') : Buffer.from(body) };
    }
    case 5:
      return { parts: [line('$', '-1')], value: null };
    case 6:
      return { parts: [line('_', '')], value: null };
    case 7: {
      const b = rng.chance(0.5);
      return { parts: [line('#', b ? 't' : 'f')], value: b };
    }
    case 8:
      return genDouble(rng);
    case 9: {
      const t = (rng.chance(0.5) ? '-' : '') + digits(rng, rng.range(1, 45));
      return { parts: [line('(', t)], value: BigInt(t) };
    }
    case 10: {
      const body = Buffer.concat([Buffer.from(rng.pick(['txt:', 'mkd:']), 'latin1'), bulkBody(rng, g)]);
      return { parts: blob('=', body), value: body.toString('utf8', 4) };
    }
    case 11: {
      const body = Buffer.from(`SYNTAX ${text(rng, 30)}`, 'utf8');
      return { parts: blob('!', body), value: new RedisError(body.toString('utf8')) };
    }
    default:
      return { parts: [line('*', '-1')], value: null };
  }
}

/** Map keys: the decoder turns bulk-string keys into strings. */
function genKey(rng: Rng): Item {
  switch (rng.int(3)) {
    case 0: {
      const s = text(rng, 8);
      return { parts: [line('+', s)], value: s };
    }
    case 1: {
      const body = rng.bytes(rng.int(8));
      return { parts: blob('$', body), value: body.toString('utf8') };
    }
    default:
      return genInteger(rng);
  }
}

/** An attribute (to be skipped by the decoder), or nothing. */
function maybeAttribute(rng: Rng, g: Gen): Buffer[] {
  if (!rng.chance(0.04)) return [];
  const n = rng.int(3);
  const parts: Buffer[] = [line('|', String(n))];
  for (let i = 0; i < n; i++) parts.push(...genKey(rng).parts, ...genScalar(rng, g).parts);
  return parts;
}

function genValue(rng: Rng, g: Gen, depth: number): Item {
  const attr = maybeAttribute(rng, g);
  let item: Item;
  if (depth >= 4 || rng.chance(0.6)) {
    item = genScalar(rng, g);
  } else {
    switch (rng.int(3)) {
      case 0: {
        const n = rng.int(6);
        const parts: Buffer[] = [line('*', String(n))];
        const value: Reply[] = [];
        for (let i = 0; i < n; i++) {
          const e = genValue(rng, g, depth + 1);
          parts.push(...e.parts);
          value.push(e.value);
        }
        item = { parts, value };
        break;
      }
      case 1: {
        const n = rng.int(5);
        const parts: Buffer[] = [line('%', String(n))];
        const value = new Map<Reply, Reply>();
        for (let i = 0; i < n; i++) {
          const k = genKey(rng);
          const v = genValue(rng, g, depth + 1);
          parts.push(...k.parts, ...v.parts);
          value.set(k.value, v.value);
        }
        item = { parts, value };
        break;
      }
      default: {
        const n = rng.int(6);
        const parts: Buffer[] = [line('~', String(n))];
        const items: Reply[] = [];
        for (let i = 0; i < n; i++) {
          const e = genScalar(rng, g);
          parts.push(...e.parts);
          items.push(e.value);
        }
        item = { parts, value: new Set(items) };
      }
    }
  }
  if (attr.length > 0) item.parts.unshift(...attr);
  return item;
}

interface Expected {
  value: Reply;
  push: boolean;
}

function genStream(rng: Rng, g: Gen): { bytes: Buffer; expected: Expected[] } {
  const parts: Buffer[] = [];
  const expected: Expected[] = [];
  const n = rng.range(1, 6);
  for (let i = 0; i < n; i++) {
    if (rng.chance(0.1)) {
      // A push: only at the top level.
      const count = rng.int(4);
      parts.push(...maybeAttribute(rng, g), line('>', String(count)));
      const value: Reply[] = [];
      for (let j = 0; j < count; j++) {
        const e = genValue(rng, g, 1);
        parts.push(...e.parts);
        value.push(e.value);
      }
      expected.push({ value, push: true });
    } else {
      const e = genValue(rng, g, 0);
      parts.push(...e.parts);
      expected.push({ value: e.value, push: false });
    }
  }
  return { bytes: Buffer.concat(parts), expected };
}

// ---------------------------------------------------------------- comparing

function same(a: Reply, b: Reply): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (a === null || typeof a !== 'object' || b === null || typeof b !== 'object') return a === b;
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof RedisError) return b instanceof RedisError && a.message === b.message && a.code === b.code;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i] as Reply));
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    const ea = [...a.entries()];
    const eb = [...b.entries()];
    return ea.every(([k, v], i) => same(k, (eb[i] as [Reply, Reply])[0]) && same(v, (eb[i] as [Reply, Reply])[1]));
  }
  if (a instanceof Set) {
    if (!(b instanceof Set) || a.size !== b.size) return false;
    const vb = [...b];
    return [...a].every((x, i) => same(x, vb[i] as Reply));
  }
  return false;
}

// ---------------------------------------------------------------- feeding

/** Cuts `bytes` into chunks: whole, byte by byte, or at random points. */
function split(rng: Rng, bytes: Buffer): Buffer[] {
  const mode = rng.int(10);
  if (mode === 0 || bytes.length === 0) return [bytes];
  if (mode === 1 && bytes.length <= 512) {
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1));
    return out;
  }
  const max = rng.pick([2, 5, 16, 64, 1024, 8192]);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = rng.range(1, max);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  if (rng.chance(0.05)) out.splice(rng.int(out.length + 1), 0, Buffer.alloc(0)); // an empty read
  return out;
}

interface Run {
  replies: Reply[];
  pushes: boolean[];
  /** What was thrown, if anything. */
  thrown?: unknown;
}

/**
 * Feeds the chunks, draining at random moments (sometimes not at all between
 * feeds, sometimes one reply only), then drains fully and calls end(). Fails
 * the test if the number of next() calls exceeds a bound linear in the input:
 * each call either returns NEED_MORE (at most once per drain) or consumes at
 * least three bytes.
 */
function run(rng: Rng, chunks: Buffer[], options: DecoderOptions): Run {
  const d = new Decoder(options);
  const out: Run = { replies: [], pushes: [] };
  let total = 0;
  for (const c of chunks) total += c.length;
  const budget = 2 * total + 2 * chunks.length + 16;
  let calls = 0;
  const drain = (max: number): void => {
    for (let i = 0; i < max; i++) {
      if (++calls > budget) throw new Error(`decoder did not terminate: ${calls} next() calls for ${total} bytes`);
      const r = d.next();
      if (r === NEED_MORE) return;
      out.replies.push(r);
      out.pushes.push(d.isPush);
    }
  };
  try {
    for (const c of chunks) {
      d.feed(c);
      const p = rng.next();
      if (p < 0.75) drain(Infinity);
      else if (p < 0.85) drain(1);
    }
    drain(Infinity);
    d.end();
  } catch (err) {
    out.thrown = err;
  }
  return out;
}

/**
 * Chunking must not change the outcome: the same replies, and a throw in
 * both runs or in neither.
 */
function sameOutcome(a: Run, b: Run): boolean {
  return (
    (a.thrown === undefined) === (b.thrown === undefined) &&
    a.replies.length === b.replies.length &&
    a.replies.every((r, i) => same(r, b.replies[i] as Reply) && a.pushes[i] === b.pushes[i])
  );
}

const hex = (b: Buffer): string => (b.length > 200 ? `${b.subarray(0, 200).toString('hex')}…(${b.length} bytes)` : b.toString('hex'));

// ---------------------------------------------------------------- mutating

function mutate(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const count = rng.range(1, 4);
  for (let m = 0; m < count; m++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(8)) {
      case 0: // flip a bit
        if (b.length > 0) {
          const j = at % b.length;
          b[j] = (b[j] as number) ^ (1 << rng.int(8));
        }
        break;
      case 1: // overwrite with a meaningful byte
        if (b.length > 0) b[at % b.length] = SPECIAL[rng.int(SPECIAL.length)] as number;
        break;
      case 2: // insert a byte
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.chance(0.5) ? (SPECIAL[rng.int(SPECIAL.length)] as number) : rng.int(256)]), b.subarray(at)]);
        break;
      case 3: // delete a byte
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case 4: { // duplicate a span
        const n = rng.int(16);
        b = Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
        break;
      }
      case 5: { // delete a span
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.int(16))]);
        break;
      }
      case 6: // truncate
        b = b.subarray(0, at);
        break;
      default: // grow a length or count: insert digits after a type byte
        b = Buffer.concat([b.subarray(0, at), Buffer.from(digits(rng, rng.range(1, 12)), 'latin1'), b.subarray(at)]);
    }
  }
  return b;
}

/** Fragments of RESP: strung together at random they often parse, or nearly. */
const TOKENS = [
  '\r\n', '\r\n', '\r\n', '\r', '\n', '$1', '$3', '$0', '$-1', '$-2', '*1', '*2', '*0', '*-1', ':1', ':-7',
  ':99999999999999999999', '+OK', '-ERR x', '_', '#t', '#f', ',1.5', ',inf', ',nan', '(123', '=5', '=8', 'txt:',
  '!3', '%1', '%2', '~1', '~2', '>1', '>2', '|1', '|0', 'abc', 'x', '9', '4096', '4097',
].map((t) => Buffer.from(t, 'latin1'));

function randomBytes(rng: Rng): Buffer {
  if (rng.chance(0.5)) {
    const parts: Buffer[] = [];
    const n = rng.int(40);
    for (let i = 0; i < n; i++) parts.push(rng.chance(0.9) ? rng.pick(TOKENS) : rng.bytes(1));
    return Buffer.concat(parts);
  }
  const n = rng.int(97);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = rng.chance(0.6) ? (SPECIAL[rng.int(SPECIAL.length)] as number) : rng.int(256);
  return out;
}

// ---------------------------------------------------------------- the fuzz

/** Small limits, drawn per case, so that inputs cross them often. */
function smallLimits(rng: Rng, decodeStrings: boolean): DecoderOptions {
  return {
    maxBulkBytes: rng.pick([8, 64, 4096]),
    maxLineBytes: rng.pick([16, 48, 256]),
    maxDepth: rng.pick([2, 8]),
    decodeStrings,
  };
}

describe('RESP fuzz', () => {
  const figures: string[] = [];
  const heapStart = (() => {
    gc();
    return process.memoryUsage();
  })();
  const started = performance.now();
  let inputs = 0;
  let peakArrayBuffers = 0;
  const sampleMemory = (): void => {
    const ab = process.memoryUsage().arrayBuffers;
    if (ab > peakArrayBuffers) peakArrayBuffers = ab;
  };

  it(`${VALID_CASES} valid streams, split and drained at random, round-trip`, () => {
    let bytes = 0;
    let replies = 0;
    for (let i = 0; i < VALID_CASES; i++) {
      const rng = new Rng(caseSeed(0, i));
      const g: Gen = { decodeStrings: rng.chance(0.25), bigBulk: 1 / 150 };
      const { bytes: input, expected } = genStream(rng, g);
      const chunks = split(rng, input);
      const got = run(rng, chunks, { decodeStrings: g.decodeStrings });
      const ok =
        got.thrown === undefined &&
        got.replies.length === expected.length &&
        expected.every((e, j) => same(got.replies[j] as Reply, e.value) && got.pushes[j] === e.push);
      if (!ok) {
        expect.fail(
          `valid case ${i} (seed ${caseSeed(0, i)}): ${String(got.thrown ?? 'wrong values')}\n` +
            `input ${hex(input)}\nchunks ${chunks.map((c) => c.length).join(',')}\n` +
            `got ${got.replies.length} replies, want ${expected.length}`,
        );
      }
      bytes += input.length;
      replies += expected.length;
      if (i % 5000 === 0) sampleMemory();
    }
    inputs += VALID_CASES;
    figures.push(`valid: ${VALID_CASES} streams, ${replies} replies, ${(bytes / 1e6).toFixed(1)} MB`);
  });

  it(`${MUTATED_CASES} mutated valid streams throw nothing but ProtocolError, whatever the chunking`, () => {
    let rejected = 0;
    for (let i = 0; i < MUTATED_CASES; i++) {
      const rng = new Rng(caseSeed(1, i));
      const g: Gen = { decodeStrings: rng.chance(0.25), bigBulk: 0 };
      const input = mutate(rng, genStream(rng, g).bytes);
      const options = smallLimits(rng, g.decodeStrings);
      const got = run(rng, split(rng, input), options);
      if (got.thrown !== undefined) {
        if (!(got.thrown instanceof ProtocolError)) {
          expect.fail(`mutated case ${i} (seed ${caseSeed(1, i)}) threw ${String(got.thrown)}\ninput ${hex(input)}`);
        }
        rejected++;
      }
      if (!sameOutcome(got, run(rng, [input], options))) {
        expect.fail(`mutated case ${i} (seed ${caseSeed(1, i)}): outcome depends on chunking\ninput ${hex(input)}`);
      }
      if (i % 5000 === 0) sampleMemory();
    }
    inputs += MUTATED_CASES;
    figures.push(`mutated: ${MUTATED_CASES} streams, ${rejected} rejected with ProtocolError`);
  });

  it(`${RANDOM_CASES} random byte strings and token soups throw nothing but ProtocolError, whatever the chunking`, () => {
    let rejected = 0;
    let accepted = 0;
    for (let i = 0; i < RANDOM_CASES; i++) {
      const rng = new Rng(caseSeed(2, i));
      const input = randomBytes(rng);
      const options = smallLimits(rng, rng.chance(0.5));
      const got = run(rng, split(rng, input), options);
      if (got.thrown !== undefined) {
        if (!(got.thrown instanceof ProtocolError)) {
          expect.fail(`random case ${i} (seed ${caseSeed(2, i)}) threw ${String(got.thrown)}\ninput ${hex(input)}`);
        }
        rejected++;
      }
      if (got.replies.length > 0) accepted++;
      if (!sameOutcome(got, run(rng, [input], options))) {
        expect.fail(`random case ${i} (seed ${caseSeed(2, i)}): outcome depends on chunking\ninput ${hex(input)}`);
      }
      if (i % 5000 === 0) sampleMemory();
    }
    inputs += RANDOM_CASES;
    figures.push(`random: ${RANDOM_CASES} inputs, ${rejected} rejected, ${accepted} yielded at least one reply`);
  });

  it(`${ENCODER_CASES} random commands encode and decode back to their arguments`, () => {
    const writer = new CommandWriter();
    let pending: Buffer[] = [];
    const genArg = (rng: Rng): { arg: Arg; bytes: Buffer } => {
      switch (rng.int(9)) {
        case 0: {
          // Any UTF-16 code units, lone surrogates included.
          let s = '';
          const n = rng.int(12);
          for (let i = 0; i < n; i++) s += String.fromCharCode(rng.chance(0.5) ? rng.int(128) : rng.int(0x10000));
          return { arg: s, bytes: Buffer.from(s, 'utf8') };
        }
        case 1: {
          const s = text(rng, 30);
          return { arg: s, bytes: Buffer.from(s, 'utf8') };
        }
        case 2: {
          const n = rng.chance(0.5) ? rng.range(-1e9, 1e9) : (rng.next() - 0.5) * 10 ** rng.range(-12, 25);
          return { arg: n, bytes: Buffer.from(decimal(n), 'latin1') };
        }
        case 3: {
          const n = BigInt.asIntN(64, BigInt(`0x${rng.bytes(8).toString('hex')}`));
          return { arg: n, bytes: Buffer.from(n.toString(), 'latin1') };
        }
        case 4: {
          const b = rng.chance(0.5);
          return { arg: b, bytes: Buffer.from(b ? '1' : '0', 'latin1') };
        }
        case 5:
          return { arg: rng.chance(0.5) ? null : undefined, bytes: Buffer.alloc(0) };
        case 6: {
          const b = rng.bytes(rng.chance(0.01) ? rng.range(64 * 1024, 80 * 1024) : rng.int(40));
          return { arg: rng.chance(0.5) ? b : new Uint8Array(b.buffer, b.byteOffset, b.length), bytes: Buffer.from(b) };
        }
        case 7: {
          const v = rng.range(0, 100000);
          return { arg: { redisArg: () => v }, bytes: Buffer.from(String(v), 'latin1') };
        }
        default: {
          const [v, t] = rng.pick([[Infinity, 'inf'], [-Infinity, '-inf'], [0, '0'], [-0, '0']] as const);
          return { arg: v, bytes: Buffer.from(t, 'latin1') };
        }
      }
    };
    const checkPending = (): void => {
      const out = writer.take();
      const got = out === null ? Buffer.alloc(0) : Array.isArray(out) ? Buffer.concat(out) : out;
      expect(got.equals(Buffer.concat(pending))).toBe(true);
      pending = [];
    };
    for (let i = 0; i < ENCODER_CASES; i++) {
      const rng = new Rng(caseSeed(3, i));
      const cmd = rng.pick(['SET', 'GET', 'HSET', 'ZADD', 'ÉCRIRE', 'x']);
      const generated = Array.from({ length: rng.int(6) }, () => genArg(rng));
      const args = generated.map((a) => a.arg);
      const encoded = encodeCommand(cmd, ...args);
      // The encoding decodes to the command and the bytes of each argument.
      const d = new Decoder();
      d.feed(encoded);
      const r = d.next();
      const want: Reply = [Buffer.from(cmd, 'utf8'), ...generated.map((a) => a.bytes)];
      if (!same(r as Reply, want) || d.next() !== NEED_MORE) {
        expect.fail(`encoder case ${i} (seed ${caseSeed(3, i)}): ${hex(encoded)}`);
      }
      // A shared writer produces the same bytes; a bad argument changes nothing.
      if (rng.chance(0.05)) {
        const before = writer.length;
        expect(() => writer.write(cmd, [...args, rng.pick([{}, [], Symbol('x'), NaN, () => 1])])).toThrow(TypeError);
        expect(writer.length).toBe(before);
      }
      writer.write(cmd, args);
      pending.push(encoded);
      if (rng.chance(0.2)) checkPending();
      if (i % 2000 === 0) sampleMemory();
    }
    checkPending();
    inputs += ENCODER_CASES;
    figures.push(`encoder: ${ENCODER_CASES} commands round-tripped`);
  });

  it('used bounded memory and time', () => {
    sampleMemory();
    const elapsed = performance.now() - started;
    gc();
    const heapEnd = process.memoryUsage();
    const growth = heapEnd.heapUsed - heapStart.heapUsed;
    const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
    figures.push(
      `total: ${inputs} inputs in ${(elapsed / 1000).toFixed(1)} s; heapUsed ${mb(heapStart.heapUsed)} → ${mb(heapEnd.heapUsed)} ` +
        `(growth ${mb(growth)} after GC); peak arrayBuffers sampled ${mb(peakArrayBuffers)}`,
    );
    console.log(`RESP fuzz (seed 0x${SEED.toString(16)}):\n  ${figures.join('\n  ')}`);
    expect(inputs).toBeGreaterThanOrEqual(100_000);
    // Generous: the decoders are garbage once a case ends; nothing may accumulate.
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    expect(heapEnd.arrayBuffers - heapStart.arrayBuffers).toBeLessThan(64 * 1024 * 1024);
  });
});
