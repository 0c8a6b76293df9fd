/**
 * Table-driven tests of the RESP codec: redigo's read/write vectors, every
 * RESP3 type, the decoder's limits and the encoder's arena.
 *
 * Every read vector is decoded three ways (fed whole, fed one byte at a time,
 * and as part of one chunk holding all the valid vectors) because a streaming
 * decoder must give the same answer whatever the chunking.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Decoder, NEED_MORE, type DecoderOptions, type Reply } from '../src/resp/decode.js';
import { CommandWriter, encodeCommand, type Arg } from '../src/resp/encode.js';
import { ProtocolError, RedisError } from '../src/errors.js';
import { expectProtocolError } from './helpers.js';

// ---------------------------------------------------------------- helpers

const wire = (s: string): Buffer => Buffer.from(s, 'utf8');

interface Decoded {
  replies: Reply[];
  pushes: boolean[];
}

/**
 * Feeds `chunks` one after the other, draining `next()` after each, then calls
 * `end()`. Returns every reply (and its isPush flag) in order.
 */
function decodeChunks(chunks: Buffer[], options?: DecoderOptions): Decoded {
  const d = new Decoder(options);
  const out: Decoded = { replies: [], pushes: [] };
  for (const chunk of chunks) {
    d.feed(chunk);
    for (;;) {
      const r = d.next();
      if (r === NEED_MORE) break;
      out.replies.push(r);
      out.pushes.push(d.isPush);
    }
  }
  d.end();
  return out;
}

function whole(bytes: Buffer): Buffer[] {
  return [bytes];
}

function byteAtATime(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return chunks;
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return chunks;
}

const feeds = { whole, byteAtATime } as const;


const err = (message: string): RedisError => new RedisError(message);

// ---------------------------------------------------------------- read vectors

interface ReadVector {
  name: string;
  input: string | Buffer;
  /** Expected replies, in order; omitted for a malformed vector. */
  want?: Reply[];
  /** Expected isPush flags, when they matter. */
  pushes?: boolean[];
  options?: DecoderOptions;
}

const bytesOf = (v: ReadVector): Buffer => (typeof v.input === 'string' ? wire(v.input) : v.input);

/** redigo conn_test.go readTests (plus the vectors of this package's brief). */
const redigoValid: ReadVector[] = [
  { name: '+OK', input: '+OK\r\n', want: ['OK'] },
  { name: '+PONG', input: '+PONG\r\n', want: ['PONG'] },
  { name: 'empty simple string', input: '+\r\n', want: [''] },
  { name: '$6 foobar', input: '$6\r\nfoobar\r\n', want: [wire('foobar')] },
  { name: '$0', input: '$0\r\n\r\n', want: [Buffer.alloc(0)] },
  { name: '$-1', input: '$-1\r\n', want: [null] },
  { name: ':1', input: ':1\r\n', want: [1] },
  { name: ':-2', input: ':-2\r\n', want: [-2] },
  { name: ':0', input: ':0\r\n', want: [0] },
  { name: '*0', input: '*0\r\n', want: [[]] },
  { name: '*-1', input: '*-1\r\n', want: [null] },
  {
    name: '*4 of bulks',
    input: '*4\r\n$3\r\nfoo\r\n$3\r\nbar\r\n$5\r\nHello\r\n$5\r\nWorld\r\n',
    want: [[wire('foo'), wire('bar'), wire('Hello'), wire('World')]],
  },
  {
    name: '*3 with nil inside',
    input: '*3\r\n$3\r\nfoo\r\n$-1\r\n$3\r\nbar\r\n',
    want: [[wire('foo'), null, wire('bar')]],
  },
  { name: '*3 a nil b', input: '*3\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n', want: [[wire('a'), null, wire('b')]] },
  { name: '-ERR msg', input: '-ERR msg\r\n', want: [err('ERR msg')] },
  {
    name: '-WRONGTYPE',
    input: '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n',
    want: [err('WRONGTYPE Operation against a key holding the wrong kind of value')],
  },
  { name: 'error inside an array', input: '*2\r\n-ERR a\r\n:1\r\n', want: [[err('ERR a'), 1]] },
  { name: 'bulk holding CRLF', input: '$4\r\n\r\n\r\n\r\n', want: [wire('\r\n\r\n')] },
  {
    name: 'binary bulk',
    input: Buffer.concat([wire('$4\r\n'), Buffer.from([0, 0xff, 0x0d, 0x80]), wire('\r\n')]),
    want: [Buffer.from([0, 0xff, 0x0d, 0x80])],
  },
  { name: 'UTF-8 simple string', input: '+héllo 日本\r\n', want: ['héllo 日本'] },
  { name: 'nested arrays', input: '*2\r\n*1\r\n:1\r\n*0\r\n', want: [[[1], []]] },
  { name: 'two replies in one vector', input: ':1\r\n:2\r\n', want: [1, 2] },
];

