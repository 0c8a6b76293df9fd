/**
 * Streaming RESP2/RESP3 decoder. Bytes go in with `feed`, whole replies come
 * out of `next`. Replies may straddle chunks at any byte; a partly received
 * aggregate is kept on an explicit stack so nothing is parsed twice, and a
 * large bulk string is assembled in one allocation of its exact size.
 */
import { ProtocolError, RedisError } from '../errors.js';

/**
 * A decoded reply. RESP2: `+` string, `-` {@link RedisError}, `:` number
 * (bigint beyond 2^53), `$` Buffer (string with `decodeStrings`), `*` array,
 * `$-1`/`*-1` null. RESP3 adds `_` null, `#` boolean, `,` number, `(` bigint,
 * `=` string, `!` RedisError, `%` Map (bulk-string keys become strings), `~`
 * Set, `>` array (see {@link Decoder.isPush}); attributes `|` are skipped.
 */
export type Reply =
  | string
  | Buffer
  | number
  | bigint
  | boolean
  | null
  | RedisError
  | Reply[]
  | Map<Reply, Reply>
  | Set<Reply>;

/** Limits and decoding choices of a {@link Decoder}. */
export interface DecoderOptions {
  /** Return bulk strings as UTF-8 strings instead of Buffers. Default false. */
  decodeStrings?: boolean;
  /** Largest bulk string accepted. Default 512 MiB (Redis's own limit). */
  maxBulkBytes?: number;
  /** Longest header or simple line accepted. Default 64 KiB. */
  maxLineBytes?: number;
  /** Deepest nesting of aggregates accepted. Default 1024. */
  maxDepth?: number;
}

/** Returned by {@link Decoder.next} when the buffered bytes hold no whole reply. */
export const NEED_MORE: unique symbol = Symbol('redisconn.needMore');

const MAX_AGGREGATE = 0x7fffffff;
/** A bulk body at least this large that is still arriving is assembled in place. */
const ASSEMBLE_THRESHOLD = 16 * 1024;
const EMPTY = Buffer.alloc(0);
/** parseElement opened a non-empty aggregate; its elements come next. */
const OPENED: unique symbol = Symbol('opened');

interface Frame {
  type: number;
  remaining: number;
  items: Reply[];
}

const T_SIMPLE = 0x2b; // +
const T_ERROR = 0x2d; // -
const T_INT = 0x3a; // :
const T_BULK = 0x24; // $
const T_ARRAY = 0x2a; // *
const T_NULL = 0x5f; // _
const T_BOOL = 0x23; // #
const T_DOUBLE = 0x2c; // ,
const T_BIGNUM = 0x28; // (
const T_VERBATIM = 0x3d; // =
const T_BLOBERR = 0x21; // !
const T_MAP = 0x25; // %
const T_SET = 0x7e; // ~
const T_PUSH = 0x3e; // >
const T_ATTR = 0x7c; // |

/**
 * An error reply as a value. Its stack would only show decoder internals, so
 * none is captured (which also keeps error replies cheap).
 */
function errorReply(message: string): RedisError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const err = new RedisError(message);
  Error.stackTraceLimit = limit;
  return err;
}

function printable(byte: number | undefined): string {
  if (byte === undefined) return 'end of data';
  return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `0x${byte.toString(16).padStart(2, '0')}`;
}

