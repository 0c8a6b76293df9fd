import { describe, expect, it } from 'vitest';
import { RedisError } from '../src/errors.js';
import { Decoder, NEED_MORE, type Reply } from '../src/resp/decode.js';
import {
  asBigInt,
  asBool,
  asBytes,
  asFloat,
  asFloats,
  asInt,
  asIntMap,
  asInts,
  asString,
  asStringMap,
  asStrings,
  asValues,
} from '../src/reply.js';
import { thrownBy } from './helpers.js';

/** Decodes one whole reply from RESP wire text, as a connection would. */
function decode(wire: string | Buffer, decodeStrings = false): Reply {
  const decoder = new Decoder({ decodeStrings });
  decoder.feed(Buffer.isBuffer(wire) ? wire : Buffer.from(wire, 'latin1'));
  const reply = decoder.next();
  if (reply === NEED_MORE) throw new Error(`incomplete reply in test wire ${JSON.stringify(wire)}`);
  return reply;
}

const b = (text: string): Buffer => Buffer.from(text, 'utf8');
const MAX = Number.MAX_SAFE_INTEGER;

const helpers = {
  asString,
  asBytes,
  asInt,
  asBigInt,
  asFloat,
  asBool,
  asValues,
  asStrings,
  asInts,
  asFloats,
  asStringMap,
  asIntMap,
} satisfies Record<string, (reply: Reply) => unknown>;
const helperTable = Object.entries(helpers);

describe('shared contract', () => {
  it.each(helperTable)('%s(nil) is null', (_name, helper) => {
    expect(helper(null)).toBeNull();
  });

  it.each(helperTable)('%s throws a RedisError passed in, unchanged', (_name, helper) => {
    const error = new RedisError('WRONGTYPE Operation against a key holding the wrong kind of value');
    const thrown = thrownBy(() => helper(error));
    expect(thrown).toBe(error);
    expect((thrown as RedisError).code).toBe('WRONGTYPE');
  });

  it.each(helperTable)('%s throws a decoded error reply', (_name, helper) => {
    expect(() => helper(decode('-ERR boom\r\n'))).toThrow(new RedisError('ERR boom'));
  });
});