/** Malformed input: must end in ProtocolError (from next() or from end()). */
const redigoMalformed: ReadVector[] = [
  { name: '+OK\\n\\n (no CR)', input: '+OK\n\n' },
  { name: '@OK (unknown type)', input: '@OK\r\n' },
  { name: '$ (empty length)', input: '$\r\nfoobar\r\n' },
  { name: '$x (bad length)', input: '$x\r\nfoobar\r\n' },
  { name: '$-2 (negative length)', input: '$-2\r\n' },
  { name: ': (empty integer)', input: ':\r\n' },
  { name: ':x (bad integer)', input: ':x\r\n' },
  { name: '$6 foobar without CRLF (truncated)', input: '$6\r\nfoobar' },
  { name: '$6 xx (short value, truncated)', input: '$6\r\nxx' },
  { name: '$5 hel (truncated bulk)', input: '$5\r\nhel' },
  { name: '$6 foobarx (long value)', input: '$6\r\nfoobarx\r\n' },
  { name: '$1 ab (wrong terminator)', input: '$1\r\nab\r\n' },
  { name: 'bare LF', input: '\n' },
  { name: 'bare CRLF', input: '\r\n' },
  { name: '+ with LF only', input: '+\n' },
  { name: ':1.5', input: ':1.5\r\n' },
  { name: ':--1', input: ':--1\r\n' },
  { name: ':+1', input: ':+1\r\n' },
  { name: ':- (sign only)', input: ':-\r\n' },
  { name: '*x', input: '*x\r\n' },
  { name: 'truncated array', input: '*2\r\n:1\r\n' },
  { name: 'truncated line', input: '+OK' },
  { name: 'bulk with LF only after body', input: '$2\r\nab\n' },
];

describe('decoder: redigo read vectors', () => {
  for (const [how, split] of Object.entries(feeds)) {
    describe(`fed ${how}`, () => {
      for (const v of redigoValid) {
        it(v.name, () => {
          const out = decodeChunks(split(bytesOf(v)), v.options);
          expect(out.replies).toEqual(v.want);
        });
      }
      for (const v of redigoMalformed) {
        it(`rejects ${v.name}`, () => {
          expectProtocolError(() => decodeChunks(split(bytesOf(v)), v.options));
        });
      }
    });
  }

  it('decodes all valid vectors concatenated into a single chunk', () => {
    const all = Buffer.concat(redigoValid.map(bytesOf));
    const want = redigoValid.flatMap((v) => v.want ?? []);
    expect(decodeChunks([all]).replies).toEqual(want);
    expect(decodeChunks(byteAtATime(all)).replies).toEqual(want);
  });

  it('decodes the valid vectors then fails on each malformed one appended', () => {
    const prefix = Buffer.concat(redigoValid.map(bytesOf));
    const want = redigoValid.flatMap((v) => v.want ?? []);
    for (const bad of redigoMalformed) {
      const d = new Decoder();
      d.feed(Buffer.concat([prefix, bytesOf(bad)]));
      const got: Reply[] = [];
      expectProtocolError(() => {
        for (;;) {
          const r = d.next();
          if (r === NEED_MORE) break;
          got.push(r);
        }
        d.end();
      });
      expect(got.slice(0, want.length), bad.name).toEqual(want);
    }
  });

  it('the truncated bulk $5 hel is NEED_MORE, then end() throws', () => {
    const d = new Decoder();
    d.feed(wire('$5\r\nhel'));
    expect(d.next()).toBe(NEED_MORE);
    expect(d.hasPartial).toBe(true);
    expectProtocolError(() => d.end());
  });

  it('end() is quiet after whole replies and on an empty stream', () => {
    const d = new Decoder();
    d.end();
    d.feed(wire('+OK\r\n'));
    expect(d.next()).toBe('OK');
    expect(d.next()).toBe(NEED_MORE);
    d.end();
  });

  it('error replies carry their first word as code', () => {
    const [e] = decodeChunks([wire('-NOSCRIPT No matching script\r\n')]).replies;
    expect(e).toBeInstanceOf(RedisError);
    expect((e as RedisError).code).toBe('NOSCRIPT');
    expect((e as RedisError).message).toBe('NOSCRIPT No matching script');
  });

  // redigo TestReadString: lengths around its bufio buffer boundaries.
  it('simple strings of lengths around 4 KiB boundaries, whole and in 4 KiB chunks', () => {
    const n = 4096;
    let s = '';
    for (let i = 0; i < 2 * n + 64; i++) s += String.fromCharCode(97 + (i % 26));
    for (const [lo, hi] of [[0, 64], [n - 64, n + 64], [2 * n - 64, 2 * n + 64]] as const) {
      for (let i = lo; i < hi; i++) {
        const bytes = wire(`+${s.slice(0, i)}\r\n`);
        expect(decodeChunks([bytes]).replies).toEqual([s.slice(0, i)]);
        expect(decodeChunks(chunked(bytes, n)).replies).toEqual([s.slice(0, i)]);
      }
    }
  });
});

// ---------------------------------------------------------------- RESP3

const bigText = '3492890328409238509324850943850943825024385';

