import { describe, expect, expectTypeOf, it } from 'vitest';
import { flattenArgs, scanStruct, scanStructTyped, type StructOf } from '../src/args.js';
import { RedisError } from '../src/errors.js';
import { Decoder, NEED_MORE, type Reply } from '../src/resp/decode.js';
import { encodeCommand, type Arg } from '../src/resp/encode.js';

/** Decodes one whole reply from RESP wire bytes, as a connection would. */
function decode(wire: string | Buffer): Reply {
  const decoder = new Decoder();
  decoder.feed(Buffer.isBuffer(wire) ? wire : Buffer.from(wire, 'latin1'));
  const reply = decoder.next();
  if (reply === NEED_MORE) throw new Error('incomplete reply in test wire');
  return reply;
}

/**
 * What HGETALL would answer after `HSET key ...args` on RESP2: the args as the
 * server received them (bulk strings), read back as a flat array.
 */
function asHgetallReply(args: Arg[]): Reply {
  const command = decode(encodeCommand('HSET', ...args));
  if (!Array.isArray(command)) throw new Error('encoded command is not an array');
  return command.slice(1);
}

const b = (text: string): Buffer => Buffer.from(text, 'utf8');

class Point {
  x = 1;
  y = 2;
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

const argument = { redisArg: () => 'custom' };

describe('flattenArgs', () => {
  it.each<[string, object, Arg[]]>([
    ['plain object', { name: 'Ada', age: 36 }, ['name', 'Ada', 'age', 36]],
    ['Map', new Map<string, Arg>([['b', 1], ['a', 'x']]), ['b', 1, 'a', 'x']],
    ['empty object', {}, []],
    ['undefined values skipped', { a: undefined, b: 1, c: undefined }, ['b', 1]],
    ['undefined values skipped in a Map', new Map<string, Arg>([['a', undefined], ['b', 2]]), ['b', 2]],
    ['null kept', { a: null }, ['a', null]],
    ['booleans, bigints, negative and float numbers', { t: true, f: false, big: 2n ** 70n, n: -1.5 }, ['t', true, 'f', false, 'big', 2n ** 70n, 'n', -1.5]],
    ['Buffer and Uint8Array values', { buf: b('\u00ff'), u8: new Uint8Array([0, 1]) }, ['buf', b('\u00ff'), 'u8', new Uint8Array([0, 1])]],
    ['redisArg() object kept as is', { c: argument }, ['c', argument]],
    ['integer-like keys first (Object.entries order)', { b: 1, 2: 'two', a: 3 }, ['2', 'two', 'b', 1, 'a', 3]],
    ['null-prototype object', Object.assign(Object.create(null) as object, { k: 'v' }), ['k', 'v']],
    ['class instance: own fields only', new Point(), ['x', 1, 'y', 2]],
    ['__proto__ own field', JSON.parse('{"__proto__": "p", "constructor": "c"}') as object, ['__proto__', 'p', 'constructor', 'c']],
    ['Map with number, bigint and binary keys', new Map<unknown, Arg>([[1, 'a'], [2n, 'b'], [b('k'), 'c']]), [1, 'a', 2n, 'b', b('k'), 'c']],
  ])('%s', (_name, input, expected) => {
    expect(flattenArgs(input as Record<string, Arg>)).toEqual(expected);
  });

  it('keeps the very same Buffer and redisArg() objects', () => {
    const buf = Buffer.from([0, 255]);
    const out = flattenArgs({ buf, argument });
    expect(out[1]).toBe(buf);
    expect(out[3]).toBe(argument);
  });

  it('ignores symbol keys', () => {
    expect(flattenArgs({ [Symbol('s')]: 1, a: 2 } as Record<string, Arg>)).toEqual(['a', 2]);
  });

  it.each<[string, unknown, string]>([
    ['nested object', { ok: 1, profile: { city: 'x' } }, 'field "profile" holds object'],
    ['nested array', { tags: ['a', 'b'] }, 'field "tags" holds array'],
    ['nested null-prototype object', { n: Object.create(null) as object }, 'field "n" holds object'],
    ['nested Map', { m: new Map() }, 'field "m" holds Map'],
    ['nested Set', { s: new Set() }, 'field "s" holds Set'],
    ['Date', { when: new Date(0) }, 'field "when" holds Date'],
    ['function', { f: () => 1 }, 'field "f" holds function'],
    ['symbol', { s: Symbol('x') }, 'field "s" holds symbol'],
    ['nested object in a Map', new Map([['inner', { a: 1 }]]), 'field "inner" holds object'],
    ['binary field name', new Map([[b('abc'), [1]]]), 'field <3 bytes> holds array'],
    ['number field name', new Map([[7, {}]]), 'field "7" holds object'],
    ['Map key of a bad type', new Map([[{}, 'v']]), 'Map key of type object is not a field name'],
    ['Map key that is a boolean', new Map([[true, 'v']]), 'Map key of type boolean is not a field name'],
    ['array', ['a', 1], 'expected a plain object or Map, got array'],
    ['string', 'abc', 'expected a plain object or Map, got string'],
    ['null', null, 'expected a plain object or Map, got nil'],
    ['Buffer', b('x'), 'expected a plain object or Map, got Buffer'],
    ['Set', new Set(['a']), 'expected a plain object or Map, got Set'],
    ['Date', new Date(0), 'expected a plain object or Map, got Date'],
  ])('rejects %s with a TypeError', (_name, input, message) => {
    const call = (): Arg[] => flattenArgs(input as Record<string, Arg>);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`redisconn: flattenArgs: ${message}`);
  });

  it('gives arguments the encoder accepts', () => {
    const bytes = encodeCommand('HSET', 'k', ...flattenArgs({ n: 1, t: true, z: null, big: 10n, c: argument }));
    expect(bytes).toEqual(encodeCommand('HSET', 'k', 'n', '1', 't', '1', 'z', '', 'big', '10', 'c', 'custom'));
  });

  it('checks field values at compile time', () => {
    interface User {
      name: string;
      age?: number;
    }
    const user: User = { name: 'Ada' };
    expect(flattenArgs(user)).toEqual(['name', 'Ada']);
    // @ts-expect-error nested objects are not field values
    expect(() => flattenArgs({ nested: { a: 1 } })).toThrow(TypeError);
    // @ts-expect-error arrays are not field values
    expect(() => flattenArgs({ list: [1] })).toThrow(TypeError);
  });
});

