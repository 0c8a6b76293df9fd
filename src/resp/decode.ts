/**
 * Streaming RESP2/RESP3 decoder. Bytes go in with `feed`, whole replies come
 * out of `next`. Replies may straddle chunks at any byte; a partly received
 * aggregate is kept on an explicit stack so nothing is parsed twice, and a
 * large bulk string is assembled in one allocation of its exact size.
 *
 * Memory follows the bytes actually received, never a length the server
 * declared: a large bulk body is collected as references to the arriving
 * chunks and only gets its one buffer once half of it is here, and
 * `maxReplyBytes` bounds what one reply may make the decoder hold.
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
  decodeStrings?: boolean | undefined;
  /** Largest bulk string accepted. Default 512 MiB (Redis's own limit). */
  maxBulkBytes?: number | undefined;
  /** Longest header or simple line accepted. Default 64 KiB. */
  maxLineBytes?: number | undefined;
  /** Deepest nesting of aggregates accepted. Default 1024. */
  maxDepth?: number | undefined;
  /**
   * Largest top-level reply accepted, in bytes on the wire: every header
   * line, simple line and bulk body with its CRLF counts, nested elements
   * included, and so do the bytes of attributes (`|`) skipped before the
   * value they describe. The count starts over with each reply returned by
   * {@link Decoder.next} (pushes included). Default 512 MiB.
   *
   * Exceeding it makes `next` throw a {@link ProtocolError} naming the limit,
   * as early as the wire allows: a bulk whose declared length does not fit
   * in what is left of the budget is refused at its header, before its body
   * arrives; an aggregate whose declared count could not fit at 3 bytes per
   * element (the shortest element, `_\r\n`) is refused at its header; any
   * other reply as soon as the bytes it consumed pass the limit. Like every
   * ProtocolError this leaves the decoder unusable.
   *
   * Must be a positive integer; anything else makes the constructor throw a
   * RangeError. `maxBulkBytes` applies as well: a bulk string must fit both.
   */
  maxReplyBytes?: number | undefined;
}

/** Returned by {@link Decoder.next} when the buffered bytes hold no whole reply. */
export const NEED_MORE: unique symbol = Symbol('redisconn.needMore');

const MAX_AGGREGATE = 0x7fffffff;
/** A bulk body at least this large that is still arriving is assembled in place. */
const ASSEMBLE_THRESHOLD = 16 * 1024;
/**
 * While a large body is collected, pieces shorter than SMALL_PIECE arriving
 * once FEW_PIECES are held are copied into a staging buffer of STAGE_BYTES
 * (capped at what the body still lacks) instead of referenced: a server
 * sending a body a few bytes per segment must not make us hold a Buffer (a
 * few hundred bytes of bookkeeping) per few bytes. Network-sized reads (one
 * MSS and up) and the first pieces of any size (a body straddling a few
 * chunks) are referenced, so each of their bytes is copied once.
 */
const SMALL_PIECE = 1024;
const FEW_PIECES = 64;
const STAGE_BYTES = 64 * 1024;
/** `bulkLength` of a released decoder (see {@link Decoder.release}). */
const RELEASED = -1;
const DEFAULT_MAX_REPLY_BYTES = 512 * 1024 * 1024;
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
 * {@link ProtocolError} (the stream is out of sync from then on), nor after
 * {@link Decoder.release}.
 */
export class Decoder {
  /** True when the reply last returned by `next` was a RESP3 push (`>`). */
  isPush = false;

  private buf: Buffer = EMPTY;
  private pos = 0;
  private readonly stack: Frame[] = [];
  // A large bulk body still arriving. bulkLength is its size with the CRLF
  // (0: none; RELEASED: the decoder was released), bulkFilled the bytes of it
  // received. Until half of it is here the bytes are kept as `pieces` (chunk
  // subarrays, small ones copied into `stage`, the open last piece, filled to
  // stageFilled); from then on in `bulk`, one buffer of the final size.
  private bulkLength = 0;
  private bulkFilled = 0;
  private bulkType = 0;
  private bulk: Buffer | null = null;
  private pieces: Buffer[] | null = null;
  private stage: Buffer | null = null;
  private stageFilled = 0;
  // Where in `buf` the budget of the reply being decoded ends: maxReplyBytes
  // past its first byte (see maxReplyBytes). It moves with `buf`: rebasing
  // `buf` or taking a large body out of it shifts it down by as many bytes.
  private replyEnd = 0;
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
  private readonly maxReplyBytes: number;