const resp3Valid: ReadVector[] = [
  { name: '_ null', input: '_\r\n', want: [null] },
  { name: '#t', input: '#t\r\n', want: [true] },
  { name: '#f', input: '#f\r\n', want: [false] },
  { name: ',1.5', input: ',1.5\r\n', want: [1.5] },
  { name: ',10', input: ',10\r\n', want: [10] },
  { name: ',-0.25', input: ',-0.25\r\n', want: [-0.25] },
  { name: ',1e-7', input: ',1e-7\r\n', want: [1e-7] },
  { name: ',inf', input: ',inf\r\n', want: [Infinity] },
  { name: ',-inf', input: ',-inf\r\n', want: [-Infinity] },
  { name: ',nan', input: ',nan\r\n', want: [NaN] },
  { name: '( big number', input: `(${bigText}\r\n`, want: [BigInt(bigText)] },
  { name: '( negative big number', input: `(-${bigText}\r\n`, want: [-BigInt(bigText)] },
  { name: '( small big number stays bigint', input: '(1\r\n', want: [1n] },
  { name: '= verbatim', input: '=15\r\ntxt:Some string\r\n', want: ['Some string'] },
  { name: '= verbatim markdown, empty text', input: '=4\r\nmkd:\r\n', want: [''] },
  { name: '! blob error', input: '!21\r\nSYNTAX invalid syntax\r\n', want: [err('SYNTAX invalid syntax')] },
  {
    name: '% map, bulk keys become strings',
    input: '%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n:2\r\n',
    want: [new Map<Reply, Reply>([['first', 1], ['second', 2]])],
  },
  { name: '%0 empty map', input: '%0\r\n', want: [new Map()] },
  {
    name: '~ set',
    input: '~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n',
    want: [new Set<Reply>(['orange', 'apple', true, 100, 999])],
  },
  { name: '~0 empty set', input: '~0\r\n', want: [new Set()] },
  {
    name: '> push then a normal array',
    input: '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n*1\r\n:1\r\n',
    want: [[wire('message'), wire('ch'), wire('hi')], [1]],
    pushes: [true, false],
  },
  {
    name: 'normal array, push, simple string',
    input: '*1\r\n:1\r\n>2\r\n+pong\r\n$0\r\n\r\n+OK\r\n',
    want: [[1], ['pong', Buffer.alloc(0)], 'OK'],
    pushes: [false, true, false],
  },
  { name: '>0 empty push', input: '>0\r\n*0\r\n', want: [[], []], pushes: [true, false] },
  {
    name: '| attribute skipped at top level (RESP3 spec example)',
    input:
      '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n' +
      '*2\r\n:2039123\r\n:9543892\r\n',
    want: [[2039123, 9543892]],
  },
  {
    name: '| attribute skipped inside an array',
    input: '*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n',
    want: [[1, 2, 3]],
  },
  { name: '|0 empty attribute', input: '|0\r\n+OK\r\n', want: ['OK'] },
  { name: 'attribute before a push keeps isPush', input: '|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n', want: [['x']], pushes: [true] },
  {
    name: 'nested aggregates',
    input: '*3\r\n%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n*1\r\n*1\r\n_\r\n%1\r\n*1\r\n:7\r\n#f\r\n',
    want: [[
      new Map<Reply, Reply>([['k', new Set<Reply>([1, 2])]]),
      [[null]],
      new Map<Reply, Reply>([[[7], false]]),
    ]],
  },
  { name: 'map with a nested map value', input: '%1\r\n$1\r\nm\r\n%1\r\n$1\r\nn\r\n_\r\n', want: [new Map<Reply, Reply>([['m', new Map<Reply, Reply>([['n', null]])]])] },
  { name: ':2^53-1 stays a number', input: ':9007199254740991\r\n', want: [9007199254740991] },
  { name: ':-(2^53-1) stays a number', input: ':-9007199254740991\r\n', want: [-9007199254740991] },
  { name: ':2^53+1 becomes bigint', input: ':9007199254740993\r\n', want: [9007199254740993n] },
  { name: ':MaxInt64', input: ':9223372036854775807\r\n', want: [9223372036854775807n] },
  { name: ':MinInt64', input: ':-9223372036854775808\r\n', want: [-9223372036854775808n] },
  { name: ':15 digits', input: ':123456789012345\r\n', want: [123456789012345] },
  { name: ':16 digits, safe', input: ':1234567890123456\r\n', want: [1234567890123456] },
  { name: 'leading zeros', input: ':0000000000000000000042\r\n', want: [42] },
];