interface Profile {
  name: string;
  age: number;
  admin: boolean;
  visits: bigint;
  avatar: Buffer;
}

function profile(): Profile {
  return { name: '', age: 0, admin: false, visits: 0n, avatar: Buffer.alloc(0) };
}

const avatarBytes = Buffer.from([0x00, 0xff, 0xfe, 0x0d, 0x0a, 0x80]);
/** RESP2 wire bytes of an array of bulk strings. */
function wireArray(parts: Buffer[]): Buffer {
  const chunks: Buffer[] = [Buffer.from(`*${parts.length}\r\n`)];
  for (const part of parts) chunks.push(Buffer.from(`$${part.length}\r\n`), part, Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}

const profileWire = wireArray([
  b('name'), b('Ada ✓'), b('age'), b('36.5'), b('admin'), b('1'),
  b('visits'), b('12345678901234567890'), b('avatar'), avatarBytes,
]);

describe('scanStruct', () => {
  const expected: Profile = { name: 'Ada ✓', age: 36.5, admin: true, visits: 12345678901234567890n, avatar: avatarBytes };

  it.each<[string, Reply]>([
    ['RESP2 flat array', decode(profileWire)],
    [
      'RESP3 map',
      new Map<Reply, Reply>([
        ['name', b('Ada ✓')],
        ['age', 36.5],
        ['admin', true],
        ['visits', 12345678901234567890n],
        ['avatar', avatarBytes],
      ]),
    ],
    ['simple strings', ['name', 'Ada ✓', 'age', '36.5', 'admin', 'true', 'visits', '12345678901234567890', 'avatar', avatarBytes.toString('latin1')]],
  ])('fills the target from a %s', (name, reply) => {
    const target = profile();
    expect(scanStruct(reply, target)).toBe(target);
    if (name === 'simple strings') {
      // A string reply becomes UTF-8 bytes; binary data needs a Buffer reply.
      expect(target).toEqual({ ...expected, avatar: Buffer.from(avatarBytes.toString('latin1'), 'utf8') });
    } else {
      expect(target).toEqual(expected);
    }
  });

  it('keeps binary Buffer fields byte for byte', () => {
    const target = scanStruct(decode(profileWire), profile());
    expect(target?.avatar.equals(avatarBytes)).toBe(true);
    expect(Buffer.isBuffer(target?.avatar)).toBe(true);
  });

  it.each<[string, boolean]>([
    ['1', true],
    ['0', false],
    ['true', true],
    ['false', false],
    ['TRUE', true],
    ['f', false],
  ])('boolean field from %o', (text, value) => {
    const target = { flag: !value };
    scanStruct([b('flag'), b(text)], target);
    expect(target.flag).toBe(value);
  });

  it.each<[string, number]>([
    ['42', 42],
    ['-1.25', -1.25],
    ['1e3', 1000],
    ['inf', Infinity],
  ])('number field from %o', (text, value) => {
    const target = { n: 0 };
    scanStruct([b('n'), b(text)], target);
    expect(target.n).toBe(value);
  });

  it('ignores fields the target does not own, including inherited ones', () => {
    const target = { a: 'old' };
    scanStruct([b('a'), b('new'), b('extra'), b('1'), b('toString'), b('x'), b('constructor'), b('y'), b('__proto__'), b('z')], target);
    expect(target).toEqual({ a: 'new' });
    expect(Object.keys(target)).toEqual(['a']);
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
    expect(typeof target.toString).toBe('function');
  });

  it('sets an own __proto__ field without touching the prototype', () => {
    const target = JSON.parse('{"__proto__": "old", "n": 1}') as Record<string, unknown>;
    scanStruct(decode('%2\r\n$9\r\n__proto__\r\n$3\r\nnew\r\n$1\r\nn\r\n$1\r\n2\r\n'), target);
    expect(Object.getOwnPropertyDescriptor(target, '__proto__')?.value).toBe('new');
    expect(target['n']).toBe(2);
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
  });

  it('leaves a field alone when its value is nil', () => {
    const target = { a: 'keep', b: 1 };
    scanStruct(new Map<Reply, Reply>([['a', null], ['b', 2]]), target);
    expect(target).toEqual({ a: 'keep', b: 2 });
  });

  it.each<[string, Reply, string]>([
    ['non-numeric number field', [b('name'), b('x'), b('age'), b('abc')], 'field "age": expected float reply, got Buffer "abc"'],
    ['non-integer bigint field', [b('visits'), b('1.5')], 'field "visits": expected integer reply, got Buffer "1.5"'],
    ['bad boolean', [b('admin'), b('yes')], 'field "admin": expected boolean reply, got Buffer "yes"'],
    ['number into a string field', [b('name'), 5], 'field "name": expected string reply, got integer 5'],
    ['array value', [b('avatar'), [b('x')]], 'field "avatar": expected string reply, got array'],
    ['odd-length array', [b('name'), b('x'), b('age')], 'expected field/value pairs, got array of odd length 3'],
    ['non-pair reply', b('OK'), 'expected map or field/value array reply, got Buffer "OK"'],
    ['Set reply', new Set<Reply>([b('a')]), 'expected map or field/value array reply, got Set'],
    ['non-text field name', [1, b('x')], 'field of pair 0: expected string reply, got integer 1'],
  ])('%s is a TypeError naming it; target untouched', (_name, reply, message) => {
    const target = profile();
    const before = profile();
    expect(() => scanStruct(reply, target)).toThrow(TypeError);
    expect(() => scanStruct(reply, target)).toThrow(`redisconn: scanStruct: ${message}`);
    expect(target).toEqual(before);
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['nil', null],
    ['object', {}],
    ['array', []],
  ])('rejects a target field holding %s that the reply sets', (type, current) => {
    const target = { ok: 'x', unknown: current };
    expect(() => scanStruct([b('unknown'), b('1')], target)).toThrow(
      `redisconn: scanStruct: field "unknown" of the target holds ${type}, so its type is unknown`,
    );
    expect(scanStruct([b('ok'), b('y')], target)).toBe(target); // not set by the reply: fine
    expect(target.ok).toBe('y');
  });

  it('returns null for nil and leaves the target untouched', () => {
    const target = profile();
    expect(scanStruct(null, target)).toBeNull();
    expect(scanStruct(decode('*-1\r\n'), target)).toBeNull();
    expect(target).toEqual(profile());
  });

  it.each<[string, Reply]>([
    ['passed in', new RedisError('WRONGTYPE Operation against a key')],
    ['in a value', [b('name'), new RedisError('WRONGTYPE Operation against a key')]],
    ['decoded', decode('-WRONGTYPE Operation against a key\r\n')],
  ])('throws a RedisError %s', (_name, reply) => {
    const target = profile();
    expect(() => scanStruct(reply, target)).toThrow(new RedisError('WRONGTYPE Operation against a key'));
    expect(target).toEqual(profile());
  });

  it('range-checks nothing for number fields but keeps precision for bigint fields', () => {
    const target = { n: 0, big: 0n };
    scanStruct([b('n'), b('9007199254740993'), b('big'), b('9007199254740993')], target);
    expect(target.n).toBe(9007199254740992);
    expect(target.big).toBe(9007199254740993n);
  });

  it('round-trips flattenArgs through HSET/HGETALL', () => {
    const original: Profile = { name: 'Zoë', age: -2.5, admin: true, visits: 2n ** 64n, avatar: avatarBytes };
    const back = scanStruct(asHgetallReply(flattenArgs(original)), profile());
    expect(back).toEqual(original);
  });
});

describe('scanStructTyped', () => {
  const schema = { name: 'string', age: 'number', visits: 'int', admin: 'boolean', big: 'bigint', avatar: 'buffer' } as const;

  it.each<[string, Reply]>([
    [
      'RESP2 flat array',
      [b('name'), b('Ada'), b('age'), b('36.5'), b('visits'), b('7'), b('admin'), b('0'), b('big'), b('99999999999999999999'), b('avatar'), avatarBytes],
    ],
    [
      'RESP3 map',
      new Map<Reply, Reply>([
        ['name', b('Ada')],
        ['age', 36.5],
        ['visits', 7],
        ['admin', false],
        ['big', 99999999999999999999n],
        ['avatar', avatarBytes],
      ]),
    ],
  ])('converts a %s by the schema', (_name, reply) => {
    const result = scanStructTyped(reply, schema);
    if (result === null) throw new Error('expected a result');
    expect({ ...result }).toEqual({ name: 'Ada', age: 36.5, visits: 7, admin: false, big: 99999999999999999999n, avatar: avatarBytes });
    expect(Object.getPrototypeOf(result)).toBeNull();
  });

  it('infers the result type from the schema', () => {
    const result = scanStructTyped([b('name'), b('Ada'), b('n'), b('3')], { name: 'string', n: 'int', raw: 'buffer' });
    expectTypeOf(result).toEqualTypeOf<{ name?: string; n?: number; raw?: Buffer } | null>();
    expectTypeOf(result).toEqualTypeOf<StructOf<{ name: 'string'; n: 'int'; raw: 'buffer' }> | null>();
    expect(result?.name).toBe('Ada');
    expect(result?.n).toBe(3);
  });

  it('leaves out fields the reply lacks or holds as nil, and ignores unknown ones', () => {
    const result = scanStructTyped(
      new Map<Reply, Reply>([['name', null], ['age', 3], ['other', b('x')], ['toString', b('y')]]),
      schema,
    );
    if (result === null) throw new Error('expected a result');
    expect(Object.keys(result)).toEqual(['age']);
    expect(result.age).toBe(3);
    expect('name' in result).toBe(false);
  });

  it('handles a __proto__ field as an ordinary key', () => {
    const result = scanStructTyped([b('__proto__'), b('5')], { ['__proto__']: 'int' } as const);
    if (result === null) throw new Error('expected a result');
    expect(Object.getPrototypeOf(result)).toBeNull();
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toBe(5);
  });

  it.each<[string, Reply, string | RegExp, ErrorConstructor]>([
    ['non-integer int', [b('visits'), b('1.5')], 'redisconn: scanStructTyped: field "visits": expected integer reply, got Buffer "1.5"', TypeError],
    ['int out of range', [b('visits'), b('9007199254740993')], 'redisconn: scanStructTyped: field "visits": integer 9007199254740993 is outside the safe integer range', RangeError],
    ['non-numeric number', [b('age'), b('old')], 'redisconn: scanStructTyped: field "age": expected float reply, got Buffer "old"', TypeError],
    ['bad boolean', [b('admin'), b('2')], 'redisconn: scanStructTyped: field "admin": expected boolean reply, got Buffer "2"', TypeError],
    ['odd-length array', [b('name')], 'redisconn: scanStructTyped: expected field/value pairs, got array of odd length 1', TypeError],
    ['string reply', 'OK', 'redisconn: scanStructTyped: expected map or field/value array reply, got string "OK"', TypeError],
  ])('%s throws', (_name, reply, message, type) => {
    expect(() => scanStructTyped(reply, schema)).toThrow(type);
    expect(() => scanStructTyped(reply, schema)).toThrow(message);
  });

  it('returns null for nil and throws a RedisError', () => {
    expect(scanStructTyped(null, schema)).toBeNull();
    expect(() => scanStructTyped(new RedisError('ERR x'), schema)).toThrow(new RedisError('ERR x'));
  });

  it.each<[string, Reply]>([
    ['a nil reply', null],
    ['a reply without the field', [b('other'), b('1')]],
  ])('rejects an unknown schema type even for %s', (_name, reply) => {
    const bad = { a: 'date' } as unknown as { a: 'string' };
    expect(() => scanStructTyped(reply, bad)).toThrow(new TypeError('redisconn: scanStructTyped: field "a" has unknown type "date"'));
  });

  it('round-trips flattenArgs through HSET/HGETALL', () => {
    const original = { name: 'Ada', visits: 12, admin: true, big: 2n ** 80n, avatar: avatarBytes, age: 0.1 };
    const result = scanStructTyped(asHgetallReply(flattenArgs(original)), schema);
    expect({ ...result }).toEqual(original);
  });
});
