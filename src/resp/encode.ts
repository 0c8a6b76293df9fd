/**
 * RESP command encoder: a command and its arguments become the bytes of one
 * RESP array of bulk strings, written into a reusable arena.
 */

/** An object that knows its own Redis representation (redigo's `Argument`). */
export interface RedisArgument {
  /** Called once per encoding; its result must be a primitive {@link Arg}. */
  redisArg(): PrimitiveArg;
}

/** What an argument may be before conversion. */
export type PrimitiveArg = string | Uint8Array | number | bigint | boolean | null | undefined;

/**
 * A command argument. Strings are sent as UTF-8, Buffers/Uint8Arrays as-is,
 * numbers in plain decimal notation, never exponent form (`1e21` is sent as
 * `1000000000000000000000`, `1e-7` as `0.0000001`; the shortest digits that
 * round-trip, as `String(n)` picks them; `Infinity` as `inf`), bigints in decimal, booleans as
 * `1`/`0`, null/undefined as the empty string, and a {@link RedisArgument} as
 * the result of its `redisArg()`. Anything else is a `TypeError`.
 */
export type Arg = PrimitiveArg | RedisArgument;

const ARENA_SIZE = 64 * 1024;
const EMPTY_ARENA = Buffer.alloc(0);
/** Buffers at least this large are referenced, not copied, when written. */
const BIG_BUFFER = 64 * 1024;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array (pass the command name and its arguments separately)';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

/**
 * `n` in plain decimal. `String(n)` switches to exponent form below 1e-6 and
 * from 1e21 on, which Redis reads as a float at best and refuses where it
 * wants an integer; those are rewritten with the same significant digits.
 */