const resp3Malformed: ReadVector[] = [
  { name: '#x', input: '#x\r\n' },
  { name: '#tt', input: '#tt\r\n' },
  { name: '# empty', input: '#\r\n' },
  { name: '_x', input: '_x\r\n' },
  { name: ', empty double', input: ',\r\n' },
  { name: ',abc', input: ',abc\r\n' },
  { name: '(12a', input: '(12a\r\n' },
  { name: '( empty', input: '(\r\n' },
  { name: '=3 verbatim too short', input: '=3\r\ntxt\r\n' },
  { name: '= verbatim without colon', input: '=5\r\ntxt_x\r\n' },
  { name: '=-1', input: '=-1\r\n' },
  { name: '!-1', input: '!-1\r\n' },
  { name: '%-1', input: '%-1\r\n' },
  { name: '~-1', input: '~-1\r\n' },
  { name: '>-1', input: '>-1\r\n' },
  { name: '|-1', input: '|-1\r\n' },
  { name: '*-2', input: '*-2\r\n' },
  { name: '$-5', input: '$-5\r\n' },
  { name: 'aggregate length beyond 2^31', input: '*99999999999\r\n' },
  { name: 'aggregate length beyond 2^53', input: '*99999999999999999999\r\n' },
  { name: 'truncated map', input: '%2\r\n+a\r\n:1\r\n+b\r\n' },
  { name: 'truncated attribute', input: '|1\r\n+a\r\n' },
  { name: 'attribute with no value after it', input: '|1\r\n+a\r\n+b\r\n' },
  { name: 'empty attribute with no value after it', input: '+OK\r\n|0\r\n' },
];

describe('decoder: RESP3', () => {
  for (const [how, split] of Object.entries(feeds)) {
    describe(`fed ${how}`, () => {
      for (const v of resp3Valid) {
        it(v.name, () => {
          const out = decodeChunks(split(bytesOf(v)), v.options);
          expect(out.replies).toEqual(v.want);
          if (v.pushes) expect(out.pushes).toEqual(v.pushes);
        });
      }
      for (const v of resp3Malformed) {
        it(`rejects ${v.name}`, () => {
          expectProtocolError(() => decodeChunks(split(bytesOf(v)), v.options));
        });
      }
    });
  }

  it('decodes all RESP3 vectors concatenated into a single chunk', () => {
    const all = Buffer.concat(resp3Valid.map(bytesOf));
    const want = resp3Valid.flatMap((v) => v.want ?? []);
    expect(decodeChunks([all]).replies).toEqual(want);
    expect(decodeChunks(byteAtATime(all)).replies).toEqual(want);
  });

  it('integers are numbers up to 2^53-1 and bigints beyond', () => {
    const [a, b] = decodeChunks([wire(':9007199254740991\r\n:9007199254740993\r\n')]).replies;
    expect(typeof a).toBe('number');
    expect(typeof b).toBe('bigint');
  });

  it('a blob error is a RedisError value, not a throw', () => {
    const [e] = decodeChunks([wire('!21\r\nSYNTAX invalid syntax\r\n')]).replies;
    expect(e).toBeInstanceOf(RedisError);
    expect((e as RedisError).code).toBe('SYNTAX');
  });

  it('a map with Buffer keys is keyed by strings', () => {
    const [m] = decodeChunks([wire('%1\r\n$3\r\nkey\r\n$3\r\nval\r\n')]).replies;
    expect(m).toBeInstanceOf(Map);
    expect((m as Map<Reply, Reply>).get('key')).toEqual(wire('val'));
  });

  it('decodeStrings: true turns bulk strings into strings everywhere', () => {
    const input = wire('$5\r\nhello\r\n*2\r\n$1\r\na\r\n$-1\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n~1\r\n$3\r\nhé\r\n$0\r\n\r\n');
    const want: Reply[] = ['hello', ['a', null], new Map<Reply, Reply>([['k', 'v']]), new Set<Reply>(['hé']), ''];
    for (const split of Object.values(feeds)) {
      expect(decodeChunks(split(input), { decodeStrings: true }).replies).toEqual(want);
    }
  });

  it('the isPush flag follows the reply last returned', () => {
    const d = new Decoder();
    d.feed(wire('>2\r\n+a\r\n+b\r\n'));
    expect(d.next()).toEqual(['a', 'b']);
    expect(d.isPush).toBe(true);
    d.feed(wire('*1\r\n+c\r\n'));
    expect(d.next()).toEqual(['c']);
    expect(d.isPush).toBe(false);
    d.feed(wire('>1\r\n+d\r\n:5\r\n'));
    expect(d.next()).toEqual(['d']);
    expect(d.isPush).toBe(true);
    expect(d.next()).toBe(5);
    expect(d.isPush).toBe(false);
  });
});

// ---------------------------------------------------------------- limits