  /** Throws a RangeError naming `maxReplyBytes` when it is not a positive integer. */
  constructor(options: DecoderOptions = {}) {
    this.decodeStrings = options.decodeStrings ?? false;
    this.maxBulkBytes = options.maxBulkBytes ?? 512 * 1024 * 1024;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.maxDepth = options.maxDepth ?? 1024;
    const maxReplyBytes = options.maxReplyBytes === undefined ? DEFAULT_MAX_REPLY_BYTES : options.maxReplyBytes;
    if (!Number.isInteger(maxReplyBytes) || maxReplyBytes <= 0) {
      throw new RangeError(`redisconn: maxReplyBytes must be a positive integer, got ${String(maxReplyBytes)}`);
    }
    this.maxReplyBytes = maxReplyBytes;
    this.replyEnd = maxReplyBytes;
  }

  /** True when bytes of an unfinished reply are held. */
  get hasPartial(): boolean {
    return this.pos < this.buf.length || this.stack.length > 0 || this.bulkLength > 0 || this.afterAttribute;
  }

  /**
   * Adds received bytes. The decoder keeps a reference to `chunk` (or to
   * parts of it) until the replies in it are returned, so the caller must not
   * reuse its memory. After {@link Decoder.release} the chunk is dropped.
   */
  feed(chunk: Buffer): void {
    // Only a body still missing bytes takes them: once it is full, what
    // follows it is already in `buf` and a further chunk must be appended.
    if (this.bulkLength !== 0 && this.bulkFilled !== this.bulkLength) {
      if (this.bulkLength === RELEASED) return;
      const n = Math.min(this.bulkLength - this.bulkFilled, chunk.length);
      if (this.bulk !== null) {
        chunk.copy(this.bulk, this.bulkFilled, 0, n);
        this.bulkFilled += n;
      } else {
        this.collect(n === chunk.length ? chunk : chunk.subarray(0, n));
      }
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
    this.replyEnd -= this.pos;
    this.pos = 0;
  }

  /** Throws when the stream ended inside a reply (EOF mid-reply). */
  end(): void {
    if (this.hasPartial) throw new ProtocolError('redisconn: connection closed in the middle of a reply');
  }

  /**
   * Drops every buffer the decoder holds: unparsed bytes, a partly received
   * bulk body (collected chunks or its assembly buffer) and the partly built
   * aggregates. For a connection that broke, so that it keeps no reply bytes
   * alive. Idempotent. The decoder is not reusable afterwards: `hasPartial`
   * is false and `end` is quiet, `feed` drops its chunk, and `next` throws a
   * {@link ProtocolError}.
   */
  release(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.stack.length = 0;
    this.bulk = null;
    this.pieces = null;
    this.stage = null;
    this.stageFilled = 0;
    this.bulkLength = RELEASED;
    this.bulkFilled = 0;
    this.afterAttribute = false;
    this.replyEnd = 0;
  }

  /**
   * The next whole reply, or {@link NEED_MORE}. Throws {@link ProtocolError}
   * on malformed input, on a reply over a limit of {@link DecoderOptions}, and
   * after {@link Decoder.release}; an error *reply* is returned as a
   * RedisError value.
   */
  next(): Reply | typeof NEED_MORE {
    const stack = this.stack;
    for (;;) {
      let value: Reply;
      if (this.bulkLength !== 0) {
        if (this.bulkFilled !== this.bulkLength) {
          if (this.bulkLength === RELEASED) throw new ProtocolError('redisconn: decoder used after release()');
          return NEED_MORE;
        }
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
          this.replyEnd = this.pos + this.maxReplyBytes;
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
          this.replyEnd = this.pos + this.maxReplyBytes;
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
    }
    // A line is consumed whole: it must end within the reply's budget.
    if (next > this.replyEnd) throw this.replyTooLarge();
    this.pos = next;
    switch (type) {
      case T_ARRAY:
      case T_MAP:
      case T_SET:
      case T_PUSH:
      case T_ATTR:
        return this.openAggregate(type, parseInteger(buf, lineStart, lineEnd));
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
    // Every element takes 3 bytes at least (`_\r\n`): refuse now a count
    // that could not fit in what is left of the budget.
    if ((type === T_MAP || type === T_ATTR ? count * 2 : count) * 3 > this.replyEnd - this.pos) {
      throw this.replyTooLarge();
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

  private replyTooLarge(): ProtocolError {
    return new ProtocolError(`redisconn: reply larger than maxReplyBytes (${this.maxReplyBytes} bytes)`);
  }

  /**
   * Parses a bulk whose header line ends at `body` in `buf`. The body is
   * held against the reply's budget at its header, before it arrives.
   */
  private parseBulk(type: number, buf: Buffer, lineStart: number, lineEnd: number, body: number): Reply | typeof NEED_MORE {
    const length = parseInteger(buf, lineStart, lineEnd);
    if (length === -1 && type === T_BULK) {
      if (body > this.replyEnd) throw this.replyTooLarge();
      this.pos = body;
      return null;
    }
    if (typeof length !== 'number' || length < 0 || length > this.maxBulkBytes) {
      throw new ProtocolError(`redisconn: bad bulk length ${length} in reply`);
    }
    const end = body + length;
    if (end + 2 > this.replyEnd) throw this.replyTooLarge();
    if (end + 2 > buf.length) {
      if (length >= ASSEMBLE_THRESHOLD) this.startLargeBulk(type, buf, body, length + 2);
      return NEED_MORE;
    }
    if (buf[end] !== 13 || buf[end + 1] !== 10) throw new ProtocolError('redisconn: bulk string not terminated by CRLF');
    this.pos = end + 2;
    return this.bulkValue(type, buf, body, end);
  }

  /**
   * Takes over a large body still arriving, `total` bytes with its CRLF, of
   * which buf[body..] is here. Nothing is allocated from the declared length
   * alone: the bytes are collected (see `collect`) until half of them came.
   */
  private startLargeBulk(type: number, buf: Buffer, body: number, total: number): void {
    // The next `buf` starts with the byte after this body.
    this.replyEnd -= body + total;
    this.bulkType = type;
    this.bulkLength = total;
    this.bulkFilled = 0;
    this.pieces = [];
    if (body < buf.length) this.collect(buf.subarray(body));
    this.buf = EMPTY;
    this.pos = 0;
  }

  /**
   * Adds `piece` (at most what the large body still lacks) to the body. Small
   * pieces past the first few go into a staging buffer; once half of the body
   * is here, its final buffer is allocated, everything collected is copied in
   * and the pieces are dropped (later bytes are copied straight into it by
   * `feed`).
   */
  private collect(piece: Buffer): void {
    const pieces = this.pieces as Buffer[];
    const length = piece.length;
    let stage = this.stage;
    if (stage !== null && length <= stage.length - this.stageFilled) {
      piece.copy(stage, this.stageFilled);
      this.stageFilled += length;
    } else {
      if (stage !== null) this.closeStage(pieces);
      if (length >= SMALL_PIECE || pieces.length < FEW_PIECES) {
        pieces.push(piece);
      } else {
        stage = Buffer.allocUnsafe(Math.min(STAGE_BYTES, this.bulkLength - this.bulkFilled));
        piece.copy(stage, 0);
        this.stage = stage;
        this.stageFilled = length;
        pieces.push(stage);
      }
    }
    this.bulkFilled += length;
    if (this.bulkFilled * 2 < this.bulkLength) return;
    if (this.stage !== null) this.closeStage(pieces);
    const bulk = Buffer.allocUnsafe(this.bulkLength);
    let at = 0;
    for (const p of pieces) at += p.copy(bulk, at);
    this.bulk = bulk;
    this.pieces = null;
  }

  /** Trims the open staging buffer (the last piece) to its filled bytes. */
  private closeStage(pieces: Buffer[]): void {
    pieces[pieces.length - 1] = (this.stage as Buffer).subarray(0, this.stageFilled);
    this.stage = null;
    this.stageFilled = 0;
  }

  private finishAssembledBulk(): Reply {
    const bulk = this.bulk as Buffer;
    const length = bulk.length - 2;
    this.bulk = null;
    this.bulkLength = 0;
    this.bulkFilled = 0;
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