describe('wrong types are TypeErrors naming the actual type', () => {
  // [helper, reply, the end of the message]
  const cases: [keyof typeof helpers, Reply, string][] = [
    ['asString', 42, 'expected string reply, got integer 42'],
    ['asString', 1.5, 'expected string reply, got double 1.5'],
    ['asString', 7n, 'expected string reply, got bigint 7'],
    ['asString', true, 'expected string reply, got boolean true'],
    ['asString', [b('a')], 'expected string reply, got array'],
    ['asString', new Map(), 'expected string reply, got Map'],
    ['asString', new Set(), 'expected string reply, got Set'],
    ['asBytes', 42, 'expected string reply, got integer 42'],
    ['asBytes', false, 'expected string reply, got boolean false'],
    ['asBytes', [], 'expected string reply, got array'],
    ['asInt', b('abc'), 'expected integer reply, got Buffer "abc"'],
    ['asInt', 'OK', 'expected integer reply, got string "OK"'],
    ['asInt', b(''), 'expected integer reply, got Buffer ""'],
    ['asInt', b('1.5'), 'expected integer reply, got Buffer "1.5"'],
    ['asInt', b(' 1'), 'expected integer reply, got Buffer " 1"'],
    ['asInt', b('0x10'), 'expected integer reply, got Buffer "0x10"'],
    ['asInt', 1.5, 'expected integer reply, got double 1.5'],
    ['asInt', NaN, 'expected integer reply, got double NaN'],
    ['asInt', Infinity, 'expected integer reply, got double Infinity'],
    ['asInt', true, 'expected integer reply, got boolean true'],
    ['asInt', [1], 'expected integer reply, got array'],
    ['asInt', new Map([['a', 1]]), 'expected integer reply, got Map'],
    ['asInt', new Set([1]), 'expected integer reply, got Set'],
    ['asBigInt', b('12a'), 'expected integer reply, got Buffer "12a"'],
    ['asBigInt', 0.5, 'expected integer reply, got double 0.5'],
    ['asBigInt', false, 'expected integer reply, got boolean false'],
    ['asBigInt', [], 'expected integer reply, got array'],
    ['asFloat', b('abc'), 'expected float reply, got Buffer "abc"'],
    ['asFloat', b(''), 'expected float reply, got Buffer ""'],
    ['asFloat', b('0x10'), 'expected float reply, got Buffer "0x10"'],
    ['asFloat', b('1 '), 'expected float reply, got Buffer "1 "'],
    ['asFloat', 'infinite', 'expected float reply, got string "infinite"'],
    ['asFloat', true, 'expected float reply, got boolean true'],
    ['asFloat', [], 'expected float reply, got array'],
    ['asFloat', new Map(), 'expected float reply, got Map'],
    ['asBool', b('yes'), 'expected boolean reply, got Buffer "yes"'],
    ['asBool', 'tRUE', 'expected boolean reply, got string "tRUE"'],
    ['asBool', 0.5, 'expected boolean reply, got double 0.5'],
    ['asBool', [], 'expected boolean reply, got array'],
    ['asBool', new Set(), 'expected boolean reply, got Set'],
    ['asValues', b('x'), 'expected array reply, got Buffer "x"'],
    ['asValues', 'OK', 'expected array reply, got string "OK"'],
    ['asValues', 3, 'expected array reply, got integer 3'],
    ['asValues', new Map(), 'expected array reply, got Map'],
    ['asStrings', b('x'), 'expected array reply, got Buffer "x"'],
    ['asStrings', [b('a'), 5], 'asStrings: element 1: expected string reply, got integer 5'],
    ['asStrings', [b('a'), [b('b')]], 'asStrings: element 1: expected string reply, got array'],
    ['asInts', 5, 'expected array reply, got integer 5'],
    ['asInts', [1, b('x')], 'asInts: element 1: expected integer reply, got Buffer "x"'],
    ['asInts', [1, 2.5], 'asInts: element 1: expected integer reply, got double 2.5'],
    ['asFloats', new Map(), 'expected array reply, got Map'],
    ['asFloats', [b('1.5'), true], 'asFloats: element 1: expected float reply, got boolean true'],
    ['asStringMap', 'OK', 'expected map or field/value array reply, got string "OK"'],
    ['asStringMap', 12, 'expected map or field/value array reply, got integer 12'],
    ['asStringMap', new Set([b('a'), b('b')]), 'expected map or field/value array reply, got Set'],
    ['asStringMap', [b('f'), 1], 'asStringMap: field "f": expected string reply, got integer 1'],
    ['asStringMap', [b('f'), null], 'asStringMap: field "f": expected string reply, got nil'],
    ['asStringMap', [1, b('v')], 'asStringMap: field of pair 0: expected string reply, got integer 1'],
    ['asStringMap', [b('a'), b('1'), null, b('v')], 'asStringMap: field of pair 1: expected string reply, got nil'],
    ['asStringMap', new Map<Reply, Reply>([[7, b('v')]]), 'asStringMap: field of pair 0: expected string reply, got integer 7'],
    ['asIntMap', [b('f'), b('x')], 'asIntMap: field "f": expected integer reply, got Buffer "x"'],
    ['asIntMap', new Map<Reply, Reply>([['f', null]]), 'asIntMap: field "f": expected integer reply, got nil'],
    ['asIntMap', b('x'), 'expected map or field/value array reply, got Buffer "x"'],
  ];

  it.each(cases)('%s(%o)', (name, reply, tail) => {
    const helper: (reply: Reply) => unknown = helpers[name];
    expect(() => helper(reply)).toThrow(TypeError);
    expect(() => helper(reply)).toThrow(`redisconn: ${tail.startsWith(name) ? tail : `${name}: ${tail}`}`);
  });

  it('gives the exact documented message', () => {
    expect(() => asInt(b('abc'))).toThrow(new TypeError('redisconn: asInt: expected integer reply, got Buffer "abc"'));
  });

  it('cuts long text in the message to 40 characters', () => {
    let message = '';
    try {
      asInt(Buffer.alloc(10_000, 'a'));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`redisconn: asInt: expected integer reply, got Buffer "${'a'.repeat(40)}…"`);
  });

  it.each([
    ['asStringMap', asStringMap],
    ['asIntMap', asIntMap],
  ] as const)('%s rejects an odd-length array', (name, helper) => {
    expect(() => helper([b('a'), b('1'), b('b')])).toThrow(
      new TypeError(`redisconn: ${name}: expected field/value pairs, got array of odd length 3`),
    );
    expect(() => helper(decode('*1\r\n$1\r\na\r\n'))).toThrow(/odd length 1/);
  });
});