/** Parses a RESP integer from bytes [start, end); number when safe, else bigint. */
function parseInteger(buf: Buffer, start: number, end: number): number | bigint {
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  if (i >= end) throw new ProtocolError('redisconn: empty integer in reply');
  if (end - i <= 15) {
    let n = 0;
    for (; i < end; i++) {
      const d = (buf[i] as number) - 48;
      if (d < 0 || d > 9) throw new ProtocolError(`redisconn: bad integer ${JSON.stringify(buf.toString('latin1', start, end))} in reply`);
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }
  for (let j = i; j < end; j++) {
    const d = (buf[j] as number) - 48;
    if (d < 0 || d > 9) throw new ProtocolError(`redisconn: bad integer ${JSON.stringify(buf.toString('latin1', start, end))} in reply`);
  }
  const big = BigInt(buf.toString('latin1', start, end));
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function parseDouble(text: string): number {
  switch (text) {
    case 'inf':
    case '+inf':
      return Infinity;
    case '-inf':
      return -Infinity;
    case 'nan':
    case '-nan':
      return NaN;
  }
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new ProtocolError(`redisconn: bad double ${JSON.stringify(text)} in reply`);
  return value;
}

/**
 * Incremental RESP decoder for one connection. Not reusable after it threw a
 * {@link ProtocolError}: the stream is out of sync from then on.
 */
export class Decoder {
  /** True when the reply last returned by `next` was a RESP3 push (`>`). */
  isPush = false;

  private buf: Buffer = EMPTY;
  private pos = 0;
  private readonly stack: Frame[] = [];
  // A bulk body being assembled across chunks: target, bytes filled, type byte.
  private bulk: Buffer | null = null;
  private bulkFilled = 0;
  private bulkType = 0;
  // Type byte of the element parsed last: an empty push (`>0`) never closes a
  // frame, so this is how it still gets flagged as a push.
  private elementType = 0;
  // An attribute was skipped and the value it describes has not come yet:
  // the reply is unfinished even when no byte of it is held.
  private afterAttribute = false;

  private readonly decodeStrings: boolean;
  private readonly maxBulkBytes: number;
  private readonly maxLineBytes: number;
  private readonly maxDepth: number;

  constructor(options: DecoderOptions = {}) {
    this.decodeStrings = options.decodeStrings ?? false;
    this.maxBulkBytes = options.maxBulkBytes ?? 512 * 1024 * 1024;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.maxDepth = options.maxDepth ?? 1024;
  }

  /** True when bytes of an unfinished reply are held. */
  get hasPartial(): boolean {
    return this.pos < this.buf.length || this.stack.length > 0 || this.bulk !== null || this.afterAttribute;
  }

  /** Adds received bytes. The decoder keeps a reference to `chunk`. */
  feed(chunk: Buffer): void {
    // Only a body still missing bytes takes them: once it is full, what
    // follows it is already in `buf` and a further chunk must be appended.
    if (this.bulk !== null && this.bulkFilled < this.bulk.length) {
      const want = this.bulk.length - this.bulkFilled;
      const n = Math.min(want, chunk.length);
      chunk.copy(this.bulk, this.bulkFilled, 0, n);
      this.bulkFilled += n;
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
      this.buf = EMPTY;
      this.pos = 0;
    }
    if (this.pos < this.buf.length) {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    } else {
      this.buf = chunk;
    }
    this.pos = 0;
  }

  /** Throws when the stream ended inside a reply (EOF mid-reply). */
  end(): void {
    if (this.hasPartial) throw new ProtocolError('redisconn: connection closed in the middle of a reply');
  }

  /**
   * The next whole reply, or {@link NEED_MORE}. Throws {@link ProtocolError}
   * on malformed input; an error *reply* is returned as a RedisError value.
   */
  next(): Reply | typeof NEED_MORE {
    const stack = this.stack;
    for (;;) {
      let value: Reply;
      if (this.bulk !== null) {
        if (this.bulkFilled < this.bulk.length) return NEED_MORE;
        value = this.finishAssembledBulk();
      } else {
        const parsed = this.parseElement();
        if (parsed === NEED_MORE) return NEED_MORE;
        if (parsed === OPENED) continue;
        value = parsed;
      }
      // Hand the value to the enclosing aggregates, closing those now complete.
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.isPush = this.elementType === T_PUSH;
          this.afterAttribute = false;
          return value;
        }
        top.items.push(value);
        if (--top.remaining > 0) break;
        stack.pop();
        if (top.type === T_ATTR) {
          // Attributes describe the next value; drop them and read on.
          this.afterAttribute = true;
          break;
        }
        value = this.buildAggregate(top);
        if (stack.length === 0) {
          this.isPush = top.type === T_PUSH;
          this.afterAttribute = false;
          return value;
        }
      }
    }
  }

  private buildAggregate(frame: Frame): Reply {
    switch (frame.type) {
      case T_MAP: {
        const map = new Map<Reply, Reply>();
        const items = frame.items;
        for (let i = 0; i < items.length; i += 2) {
          const key = items[i] as Reply;
          map.set(Buffer.isBuffer(key) ? key.toString('utf8') : key, items[i + 1] as Reply);
        }
        return map;
      }
      case T_SET:
        return new Set(frame.items);
      default:
        return frame.items;
    }
  }

  /** Parses one element at `pos`: a value, OPENED, or NEED_MORE. */
  private parseElement(): Reply | typeof OPENED | typeof NEED_MORE {
    const buf = this.buf;
    const start = this.pos;
    if (start >= buf.length) return NEED_MORE;
    const lf = buf.indexOf(10, start + 1);
    // Judge the line by its length, not by how it was chunked: the limit
    // holds whether or not the LF is already here.
    if ((lf < 0 ? buf.length : lf) - start > this.maxLineBytes) {
      throw new ProtocolError(`redisconn: reply line longer than ${this.maxLineBytes} bytes`);
    }
    if (lf < 0) return NEED_MORE;
    const lineEnd = lf - 1;
    if (lineEnd <= start || buf[lineEnd] !== 13) throw new ProtocolError('redisconn: reply line not terminated by CRLF');
    const type = buf[start] as number;
    this.elementType = type;
    const lineStart = start + 1;
    const next = lf + 1;
    switch (type) {
      case T_BULK:
      case T_VERBATIM:
      case T_BLOBERR:
        return this.parseBulk(type, buf, lineStart, lineEnd, next);
      case T_ARRAY:
      case T_MAP:
      case T_SET:
      case T_PUSH:
      case T_ATTR:
        this.pos = next;
        return this.openAggregate(type, parseInteger(buf, lineStart, lineEnd));
    }
    this.pos = next;
    switch (type) {
      case T_SIMPLE:
        return buf.toString('utf8', lineStart, lineEnd);
      case T_ERROR:
        return errorReply(buf.toString('utf8', lineStart, lineEnd));
      case T_INT:
        return parseInteger(buf, lineStart, lineEnd);
      case T_NULL:
        if (lineEnd !== lineStart) throw new ProtocolError('redisconn: bad null in reply');
        return null;
      case T_BOOL:
        if (lineEnd === lineStart + 1 && buf[lineStart] === 0x74) return true;
        if (lineEnd === lineStart + 1 && buf[lineStart] === 0x66) return false;
        throw new ProtocolError('redisconn: bad boolean in reply');
      case T_DOUBLE:
        return parseDouble(buf.toString('latin1', lineStart, lineEnd));
      case T_BIGNUM: {
        const text = buf.toString('latin1', lineStart, lineEnd);
        if (!/^-?\d+$/.test(text)) throw new ProtocolError(`redisconn: bad big number ${JSON.stringify(text)} in reply`);
        return BigInt(text);
      }
    }
    throw new ProtocolError(`redisconn: unexpected reply type byte ${printable(type)}`);
  }

  private openAggregate(type: number, count: number | bigint): Reply | typeof OPENED {
    if (count === -1 && type === T_ARRAY) return null;
    if (typeof count !== 'number' || count < 0 || count > MAX_AGGREGATE) {
      throw new ProtocolError(`redisconn: bad aggregate length ${count} in reply`);
    }
    if (count === 0) {
      if (type === T_ATTR) {
        this.afterAttribute = true; // an empty attribute: nothing to drop, read on
        return OPENED;
      }
      return type === T_MAP ? new Map() : type === T_SET ? new Set() : [];
    }
    if (this.stack.length >= this.maxDepth) throw new ProtocolError(`redisconn: reply nested deeper than ${this.maxDepth}`);
    this.stack.push({ type, remaining: type === T_MAP || type === T_ATTR ? count * 2 : count, items: [] });
    return OPENED;
  }

  private parseBulk(type: number, buf: Buffer, lineStart: number, lineEnd: number, body: number): Reply | typeof NEED_MORE {
    const length = parseInteger(buf, lineStart, lineEnd);
    if (length === -1 && type === T_BULK) {
      this.pos = body;
      return null;
    }
    if (typeof length !== 'number' || length < 0 || length > this.maxBulkBytes) {
      throw new ProtocolError(`redisconn: bad bulk length ${length} in reply`);
    }
    const end = body + length;
    if (end + 2 > buf.length) {
      if (length >= ASSEMBLE_THRESHOLD && body <= buf.length) {
        // Copy what we have into a buffer of the final size; later chunks fill it.
        this.bulk = Buffer.allocUnsafe(length + 2);
        this.bulkFilled = buf.copy(this.bulk, 0, body, buf.length);
        this.bulkType = type;
        this.buf = EMPTY;
        this.pos = 0;
      }
      return NEED_MORE;
    }
    if (buf[end] !== 13 || buf[end + 1] !== 10) throw new ProtocolError('redisconn: bulk string not terminated by CRLF');
    this.pos = end + 2;
    return this.bulkValue(type, buf, body, end);
  }

  private finishAssembledBulk(): Reply {
    const bulk = this.bulk as Buffer;
    const length = bulk.length - 2;
    this.bulk = null;
    if (bulk[length] !== 13 || bulk[length + 1] !== 10) throw new ProtocolError('redisconn: bulk string not terminated by CRLF');
    if (this.bulkType === T_BULK && !this.decodeStrings) return bulk.subarray(0, length);
    return this.bulkValue(this.bulkType, bulk, 0, length);
  }

  private bulkValue(type: number, buf: Buffer, start: number, end: number): Reply {
    switch (type) {
      case T_BULK: {
        if (this.decodeStrings) return buf.toString('utf8', start, end);
        const out = Buffer.allocUnsafe(end - start);
        buf.copy(out, 0, start, end);
        return out;
      }
      case T_BLOBERR:
        return errorReply(buf.toString('utf8', start, end));
      default: // verbatim: "txt:" or "mkd:" then the text
        if (end - start < 4 || buf[start + 3] !== 0x3a) throw new ProtocolError('redisconn: bad verbatim string in reply');
        return buf.toString('utf8', start + 4, end);
    }
  }
}