describe('decoder: limits', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a bulk length above maxBulkBytes is refused before any large allocation', () => {
    const allocs: number[] = [];
    for (const fn of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
      const original = Buffer[fn].bind(Buffer) as (n: number, ...rest: unknown[]) => Buffer;
      vi.spyOn(Buffer, fn).mockImplementation(((n: number, ...rest: unknown[]) => {
        allocs.push(n);
        return original(n, ...rest);
      }) as never);
    }
    const cases: [string, DecoderOptions][] = [
      ['$1025\r\n', { maxBulkBytes: 1024 }],
      ['$268435456\r\n', { maxBulkBytes: 1024 * 1024 }],
      ['$536870913\r\n', {}], // 512 MiB + 1, the default limit
      ['*1\r\n$268435456\r\nabc', { maxBulkBytes: 1024 * 1024 }],
      ['=268435456\r\n', { maxBulkBytes: 1024 * 1024 }],
      ['!268435456\r\n', { maxBulkBytes: 1024 * 1024 }],
      ['$99999999999999999999999\r\n', {}],
    ];
    for (const [input, options] of cases) {
      for (const split of Object.values(feeds)) {
        expectProtocolError(() => decodeChunks(split(wire(input)), options));
      }
    }
    expect(Math.max(0, ...allocs)).toBeLessThan(64 * 1024);
  });

  it('a bulk of exactly maxBulkBytes is accepted', () => {
    const body = Buffer.alloc(1024, 0x61);
    const input = Buffer.concat([wire('$1024\r\n'), body, wire('\r\n')]);
    expect(decodeChunks([input], { maxBulkBytes: 1024 }).replies).toEqual([body]);
  });

  it('negative lengths other than -1 are refused', () => {
    for (const input of ['$-2\r\n', '$-100\r\n', '*-2\r\n', '*-100\r\n', '%-2\r\n', '~-3\r\n', '>-2\r\n', '=-2\r\n', '!-9\r\n']) {
      expectProtocolError(() => decodeChunks([wire(input)]));
    }
  });

  it('a line longer than maxLineBytes is refused however it is fed', () => {
    const maxLineBytes = 64;
    const long = [
      `+${'a'.repeat(200)}\r\n`,
      `-${'a'.repeat(200)}\r\n`,
      `:${'1'.repeat(200)}\r\n`,
      `$${'0'.repeat(198)}1\r\nx\r\n`,
      `*${'0'.repeat(198)}1\r\n:1\r\n`,
      `,${'1'.repeat(200)}\r\n`,
    ];
    for (const input of long) {
      for (const split of [...Object.values(feeds), (b: Buffer) => chunked(b, 7)]) {
        expectProtocolError(() => decodeChunks(split(wire(input)), { maxLineBytes }));
      }
    }
    // A line with no terminator yet is refused as soon as it is too long.
    const d = new Decoder({ maxLineBytes });
    d.feed(wire(`+${'a'.repeat(100)}`));
    expectProtocolError(() => d.next());
  });

  it('lines around maxLineBytes get the same verdict whole and byte by byte', () => {
    const maxLineBytes = 64;
    for (let n = 50; n < 80; n++) {
      const input = wire(`+${'b'.repeat(n)}\r\n`);
      const verdicts = Object.values(feeds).map((split) => {
        try {
          return decodeChunks(split(input), { maxLineBytes }).replies;
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
          return 'refused';
        }
      });
      expect(verdicts[0], `line of ${n + 3} bytes`).toEqual(verdicts[1]);
      if (n < maxLineBytes - 2) expect(verdicts[0]).toEqual(['b'.repeat(n)]);
      if (n > maxLineBytes) expect(verdicts[0]).toBe('refused');
    }
  });

  it('maxLineBytes does not limit bulk bodies', () => {
    const body = 'z'.repeat(10_000);
    const input = wire(`$${body.length}\r\n${body}\r\n`);
    for (const split of [whole, (b: Buffer) => chunked(b, 100)]) {
      expect(decodeChunks(split(input), { maxLineBytes: 32, decodeStrings: true }).replies).toEqual([body]);
    }
  });

  it('nesting deeper than maxDepth is refused', () => {
    const nest = (depth: number): Buffer => wire('*1\r\n'.repeat(depth) + ':1\r\n');
    const want = (depth: number): Reply => {
      let v: Reply = 1;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    };
    for (const split of Object.values(feeds)) {
      expect(decodeChunks(split(nest(3)), { maxDepth: 3 }).replies).toEqual([want(3)]);
      expectProtocolError(() => decodeChunks(split(nest(4)), { maxDepth: 3 }));
    }
    // The default limit is 1024.
    expect(decodeChunks([nest(1024)]).replies).toEqual([want(1024)]);
    expectProtocolError(() => decodeChunks([nest(1025)]));
    // Maps, sets, pushes and attributes count too.
    expectProtocolError(() => decodeChunks([wire('%1\r\n+k\r\n~1\r\n>1\r\n:1\r\n')], { maxDepth: 2 }));
    expectProtocolError(() => decodeChunks([wire('*1\r\n*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n')], { maxDepth: 2 }));
  });

  it('a 16 MiB bulk fed in 64 KiB chunks decodes to the exact bytes', () => {
    const size = 16 * 1024 * 1024;
    const payload = Buffer.allocUnsafe(size);
    let x = 0x9e3779b9;
    for (let i = 0; i < size; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      payload.writeUInt32LE(x >>> 0, i);
    }
    // Sprinkle protocol bytes in the body: they must be taken as data.
    for (let i = 0; i < size; i += 4099) payload.write('\r\n$5\r\n', i, 'latin1');
    const input = Buffer.concat([wire(`*3\r\n+before\r\n$${size}\r\n`), payload, wire('\r\n:7\r\n+after\r\n')]);
    for (const decodeStrings of [false, true]) {
      const out = decodeChunks(chunked(input, 64 * 1024), { decodeStrings });
      expect(out.replies.length).toBe(2);
      const [arr, after] = out.replies as [Reply[], Reply];
      expect(arr.length).toBe(3);
      expect(arr[0]).toBe('before');
      if (decodeStrings) {
        expect(arr[1] === payload.toString('utf8')).toBe(true);
      } else {
        expect(Buffer.isBuffer(arr[1])).toBe(true);
        expect((arr[1] as Buffer).equals(payload)).toBe(true);
      }
      expect(arr[2]).toBe(7);
      expect(after).toBe('after');
    }
  });

  it('an assembled bulk still checks its CRLF terminator', () => {
    const size = 20_000;
    const input = Buffer.concat([wire(`$${size}\r\n`), Buffer.alloc(size, 0x61), wire('xy')]);
    expectProtocolError(() => decodeChunks(chunked(input, 1000)));
  });

  it('a big bulk straddling chunks keeps the bytes after it when next() is not called between feeds', () => {
    const size = 20_000;
    const body = Buffer.alloc(size, 0x62);
    const d = new Decoder();
    d.feed(Buffer.concat([wire(`$${size}\r\n`), body.subarray(0, 100)]));
    expect(d.next()).toBe(NEED_MORE); // the body is now being assembled
    d.feed(Buffer.concat([body.subarray(100), wire('\r\n+A\r\n')]));
    d.feed(wire('+B\r\n'));
    const got: Reply[] = [];
    for (let r = d.next(); r !== NEED_MORE; r = d.next()) got.push(r);
    expect(got).toEqual([body, 'A', 'B']);
    d.end();
  });
});