describe('asString', () => {
  it.each<[Reply, string]>([
    ['OK', 'OK'],
    [b('hello'), 'hello'],
    [b(''), ''],
    [b('héllo ✓ 日本'), 'héllo ✓ 日本'],
    [decode('$5\r\nhello\r\n'), 'hello'],
    [decode('+PONG\r\n'), 'PONG'],
    [decode('=8\r\ntxt:text\r\n'), 'text'],
    [decode('$3\r\nabc\r\n', true), 'abc'],
  ])('%o → %o', (reply, expected) => {
    expect(asString(reply)).toBe(expected);
  });

  it('decodes nil bulk and nil array replies to null', () => {
    expect(asString(decode('$-1\r\n'))).toBeNull();
    expect(asString(decode('_\r\n'))).toBeNull();
  });
});

describe('asBytes', () => {
  it('returns a Buffer reply itself, bytes intact', () => {
    const binary = Buffer.from([0x00, 0xff, 0x80, 0x0d, 0x0a, 0xc3]);
    expect(asBytes(binary)).toBe(binary);
    const decoded = decode(Buffer.concat([Buffer.from('$6\r\n'), binary, Buffer.from('\r\n')]));
    expect(asBytes(decoded)).toEqual(binary);
  });

  it('encodes a string as UTF-8', () => {
    expect(asBytes('é✓')).toEqual(Buffer.from([0xc3, 0xa9, 0xe2, 0x9c, 0x93]));
    expect(Buffer.isBuffer(asBytes('x'))).toBe(true);
  });
});

describe('asInt', () => {
  it.each<[Reply, number]>([
    [0, 0],
    [-42, -42],
    [MAX, MAX],
    [-MAX, -MAX],
    [3.0, 3],
    [BigInt(MAX), MAX],
    [-5n, -5],
    [b('123'), 123],
    [b('-17'), -17],
    [b('+8'), 8],
    [b('-0'), 0],
    ['9007199254740991', MAX],
    [decode(':1000\r\n'), 1000],
    [decode('$2\r\n42\r\n'), 42],
    [decode('(12\r\n'), 12],
    [decode(',7\r\n'), 7],
  ])('%o → %o', (reply, expected) => {
    expect(asInt(reply)).toBe(expected);
  });

  it.each<[Reply, string]>([
    [2 ** 53, '9007199254740992'],
    [-(2 ** 53), '-9007199254740992'],
    [1e300, '1e+300'],
    [2n ** 53n, '9007199254740992'],
    [b('9007199254740992'), '9007199254740992'],
    [b('-9007199254740992'), '-9007199254740992'],
    [b('123456789012345678901234567890'), '123456789012345678901234567890'],
    [decode(':9223372036854775807\r\n'), '9223372036854775807'],
  ])('%o is out of range', (reply, text) => {
    expect(() => asInt(reply)).toThrow(RangeError);
    expect(() => asInt(reply)).toThrow(`redisconn: asInt: integer ${text} is outside the safe integer range`);
  });
});

describe('asBigInt', () => {
  it.each<[Reply, bigint]>([
    [5, 5n],
    [-(2 ** 52), -(2n ** 52n)],
    [2n ** 64n, 2n ** 64n],
    [b('123456789012345678901234567890'), 123456789012345678901234567890n],
    ['-9223372036854775808', -9223372036854775808n],
    [decode(':9223372036854775807\r\n'), 9223372036854775807n],
    [decode('(3492890328409238509324850943850943825024385\r\n'), 3492890328409238509324850943850943825024385n],
  ])('%o → %o', (reply, expected) => {
    expect(asBigInt(reply)).toBe(expected);
  });
});

