/**
 * Reply helpers (redigo's `redis.Int`, `redis.String`, `redis.StringMap`, ...):
 * each takes a {@link Reply} and returns a typed value.
 *
 * Shared contract of every `as*` helper:
 * - nil (`null`) gives `null`;
 * - a {@link RedisError} passed in (or found inside an aggregate) is thrown as is;
 * - a reply of the wrong type throws `TypeError` naming the actual type, e.g.
 *   `redisconn: asInt: expected integer reply, got Buffer "abc"`;
 * - a number that does not fit the result (see {@link asInt}) throws `RangeError`.
 *
 * Text replies are bulk strings (Buffer, or string with `decodeStrings`) and
 * simple strings (string); both are accepted wherever text is.
 */
import { RedisError } from './errors.js';
import type { Reply } from './resp/decode.js';

/** A reply that is neither nil nor an error. */
type Present = Exclude<Reply, null | RedisError>;

/** Where a conversion happens, for error messages; a function is only called on failure. */
type Where = string | (() => string);

const PREVIEW_CHARS = 40;

/**
 * Names the type of a reply (or of any JS value) for error messages: `nil`,
 * `string`, `Buffer`, `integer`, `double`, `bigint`, `boolean`, `array`,
 * `object` (plain), otherwise the constructor name (`Map`, `Set`, `Date`, ...).
 * @internal Shared with args.ts; not part of the public API.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'nil';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'double';
  if (typeof value !== 'object') return typeof value;
  if (Buffer.isBuffer(value)) return 'Buffer';
  if (Array.isArray(value)) return 'array';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return 'object';
  const name: unknown = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'object';
}

/** The type name plus a short rendering of a scalar value (text cut to 40 chars). */
function describeWithValue(value: unknown): string {
  const type = describeValue(value);
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    // Decode only the head of a Buffer: it may be large.
    const text = typeof value === 'string' ? value : value.toString('utf8', 0, PREVIEW_CHARS * 4);
    const cut = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
    return `${type} ${JSON.stringify(cut)}`;
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${type} ${String(value)}`;
  return type;
}

function label(where: Where): string {
  return typeof where === 'string' ? where : where();
}

/** Throws the TypeError of the contract, naming the actual type (and a scalar's value). */
function fail(where: Where, expected: string, got: unknown): never {
  throw new TypeError(`redisconn: ${label(where)}: expected ${expected} reply, got ${describeWithValue(got)}`);
}

function outOfRange(where: Where, value: number | bigint): never {
  throw new RangeError(`redisconn: ${label(where)}: integer ${String(value)} is outside the safe integer range`);
}

/** False for nil; throws a RedisError; true otherwise. */
function present(reply: Reply): reply is Present {
  if (reply instanceof RedisError) throw reply;
  return reply !== null;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLOAT_WORDS: ReadonlyMap<string, number> = new Map([
  ['inf', Infinity], ['+inf', Infinity], ['infinity', Infinity], ['+infinity', Infinity],
  ['-inf', -Infinity], ['-infinity', -Infinity],
  ['nan', NaN], ['+nan', NaN], ['-nan', NaN],
]);
/** Go's strconv.ParseBool, as redigo's Bool uses on bulk strings. */
const BOOL_WORDS: ReadonlyMap<string, boolean> = new Map([
  ['1', true], ['t', true], ['T', true], ['true', true], ['TRUE', true], ['True', true],
  ['0', false], ['f', false], ['F', false], ['false', false], ['FALSE', false], ['False', false],
]);

/** Text of a string or Buffer reply; undefined for any other type. */
function textOf(reply: Present): string | undefined {
  if (typeof reply === 'string') return reply;
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : undefined;
}

// Each converter returns undefined when the reply cannot be converted; the
// caller then throws the TypeError. Only range failures are thrown here.

function toBytes(reply: Present): Buffer | undefined {
  if (Buffer.isBuffer(reply)) return reply;
  return typeof reply === 'string' ? Buffer.from(reply, 'utf8') : undefined;
}

function toBigInt(reply: Present): bigint | undefined {
  if (typeof reply === 'bigint') return reply;
  if (typeof reply === 'number') return Number.isInteger(reply) ? BigInt(reply) : undefined;
  const text = textOf(reply);
  return text !== undefined && INTEGER_TEXT.test(text) ? BigInt(text) : undefined;
}

function toInt(reply: Present, where: Where): number | undefined {
  if (typeof reply === 'number') {
    if (!Number.isInteger(reply)) return undefined;
    return Number.isSafeInteger(reply) ? reply : outOfRange(where, reply);
  }
  const big = toBigInt(reply);
  if (big === undefined) return undefined;
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : outOfRange(where, big);
}

function toFloat(reply: Present): number | undefined {
  if (typeof reply === 'number') return reply;
  if (typeof reply === 'bigint') return Number(reply);
  const text = textOf(reply);
  if (text === undefined) return undefined;
  return FLOAT_TEXT.test(text) ? Number(text) : FLOAT_WORDS.get(text.toLowerCase());
}

function toBool(reply: Present): boolean | undefined {
  if (typeof reply === 'boolean') return reply;
  if (typeof reply === 'number') return Number.isInteger(reply) ? reply !== 0 : undefined;
  if (typeof reply === 'bigint') return reply !== 0n;
  const text = textOf(reply);
  return text === undefined ? undefined : BOOL_WORDS.get(text);
}

/**
 * The scalar kinds a reply can be converted to, by name; `number` is a float
 * (like {@link asFloat}), `int` a safe integer (like {@link asInt}).
 */
export interface ReplyKinds {
  string: string;
  buffer: Buffer;
  int: number;
  bigint: bigint;
  number: number;
  boolean: boolean;
}
/** A key of {@link ReplyKinds}. */
export type ReplyKind = keyof ReplyKinds;

interface Converter<T> {
  /** What the error message says was expected. */
  readonly expected: string;
  readonly convert: (reply: Present, where: Where) => T | undefined;
}

const converters: { readonly [K in ReplyKind]: Converter<ReplyKinds[K]> } = {
  string: { expected: 'string', convert: textOf },
  buffer: { expected: 'string', convert: toBytes },
  int: { expected: 'integer', convert: toInt },
  bigint: { expected: 'integer', convert: toBigInt },
  number: { expected: 'float', convert: toFloat },
  boolean: { expected: 'boolean', convert: toBool },
};

/**
 * True when `kind` names a conversion ({@link ReplyKind}).
 * @internal Shared with args.ts; not part of the public API.
 */
export function isReplyKind(kind: unknown): kind is ReplyKind {
  return typeof kind === 'string' && Object.hasOwn(converters, kind);
}

function converterFor<K extends ReplyKind>(kind: K, where: Where): Converter<ReplyKinds[K]> {
  if (!isReplyKind(kind)) throw new TypeError(`redisconn: ${label(where)}: unknown conversion ${JSON.stringify(String(kind))}`);
  return converters[kind];
}

/**
 * Converts one reply to `kind` under the shared contract (nil → null, error
 * thrown, wrong type → TypeError mentioning `where`). Throws TypeError for an
 * unknown kind.
 * @internal Shared with args.ts; not part of the public API.
 */
export function convertReply<K extends ReplyKind>(kind: K, reply: Reply, where: Where): ReplyKinds[K] | null {
  const converter = converterFor(kind, where);
  if (!present(reply)) return null;
  return converter.convert(reply, where) ?? fail(where, converter.expected, reply);
}

/** Like {@link convertReply}, but nil is a TypeError too. */
function convertRequired<K extends ReplyKind>(kind: K, reply: Reply, where: Where): ReplyKinds[K] {
  return convertReply(kind, reply, where) ?? fail(where, converterFor(kind, where).expected, null);
}

/**
 * The field/value pairs of a RESP2 flat array (`[f1, v1, f2, v2, ...]`) or a
 * RESP3 Map, fields as strings (Buffers decoded as UTF-8), values untouched;
 * null for nil. Throws a RedisError passed in or found in place of a field;
 * TypeError (at once) for an odd-length array or any other type, and (while
 * iterating) for a field that is not text.
 * @internal Shared with args.ts; not part of the public API.
 */
export function replyPairs(reply: Reply, where: string): Iterable<[field: string, value: Reply]> | null {
  if (!present(reply)) return null;
  if (reply instanceof Map) return mapPairs(reply, where);
  if (!Array.isArray(reply)) return fail(where, 'map or field/value array', reply);
  if (reply.length % 2 !== 0) {
    throw new TypeError(`redisconn: ${where}: expected field/value pairs, got array of odd length ${reply.length}`);
  }
  return arrayPairs(reply, where);
}

function* mapPairs(reply: Map<Reply, Reply>, where: string): Generator<[string, Reply]> {
  let pair = 0;
  for (const [key, value] of reply) yield [pairField(key, where, pair++), value];
}

function* arrayPairs(reply: Reply[], where: string): Generator<[string, Reply]> {
  for (let i = 0; i < reply.length; i += 2) yield [pairField(reply[i] as Reply, where, i / 2), reply[i + 1] as Reply];
}

function pairField(key: Reply, where: string, pair: number): string {
  return convertRequired('string', key, () => `${where}: field of pair ${pair}`);
}

function toArray(reply: Reply, where: string): Reply[] | null {
  if (!present(reply)) return null;
  if (Array.isArray(reply)) return reply;
  if (reply instanceof Set) return [...reply];
  return fail(where, 'array', reply);
}

function convertElements<K extends ReplyKind>(kind: K, reply: Reply, where: string): (ReplyKinds[K] | null)[] | null {
  const values = toArray(reply, where);
  return values && values.map((value, i) => convertReply(kind, value, () => `${where}: element ${i}`));
}

/** Builds a null-prototype record, so fields such as `__proto__` are plain keys. */
function convertRecord<K extends ReplyKind>(kind: K, reply: Reply, where: string): Record<string, ReplyKinds[K]> | null {
  const pairs = replyPairs(reply, where);
  if (pairs === null) return null;
  const out = Object.create(null) as Record<string, ReplyKinds[K]>;
  for (const [field, value] of pairs) {
    out[field] = convertRequired(kind, value, () => `${where}: field ${JSON.stringify(field)}`);
  }
  return out;
}

/**
 * Text reply as a string: a simple string as is, a bulk string (Buffer)
 * decoded as UTF-8. Numbers and other types are not converted: TypeError.
 * Nil → null; a RedisError is thrown.
 */
export function asString(reply: Reply): string | null {
  return convertReply('string', reply, 'asString');
}

/**
 * Text reply as bytes: a Buffer is returned as is (not copied), a string is
 * encoded as UTF-8. Other types: TypeError. Nil → null; a RedisError is thrown.
 */
export function asBytes(reply: Reply): Buffer | null {
  return convertReply('buffer', reply, 'asBytes');
}

/**
 * Integer reply as a number. Also accepts a bigint and decimal text (bulk or
 * simple string matching `[+-]?digits`, like redigo's Int); a non-integral
 * number or other text is a TypeError; a value outside ±(2^53−1) is a
 * RangeError (use {@link asBigInt}). Nil → null; a RedisError is thrown.
 */
export function asInt(reply: Reply): number | null {
  return convertReply('int', reply, 'asInt');
}

/**
 * Integer reply as a bigint: integral numbers, bigints (RESP3 big numbers)
 * and decimal text. Other values: TypeError. Nil → null; a RedisError is thrown.
 */
export function asBigInt(reply: Reply): bigint | null {
  return convertReply('bigint', reply, 'asBigInt');
}

/**
 * Float reply as a number: RESP3 doubles and integer replies (bigints become
 * the nearest number), and decimal text such as `3.14`, `1e-5`, `inf`, `-inf`,
 * `nan` (the words in any case). Other values: TypeError. Nil → null; a
 * RedisError is thrown.
 */
export function asFloat(reply: Reply): number | null {
  return convertReply('number', reply, 'asFloat');
}

/**
 * Boolean reply: RESP3 booleans; integers (0 → false, any other → true, like
 * redigo); text as Go's strconv.ParseBool takes it (`1 t T true TRUE True` /
 * `0 f F false FALSE False`). Other values: TypeError. Nil → null; a RedisError
 * is thrown.
 */
export function asBool(reply: Reply): boolean | null {
  return convertReply('boolean', reply, 'asBool');
}

/**
 * Array reply as `Reply[]` (the array itself, not a copy); a RESP3 Set becomes
 * an array in its iteration order. Maps and scalars: TypeError. Nil → null; a
 * RedisError passed in is thrown (error *elements* are left inside).
 */
export function asValues(reply: Reply): Reply[] | null {
  return toArray(reply, 'asValues');
}

/**
 * Array (or Set) reply with each element converted as by {@link asString}. A
 * nil element gives a null element (e.g. MGET of a missing key); an error
 * element is thrown; a wrong element type is a TypeError naming its index.
 * Nil reply → null.
 */
export function asStrings(reply: Reply): (string | null)[] | null {
  return convertElements('string', reply, 'asStrings');
}

/**
 * Array (or Set) reply with each element converted as by {@link asInt}
 * (range-checked). Nil element → null element; an error element is thrown;
 * a wrong element type is a TypeError naming its index. Nil reply → null.
 */
export function asInts(reply: Reply): (number | null)[] | null {
  return convertElements('int', reply, 'asInts');
}

/**
 * Array (or Set) reply with each element converted as by {@link asFloat}. Nil
 * element → null element; an error element is thrown; a wrong element type is
 * a TypeError naming its index. Nil reply → null.
 */
export function asFloats(reply: Reply): (number | null)[] | null {
  return convertElements('number', reply, 'asFloats');
}

/**
 * Field/value reply (RESP2 flat array such as HGETALL's, or a RESP3 Map) as a
 * record of strings. The record has a null prototype, so any field name
 * (`__proto__`, `constructor`) is an ordinary key; a repeated field keeps its
 * last value. Fields and values must be text: a nil value, an odd-length
 * array, or any other type is a TypeError; an error element is thrown.
 * Nil reply → null.
 */
export function asStringMap(reply: Reply): Record<string, string> | null {
  return convertRecord('string', reply, 'asStringMap');
}

/**
 * Like {@link asStringMap} with each value converted as by {@link asInt}
 * (integers or decimal text, range-checked; a nil value is a TypeError).
 */
export function asIntMap(reply: Reply): Record<string, number> | null {
  return convertRecord('int', reply, 'asIntMap');
}
