/**
 * Objects ↔ field/value pairs: {@link flattenArgs} turns an object or Map into
 * the arguments of HSET/HMSET (redigo's `Args.AddFlat`), {@link scanStruct}
 * and {@link scanStructTyped} read HGETALL's reply back (redigo's `ScanStruct`).
 */
import type { Reply } from './resp/decode.js';
import type { Arg, RedisArgument } from './resp/encode.js';
import { convertReply, describeValue, isReplyKind, replyPairs, type ReplyKind, type ReplyKinds } from './reply.js';

/** What a Map given to {@link flattenArgs} may use as field names. */
export type FieldName = string | number | bigint | Uint8Array;

/**
 * An object whose every field is a command argument ({@link Arg}: string,
 * number, bigint, boolean, Buffer/Uint8Array, null, undefined, or an object
 * with `redisArg()`). Works for interfaces and classes' data fields alike.
 */
export type FlatObject<T> = { [K in keyof T]: Arg };

/** The conversion of one field in a {@link StructSchema}. */
export type FieldType = ReplyKind;

/**
 * Field name → conversion, for {@link scanStructTyped}: `string` (UTF-8),
 * `buffer` (bytes), `number` (float, like asFloat), `int` (safe integer, like
 * asInt), `bigint`, `boolean` (like asBool).
 */
export type StructSchema = { readonly [field: string]: FieldType };

/**
 * The result type of {@link scanStructTyped}: every schema field, optional
 * because the reply may not hold it.
 */
export type StructOf<S extends StructSchema> = { -readonly [K in keyof S]?: ReplyKinds[S[K]] };

function fieldLabel(name: FieldName): string {
  return name instanceof Uint8Array ? `<${name.byteLength} bytes>` : JSON.stringify(String(name));
}

function isFieldName(key: unknown): key is FieldName {
  const type = typeof key;
  return type === 'string' || type === 'number' || type === 'bigint' || key instanceof Uint8Array;
}

/** True for a value the encoder takes as one argument as it is (undefined aside). */
function isFlatValue(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return true;
    case 'object':
      return value === null || value instanceof Uint8Array || typeof (value as Partial<RedisArgument>).redisArg === 'function';
    default:
      return false;
  }
}

/** The fields of a Map or of a plain/class object (own enumerable string keys). */
function fieldsOf(obj: unknown): Iterable<[unknown, unknown]> {
  if (obj instanceof Map) return obj;
  if (typeof obj === 'object' && obj !== null && Object.prototype.toString.call(obj) === '[object Object]') {
    return Object.entries(obj);
  }
  throw new TypeError(`redisconn: flattenArgs: expected a plain object or Map, got ${describeValue(obj)}`);
}

/**
 * The field/value arguments of an object or Map, flat: `{ a: 1, b: 'x' }` →
 * `['a', 1, 'b', 'x']`, ready for `conn.do('HSET', key, ...flattenArgs(obj))`.
 * Order: Map insertion order; for objects `Object.entries` order (integer-like
 * keys first). Objects: own enumerable string keys (class instances too).
 * Fields whose value is `undefined` are skipped; other values are returned as
 * they are (converted later like any argument). A nested object or array, a
 * function, a symbol, a Date, etc. is a TypeError naming the field; so is a
 * Map key that is not a string, number, bigint or Uint8Array.
 */
export function flattenArgs<T extends FlatObject<T>>(obj: T): Arg[];
export function flattenArgs(obj: ReadonlyMap<FieldName, Arg>): Arg[];
export function flattenArgs(obj: object): Arg[] {
  const out: Arg[] = [];
  for (const [name, value] of fieldsOf(obj)) {
    if (!isFieldName(name)) throw new TypeError(`redisconn: flattenArgs: Map key of type ${describeValue(name)} is not a field name`);
    if (value === undefined) continue;
    if (!isFlatValue(value)) {
      throw new TypeError(
        `redisconn: flattenArgs: field ${fieldLabel(name)} holds ${describeValue(value)}; ` +
          'only strings, numbers, bigints, booleans, bytes, null and redisArg() objects can be field values (nested objects and arrays cannot)',
      );
    }
    out.push(name, value as Arg);
  }
  return out;
}

/**
 * Reads the field/value pairs of `reply`, converting each value whose field
 * `kindOf` knows. All conversions happen before anything is returned, so a
 * failure leaves the caller's object untouched. Nil values are left out.
 */
function scanFields(reply: Reply, where: string, kindOf: (field: string) => ReplyKind | undefined): [string, ReplyKinds[ReplyKind]][] | null {
  const pairs = replyPairs(reply, where);
  if (pairs === null) return null;
  const out: [string, ReplyKinds[ReplyKind]][] = [];
  for (const [field, value] of pairs) {
    const kind = kindOf(field);
    if (kind === undefined) continue;
    const converted = convertReply(kind, value, () => `${where}: field ${JSON.stringify(field)}`);
    if (converted !== null) out.push([field, converted]);
  }
  return out;
}

/** The conversion a target field's current value asks for. */
function kindOfValue(value: unknown, field: string): ReplyKind {
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'bigint' || type === 'boolean') return type;
  if (value instanceof Uint8Array) return 'buffer';
  throw new TypeError(
    `redisconn: scanStruct: field ${JSON.stringify(field)} of the target holds ${describeValue(value)}, so its type is unknown; ` +
      'give it a string, number, bigint, boolean or Buffer default, or use scanStructTyped',
  );
}

/**
 * Copies an HGETALL-style reply (RESP2 flat field/value array or RESP3 Map)
 * onto `target` and returns it. Only the target's own fields are set; each
 * value is converted by the type of the field's current value: string →
 * UTF-8 text, number → float (like asFloat; non-numeric text is a TypeError
 * naming the field), bigint → like asBigInt, boolean → like asBool (`1`/`0`,
 * `true`/`false`, ...), Buffer/Uint8Array → a Buffer. Reply fields the target
 * lacks, and nil values, are ignored. A target field holding anything else
 * (undefined, null, an object) that the reply sets is a TypeError. On any
 * error the target is left unchanged. Nil reply → null (target untouched); a
 * RedisError is thrown; an odd-length array or non-pair reply is a TypeError.
 */
export function scanStruct<T extends object>(reply: Reply, target: T): T | null {
  const fields = target as Record<string, unknown>;
  const scanned = scanFields(reply, 'scanStruct', (field) =>
    Object.hasOwn(fields, field) ? kindOfValue(fields[field], field) : undefined,
  );
  if (scanned === null) return null;
  for (const [field, value] of scanned) fields[field] = value;
  return target;
}

/**
 * Like {@link scanStruct}, with the types given by `schema` instead of a
 * target: `scanStructTyped(reply, { name: 'string', visits: 'int' })` is typed
 * `{ name?: string; visits?: number } | null`. The result is a fresh object
 * with a null prototype (a `__proto__` field is an ordinary key) holding only
 * the schema's fields the reply has (non-nil). Unknown schema types are a
 * TypeError even when the reply is nil.
 */
export function scanStructTyped<const S extends StructSchema>(reply: Reply, schema: S): StructOf<S> | null {
  for (const [field, kind] of Object.entries(schema)) {
    if (!isReplyKind(kind)) throw new TypeError(`redisconn: scanStructTyped: field ${JSON.stringify(field)} has unknown type ${JSON.stringify(String(kind))}`);
  }
  const scanned = scanFields(reply, 'scanStructTyped', (field) => (Object.hasOwn(schema, field) ? schema[field] : undefined));
  if (scanned === null) return null;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [field, value] of scanned) out[field] = value;
  return out as StructOf<S>;
}