describe('asFloat', () => {
  it.each<[Reply, number]>([
    [1.5, 1.5],
    [3, 3],
    [2n ** 64n, 18446744073709551616],
    [b('3.14'), 3.14],
    [b('-0.5'), -0.5],
    [b('.5'), 0.5],
    [b('3.'), 3],
    [b('1e-5'), 1e-5],
    [b('1.0000000000000001e+20'), 1.0000000000000001e20],
    [b('10'), 10],
    ['inf', Infinity],
    [b('+inf'), Infinity],
    [b('-inf'), -Infinity],
    [b('INF'), Infinity],
    [b('-Infinity'), -Infinity],
    [decode(',1.25\r\n'), 1.25],
    [decode(',inf\r\n'), Infinity],
    [decode(':12\r\n'), 12],
    [decode('$4\r\n2.75\r\n'), 2.75],
  ])('%o → %o', (reply, expected) => {
    expect(asFloat(reply)).toBe(expected);
  });

  it.each<Reply>([b('nan'), b('-nan'), 'NaN', NaN, decode(',nan\r\n')])('%o → NaN', (reply) => {
    expect(asFloat(reply)).toBeNaN();
  });
});

describe('asBool', () => {
  it.each<[Reply, boolean]>([
    [true, true],
    [false, false],
    [1, true],
    [0, false],
    [2, true],
    [-1, true],
    [0n, false],
    [5n, true],
    ...['1', 't', 'T', 'true', 'TRUE', 'True'].map((text): [Reply, boolean] => [b(text), true]),
    ...['0', 'f', 'F', 'false', 'FALSE', 'False'].map((text): [Reply, boolean] => [b(text), false]),
    ['true', true],
    [decode('#t\r\n'), true],
    [decode('#f\r\n'), false],
    [decode(':1\r\n'), true],
    [decode(':0\r\n'), false],
  ])('%o → %o', (reply, expected) => {
    expect(asBool(reply)).toBe(expected);
  });
});

describe('asValues', () => {
  it('returns the array itself', () => {
    const array: Reply[] = [b('a'), 1, null, new RedisError('ERR inside')];
    expect(asValues(array)).toBe(array);
  });

  it('leaves error elements inside', () => {
    const values = asValues(decode('*2\r\n:1\r\n-ERR no\r\n'));
    expect(values).toHaveLength(2);
    expect(values?.[1]).toBeInstanceOf(RedisError);
  });

  it('turns a RESP3 Set into an array', () => {
    expect(asValues(decode('~2\r\n$1\r\na\r\n:2\r\n'))).toEqual([b('a'), 2]);
  });

  it('returns null for a nil array', () => {
    expect(asValues(decode('*-1\r\n'))).toBeNull();
  });
});

describe('asStrings / asInts / asFloats', () => {
  it.each<[string, (reply: Reply) => unknown, Reply, unknown[]]>([
    ['asStrings', asStrings, [b('a'), 'b', b('é')], ['a', 'b', 'é']],
    ['asStrings', asStrings, decode('*3\r\n$1\r\na\r\n$-1\r\n$1\r\nc\r\n'), ['a', null, 'c']],
    ['asStrings', asStrings, decode('~1\r\n$1\r\nz\r\n'), ['z']],
    ['asStrings', asStrings, [], []],
    ['asInts', asInts, [1, b('2'), null, -3n], [1, 2, null, -3]],
    ['asInts', asInts, decode('*2\r\n:1\r\n$2\r\n20\r\n'), [1, 20]],
    ['asFloats', asFloats, [1, b('2.5'), null, b('-inf')], [1, 2.5, null, -Infinity]],
    ['asFloats', asFloats, decode('*2\r\n,1.5\r\n_\r\n'), [1.5, null]],
  ])('%s(%o)', (_name, helper, reply, expected) => {
    expect(helper(reply)).toEqual(expected);
  });

  it.each<[string, (reply: Reply) => unknown]>([
    ['asStrings', asStrings],
    ['asInts', asInts],
    ['asFloats', asFloats],
  ])('%s throws an error element', (_name, helper) => {
    const error = new RedisError('ERR element');
    expect(() => helper([b('1'), error])).toThrow(error);
    expect(() => helper(decode('*2\r\n$1\r\n1\r\n-ERR wire\r\n'))).toThrow(new RedisError('ERR wire'));
  });

  it('range-checks every element of asInts', () => {
    expect(() => asInts([1, 2 ** 53])).toThrow(RangeError);
    expect(() => asInts([1, 2 ** 53])).toThrow('redisconn: asInts: element 1: integer 9007199254740992 is outside');
  });
});