// ---------------------------------------------------------------- encoder

const enc = (...parts: (string | Buffer)[]): Buffer => {
  const chunks: Buffer[] = [wire(`*${parts.length}\r\n`)];
  for (const p of parts) {
    const bytes = typeof p === 'string' ? wire(p) : p;
    chunks.push(wire(`$${bytes.length}\r\n`), bytes, wire('\r\n'));
  }
  return Buffer.concat(chunks);
};

function takeAll(w: CommandWriter): Buffer {
  const out = w.take();
  if (out === null) return Buffer.alloc(0);
  return Array.isArray(out) ? Buffer.concat(out) : out;
}

interface WriteVector {
  name: string;
  cmd: string;
  args: Arg[];
  want: string | Buffer;
}

class Seconds {
  constructor(private readonly ms: number) {}
  redisArg(): number {
    return this.ms / 1000;
  }
}

/** redigo conn_test.go writeTests, adapted to the argument rules of DESIGN.md. */
const writeVectors: WriteVector[] = [
  { name: 'strings', cmd: 'SET', args: ['key', 'value'], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n' },
  { name: 'integer 100', cmd: 'SET', args: ['key', 100], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\n100\r\n' },
  {
    name: 'MinInt64 as bigint',
    cmd: 'SET',
    args: ['key', -9223372036854775808n],
    want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$20\r\n-9223372036854775808\r\n',
  },
  {
    name: 'float 1349673917.939762',
    cmd: 'SET',
    args: ['key', 1349673917.939762],
    want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$17\r\n1349673917.939762\r\n',
  },
  { name: 'float 3.14', cmd: 'SET', args: ['key', 3.14], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n3.14\r\n' },
  { name: 'float -1e-7 (plain decimal, no exponent)', cmd: 'SET', args: ['key', -1e-7], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n-0.0000001\r\n' },
  { name: 'integer 1e21 (plain decimal, no exponent)', cmd: 'SET', args: ['key', 1e21], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$22\r\n1000000000000000000000\r\n' },
  { name: 'Infinity', cmd: 'ZADD', args: ['z', Infinity, 'm'], want: enc('ZADD', 'z', 'inf', 'm') },
  { name: '-Infinity', cmd: 'ZADD', args: ['z', -Infinity, 'm'], want: enc('ZADD', 'z', '-inf', 'm') },
  { name: 'empty string', cmd: 'SET', args: ['key', ''], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n' },
  { name: 'null', cmd: 'SET', args: ['key', null], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n' },
  { name: 'undefined', cmd: 'SET', args: ['key', undefined], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n' },
  { name: 'redisArg() (durationArg)', cmd: 'SET', args: ['key', new Seconds(60_000)], want: '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\n60\r\n' },
  { name: 'redisArg() returning a Buffer', cmd: 'SET', args: ['key', { redisArg: () => Buffer.from([1, 2]) }], want: enc('SET', 'key', Buffer.from([1, 2])) },
  { name: 'booleans', cmd: 'ECHO', args: [true, false], want: '*3\r\n$4\r\nECHO\r\n$1\r\n1\r\n$1\r\n0\r\n' },
  { name: 'no arguments', cmd: 'PING', args: [], want: '*1\r\n$4\r\nPING\r\n' },
  { name: 'bigint', cmd: 'INCRBY', args: ['k', 12345678901234567890n], want: enc('INCRBY', 'k', '12345678901234567890') },
  { name: 'negative zero', cmd: 'SET', args: ['k', -0], want: enc('SET', 'k', '0') },
  { name: 'MAX_SAFE_INTEGER', cmd: 'SET', args: ['k', Number.MAX_SAFE_INTEGER], want: enc('SET', 'k', '9007199254740991') },
  {
    name: 'binary Buffer',
    cmd: 'SET',
    args: ['k', Buffer.from([0, 0xff, 0x0d, 0x0a, 0x80])],
    want: Buffer.concat([wire('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n'), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x80]), wire('\r\n')]),
  },
  {
    name: 'Uint8Array',
    cmd: 'SET',
    args: ['k', new Uint8Array([1, 2, 3, 0xfe])],
    want: enc('SET', 'k', Buffer.from([1, 2, 3, 0xfe])),
  },
  {
    name: 'Uint8Array view with an offset',
    cmd: 'SET',
    args: ['k', new Uint8Array([9, 9, 1, 2, 9]).subarray(2, 4)],
    want: enc('SET', 'k', Buffer.from([1, 2])),
  },
  { name: 'multi-byte UTF-8 (é)', cmd: 'SET', args: ['k', 'héllo'], want: Buffer.concat([wire('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\n'), wire('héllo'), wire('\r\n')]) },
  { name: 'multi-byte UTF-8 (CJK)', cmd: 'SET', args: ['k', '日本語'], want: Buffer.concat([wire('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\n'), wire('日本語'), wire('\r\n')]) },
  { name: 'multi-byte UTF-8 (emoji)', cmd: 'SET', args: ['k', '😀'], want: Buffer.concat([wire('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n'), wire('😀'), wire('\r\n')]) },
  { name: 'lone surrogate', cmd: 'SET', args: ['k', 'a\ud800b'], want: enc('SET', 'k', Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62])) },
  { name: 'multi-byte command name', cmd: 'ÉCHO', args: [], want: enc('ÉCHO') },
  { name: 'ten-digit argument count', cmd: 'MSET', args: Array.from({ length: 11 }, (_, i) => i), want: enc('MSET', ...Array.from({ length: 11 }, (_, i) => String(i))) },
];

describe('encoder: vectors', () => {
  for (const v of writeVectors) {
    it(v.name, () => {
      const want = typeof v.want === 'string' ? wire(v.want) : v.want;
      expect(encodeCommand(v.cmd, ...v.args).equals(want), `${JSON.stringify(encodeCommand(v.cmd, ...v.args).toString('latin1'))}`).toBe(true);
      const w = new CommandWriter();
      w.write(v.cmd, v.args);
      expect(w.length).toBe(want.length);
      expect(takeAll(w).equals(want)).toBe(true);
      expect(w.take()).toBeNull();
    });
  }

  it('encoded commands decode back to their arguments', () => {
    const all = Buffer.concat(writeVectors.map((v) => encodeCommand(v.cmd, ...v.args)));
    const replies = decodeChunks([all]).replies;
    expect(replies.length).toBe(writeVectors.length);
    replies.forEach((r, i) => {
      const v = writeVectors[i] as WriteVector;
      expect(Array.isArray(r)).toBe(true);
      expect((r as Buffer[])[0]?.toString('utf8')).toBe(v.cmd);
      expect((r as Reply[]).length).toBe(v.args.length + 1);
    });
  });

  it('a command name that is not a non-empty string is a TypeError, nothing written', () => {
    const w = new CommandWriter();
    for (const bad of ['', 123, undefined, null, ['GET', 'k'], Buffer.from('GET')]) {
      expect(() => w.write(bad as string, [])).toThrow(/command name must be a non-empty string/);
    }
    expect(w.take()).toBeNull();
  });

  const unsupported: [string, unknown][] = [
    ['plain object', { a: 1 }],
    ['array', ['a', 'b']],
    ['symbol', Symbol('s')],
    ['function', () => 1],
    ['Map', new Map()],
    ['Date', new Date(0)],
    ['Uint16Array', new Uint16Array(2)],
    ['ArrayBuffer', new ArrayBuffer(4)],
    ['NaN', NaN],
    ['null-prototype object', Object.create(null)],
    ['redisArg() returning an object', { redisArg: () => ({}) }],
    ['redisArg() returning itself (redigo recursiveArg)', { redisArg(): unknown { return this; } }],
    ['redisArg() returning NaN', { redisArg: () => NaN }],
  ];

  for (const [name, bad] of unsupported) {
    it(`${name} → TypeError, writer unchanged`, () => {
      expect(() => encodeCommand('SET', 'k', bad as Arg)).toThrow(TypeError);

      const fresh = new CommandWriter();
      expect(() => fresh.write('SET', ['k', bad])).toThrow(TypeError);
      expect(fresh.length).toBe(0);
      expect(fresh.take()).toBeNull();

      const w = new CommandWriter();
      w.write('PING', []);
      const before = w.length;
      // The bad argument comes after a good one and before another good one.
      expect(() => w.write('SET', ['k', 'v', bad, 'after'])).toThrow(TypeError);
      expect(w.length).toBe(before);
      expect(takeAll(w).equals(enc('PING'))).toBe(true);
      expect(w.take()).toBeNull();
      // And the writer still works.
      w.write('GET', ['k']);
      expect(takeAll(w).equals(enc('GET', 'k'))).toBe(true);
    });
  }

  it('NaN is refused with a message naming it', () => {
    expect(() => encodeCommand('SET', 'k', NaN)).toThrow(/NaN/);
  });
});

describe('encoder: CommandWriter arena', () => {
  it('many commands taken at once equal the individual encodings concatenated', () => {
    const w = new CommandWriter();
    const cmds: [string, Arg[]][] = [];
    for (let i = 0; i < 500; i++) cmds.push(['SET', [`key:${i}`, 'x'.repeat(i % 300), i, i % 2 === 0]]);
    for (const [cmd, args] of cmds) w.write(cmd, args);
    const want = Buffer.concat(cmds.map(([cmd, args]) => encodeCommand(cmd, ...args)));
    expect(want.length).toBeGreaterThan(64 * 1024); // crosses at least one arena
    expect(w.length).toBe(want.length);
    expect(takeAll(w).equals(want)).toBe(true);
    expect(w.length).toBe(0);
    expect(w.take()).toBeNull();
  });

  it('writing past the 64 KiB arena boundary keeps earlier taken buffers intact', () => {
    const w = new CommandWriter();
    const taken: { got: Buffer[]; want: Buffer }[] = [];
    for (let i = 0; i < 400; i++) {
      const args: Arg[] = [`k${i}`, String.fromCharCode(97 + (i % 26)).repeat(1 + ((i * 37) % 2000))];
      w.write('SET', args);
      const out = w.take();
      expect(out).not.toBeNull();
      const got = Array.isArray(out) ? out : [out as Buffer];
      taken.push({ got, want: encodeCommand('SET', ...args) });
    }
    // Later writes (several arenas' worth) must not have touched earlier buffers.
    for (const { got, want } of taken) expect(Buffer.concat(got).equals(want)).toBe(true);
  });

  it('an argument larger than the arena gets an arena of its own', () => {
    const w = new CommandWriter();
    w.write('PING', []);
    const big = 'q'.repeat(100_000);
    w.write('SET', ['k', big]);
    w.write('PING', []);
    expect(takeAll(w).equals(Buffer.concat([enc('PING'), enc('SET', 'k', big), enc('PING')]))).toBe(true);
  });

  it('a Buffer of 64 KiB or more is referenced, not copied', () => {
    for (const size of [64 * 1024, 200_000]) {
      const big = Buffer.alloc(size);
      for (let i = 0; i < size; i++) big[i] = (i * 31) & 0xff;
      const w = new CommandWriter();
      w.write('SET', ['k', big, 'tail']);
      const out = w.take();
      expect(Array.isArray(out)).toBe(true);
      const parts = out as Buffer[];
      expect(parts.some((p) => p.buffer === big.buffer && p.byteOffset === big.byteOffset && p.length === size)).toBe(true);
      expect(Buffer.concat(parts).equals(enc('SET', 'k', big, 'tail'))).toBe(true);
    }
  });

  it('a large Uint8Array view is referenced at its own offset', () => {
    const backing = new Uint8Array(70_000 + 10);
    for (let i = 0; i < backing.length; i++) backing[i] = i & 0xff;
    const view = backing.subarray(5, 5 + 70_000);
    const w = new CommandWriter();
    w.write('SET', ['k', view]);
    const parts = w.take() as Buffer[];
    expect(parts.some((p) => p.buffer === backing.buffer && p.byteOffset === 5 && p.length === 70_000)).toBe(true);
    expect(Buffer.concat(parts).equals(enc('SET', 'k', Buffer.from(view)))).toBe(true);
  });

  it('a Buffer just under 64 KiB is copied', () => {
    const small = Buffer.alloc(64 * 1024 - 1, 0x41);
    const w = new CommandWriter();
    w.write('SET', ['k', small]);
    const out = w.take();
    const parts = Array.isArray(out) ? out : [out as Buffer];
    expect(parts.some((p) => p.buffer === small.buffer)).toBe(false);
    small.fill(0x42); // changing it after the write must not change what was written
    expect(Buffer.concat(parts).equals(enc('SET', 'k', Buffer.alloc(64 * 1024 - 1, 0x41)))).toBe(true);
  });

  it('clear() drops what was not taken', () => {
    const w = new CommandWriter();
    w.write('SET', ['a', 'b']);
    w.write('SET', ['big', Buffer.alloc(70_000)]);
    w.clear();
    expect(w.length).toBe(0);
    expect(w.take()).toBeNull();
    w.write('GET', ['a']);
    expect(takeAll(w).equals(enc('GET', 'a'))).toBe(true);
  });

  it('redisArg() is called once per write', () => {
    let calls = 0;
    const arg = { redisArg: () => { calls++; return 'v'; } };
    const w = new CommandWriter();
    w.write('SET', ['k', arg]);
    expect(calls).toBe(1);
    expect(takeAll(w).equals(enc('SET', 'k', 'v'))).toBe(true);
  });

  it('a failed write does not keep earlier arguments alive', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const w = new CommandWriter();
    const ref = ((): WeakRef<Buffer> => {
      const big = Buffer.alloc(1024);
      expect(() => w.write('SET', ['k', big, Symbol('bad')])).toThrow(TypeError);
      return new WeakRef(big);
    })();
    // WeakRef targets live until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(ref.deref()).toBeUndefined();
    expect(w.length).toBe(0);
  });
});