export function decimal(n: number): string {
  const text = String(n);
  const e = text.indexOf('e');
  if (e < 0) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exponent = Number(text.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  const point = (dot < 0 ? mantissa.length : dot) + exponent; // digits before the decimal point
  const body = point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${body}` : body;
}

/**
 * Throws `TypeError` unless `cmd` is a non-empty string: a command name must
 * be text (`do('')` is handled before this, as a flush).
 */
export function checkCommand(cmd: unknown): void {
  if (typeof cmd !== 'string' || cmd === '') {
    throw new TypeError(`redisconn: the command name must be a non-empty string, got ${cmd === '' ? 'an empty string' : describe(cmd)}`);
  }
}

/**
 * An argument as it goes on the wire (before length framing): what a
 * cluster hashes for a key. Throws the TypeError encoding would (naming
 * argument `index`) for NaN or an unsupported type.
 */
export function wireArg(value: unknown, index: number): string | Uint8Array {
  return convert(value, index);
}

function convert(value: unknown, index: number): string | Uint8Array {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      if (Number.isFinite(value)) return decimal(value);
      if (value === Infinity) return 'inf';
      if (value === -Infinity) return '-inf';
      throw new TypeError(`redisconn: argument ${index} is NaN, which Redis cannot take`);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? '1' : '0';
    case 'undefined':
      return '';
    case 'object':
      if (value === null) return '';
      if (value instanceof Uint8Array) return value;
      if (typeof (value as Partial<RedisArgument>).redisArg === 'function') {
        const inner = (value as RedisArgument).redisArg();
        if (typeof inner === 'object' && inner !== null && !(inner instanceof Uint8Array)) {
          throw new TypeError(`redisconn: argument ${index}: redisArg() returned ${describe(inner)}, expected a primitive argument`);
        }
        return convert(inner, index);
      }
  }
  throw new TypeError(`redisconn: argument ${index} has unsupported type ${describe(value)}`);
}

/**
 * Throws the `TypeError` encoding would throw for `args`, without encoding
 * (and without calling `redisArg()`, whose result encoding checks later).
 */
export function checkArgs(args: readonly unknown[]): void {
  for (let i = 0; i < args.length; i++) {
    const value = args[i];
    if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
      if (typeof (value as Partial<RedisArgument>).redisArg !== 'function') convert(value, i);
    } else {
      convert(value, i);
    }
  }
}

function digitCount(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = (n / 10) | 0;
    digits++;
  }
  return digits;
}

/** Writes `prefix<n>\r\n` at `offset`; returns the new offset. */
function writeHeader(buf: Buffer, offset: number, prefix: number, n: number): number {
  buf[offset++] = prefix;
  const digits = digitCount(n);
  let pos = offset + digits;
  do {
    buf[--pos] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return writeCRLF(buf, offset + digits);
}

/** Strings up to this many UTF-16 units are measured and copied in JS when ASCII. */
const SHORT_STRING = 64;

/**
 * UTF-8 byte length of `s`. Short ASCII strings (keys, numbers, command
 * names: nearly every argument) are measured here, sparing a call into C++.
 */
function byteLength(s: string): number {
  const n = s.length;
  if (n > SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return n;
}

/** Writes `s`, whose UTF-8 length is `size`, at `offset`; returns the new offset. */
function writeString(buf: Buffer, offset: number, s: string, size: number): number {
  const n = s.length;
  if (size !== n || n > SHORT_STRING) return offset + buf.write(s, offset, 'utf8');
  for (let i = 0; i < n; i++) buf[offset + i] = s.charCodeAt(i);
  return offset + n;
}

function writeCRLF(buf: Buffer, offset: number): number {
  buf[offset] = 13;
  buf[offset + 1] = 10;
  return offset + 2;
}

function headerSize(n: number): number {
  return 3 + digitCount(n);
}

/**
 * Accumulates encoded commands for one connection. `write` converts and
 * validates every argument before a byte is written, so a bad argument leaves
 * the buffer untouched; `take` hands out what was written since the last take.
 * Not safe to share between connections (Node is single-threaded, but the
 * arena holds bytes that belong to one socket until they are flushed).
 */
export class CommandWriter {
  private arena: Buffer = Buffer.allocUnsafe(ARENA_SIZE);
  private start = 0;
  private end = 0;
  private sealed: Buffer[] = [];
  private pendingBytes = 0;
  // Scratch space reused by every write: converted arguments and their sizes.
  private readonly parts: (string | Uint8Array)[] = [];
  private readonly sizes: number[] = [];

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.pendingBytes;
  }

  /** Encodes one command. Throws `TypeError` (nothing written) on a bad command name or argument. */
  write(cmd: string, args: readonly unknown[]): void {
    checkCommand(cmd);
    const parts = this.parts;
    const sizes = this.sizes;
    const argc = args.length;
    const cmdSize = byteLength(cmd);
    let size = cmdSize;
    let total = headerSize(argc + 1) + headerSize(size) + size + 2;
    let referenced = 0; // bytes of big Buffers that will not be copied
    try {
      // Converting inside the try: when argument k is refused, the ones
      // before it are already in the scratch array and must be let go too.
      for (let i = 0; i < argc; i++) {
        const part = convert(args[i], i);
        size = typeof part === 'string' ? byteLength(part) : part.byteLength;
        parts[i] = part;
        sizes[i] = size;
        total += headerSize(size) + size + 2;
        if (size >= BIG_BUFFER && typeof part !== 'string') referenced += size;
      }
      this.reserve(total - referenced);
      this.writeConverted(cmd, cmdSize, argc);
      this.pendingBytes += total;
    } finally {
      // Do not keep user values alive through the scratch array.
      for (let i = 0; i < argc; i++) parts[i] = '';
    }
  }

  private writeConverted(cmd: string, cmdSize: number, argc: number): void {
    let buf = this.arena;
    let off = writeHeader(buf, this.end, 0x2a, argc + 1);
    off = writeHeader(buf, off, 0x24, cmdSize);
    off = writeCRLF(buf, writeString(buf, off, cmd, cmdSize));
    for (let i = 0; i < argc; i++) {
      const part = this.parts[i] as string | Uint8Array;
      const size = this.sizes[i] as number;
      off = writeHeader(buf, off, 0x24, size);
      if (typeof part === 'string') {
        off = writeString(buf, off, part, size);
      } else if (size >= BIG_BUFFER) {
        // Hand the caller's bytes to the socket as they are instead of copying.
        this.end = off;
        this.seal();
        this.sealed.push(Buffer.from(part.buffer, part.byteOffset, size));
        buf = this.arena;
        off = this.end;
      } else {
        buf.set(part, off);
        off += size;
      }
      off = writeCRLF(buf, off);
    }
    this.end = off;
  }

  /** Makes room for `total` contiguous bytes in the arena. */
  private reserve(total: number): void {
    if (this.end + total <= this.arena.length) return;
    this.seal();
    this.arena = Buffer.allocUnsafe(Math.max(ARENA_SIZE, total));
    this.start = 0;
    this.end = 0;
  }

  /** Moves the bytes written since the last seal into the list to be taken. */
  private seal(): void {
    if (this.end > this.start) {
      this.sealed.push(this.arena.subarray(this.start, this.end));
      this.start = this.end;
    }
  }

  /**
   * Returns everything written since the last call, or null when nothing was.
   * The returned Buffers stay valid: the arena never writes over bytes it gave
   * out, it moves on (and allocates a new arena when full).
   */
  take(): Buffer | Buffer[] | null {
    if (this.pendingBytes === 0) return null;
    this.pendingBytes = 0;
    this.seal();
    const sealed = this.sealed;
    if (sealed.length === 1) {
      const only = sealed[0] as Buffer;
      sealed.length = 0;
      return only;
    }
    this.sealed = [];
    return sealed;
  }

  /** Drops everything not yet taken. */
  clear(): void {
    this.pendingBytes = 0;
    this.sealed = [];
    this.start = this.end;
  }

  /** Drops everything, the arena included (a broken connection keeps no buffers); usable again after. */
  release(): void {
    this.clear();
    this.arena = EMPTY_ARENA;
    this.start = 0;
    this.end = 0;
  }
}

/** Encodes a single command into a fresh Buffer (convenience for tests and tools). */
export function encodeCommand(cmd: string, ...args: Arg[]): Buffer {
  const writer = new CommandWriter();
  writer.write(cmd, args);
  const out = writer.take();
  if (out === null) return Buffer.alloc(0);
  return Array.isArray(out) ? Buffer.concat(out) : out;
}