describe('asStringMap', () => {
  it.each<[string, Reply, Record<string, string>]>([
    ['RESP2 flat array', decode('*4\r\n$4\r\nname\r\n$3\r\nAda\r\n$4\r\nlang\r\n$2\r\nGo\r\n'), { name: 'Ada', lang: 'Go' }],
    ['RESP3 map', decode('%2\r\n$4\r\nname\r\n$3\r\nAda\r\n+lang\r\n$2\r\nGo\r\n'), { name: 'Ada', lang: 'Go' }],
    ['decodeStrings flat array', decode('*2\r\n$1\r\nk\r\n$1\r\nv\r\n', true), { k: 'v' }],
    ['Buffer fields and UTF-8 values', [b('ключ'), b('значение ✓')], { ключ: 'значение ✓' }],
    ['empty array', [], {}],
    ['empty map', decode('%0\r\n'), {}],
    ['repeated field (last wins)', [b('a'), b('1'), b('a'), b('2')], { a: '2' }],
  ])('%s', (_name, reply, expected) => {
    const result = asStringMap(reply);
    expect(result).not.toBeNull();
    expect({ ...result }).toEqual(expected);
  });

  it('keeps __proto__ and constructor as ordinary fields', () => {
    for (const reply of [
      [b('__proto__'), b('x'), b('constructor'), b('y')],
      decode('%2\r\n$9\r\n__proto__\r\n$1\r\nx\r\n$11\r\nconstructor\r\n$1\r\ny\r\n'),
    ]) {
      const result = asStringMap(reply);
      if (result === null) throw new Error('expected a record');
      expect(Object.getPrototypeOf(result)).toBeNull();
      expect(Object.keys(result)).toEqual(['__proto__', 'constructor']);
      expect(result['__proto__']).toBe('x');
      expect(result['constructor']).toBe('y');
      expect(({} as Record<string, unknown>)['x']).toBeUndefined(); // Object.prototype untouched
    }
  });

  it('has no inherited keys', () => {
    const result = asStringMap([b('a'), b('1')]);
    expect(result?.['toString']).toBeUndefined();
    expect(result?.['hasOwnProperty']).toBeUndefined();
  });

  it.each<[string, Reply]>([
    ['as a value', [b('a'), new RedisError('ERR value')]],
    ['as a field', [new RedisError('ERR value'), b('a')]],
    ['in a map', new Map<Reply, Reply>([['a', new RedisError('ERR value')]])],
  ])('throws an error element %s', (_name, reply) => {
    expect(() => asStringMap(reply)).toThrow(new RedisError('ERR value'));
  });
});

describe('asIntMap', () => {
  it.each<[string, Reply, Record<string, number>]>([
    ['RESP2 flat array of text', decode('*4\r\n$1\r\na\r\n$2\r\n10\r\n$1\r\nb\r\n$2\r\n-3\r\n'), { a: 10, b: -3 }],
    ['RESP3 map of integers', decode('%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n'), { a: 1, b: 2 }],
    ['__proto__ field', [b('__proto__'), b('7')], { ['__proto__']: 7 }],
  ])('%s', (_name, reply, expected) => {
    const result = asIntMap(reply);
    if (result === null) throw new Error('expected a record');
    expect(Object.getPrototypeOf(result)).toBeNull();
    expect(Object.entries(result)).toEqual(Object.entries(expected));
  });

  it('range-checks values', () => {
    expect(() => asIntMap([b('big'), b('9007199254740993')])).toThrow(
      new RangeError('redisconn: asIntMap: field "big": integer 9007199254740993 is outside the safe integer range'),
    );
  });
});
