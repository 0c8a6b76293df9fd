/**
 * Decoder micro-benchmark: redisconn's RESP decoder alone on pre-built
 * replies, fed in 64 KiB chunks as a socket delivers them. One scenario per
 * reply shape; replies/s (top-level replies) and MB/s of input.
 */
import { performance } from 'node:perf_hooks';
import { Decoder, NEED_MORE } from '../../src/resp/decode.js';
import { LARGE_BYTES, scaled, VALUE_BYTES } from '../config.js';
import type { Scenario } from '../harness.js';

const CHUNK = 64 * 1024;

function bulk(bytes: number): string {
  return `$${bytes}\r\n${'v'.repeat(bytes)}\r\n`;
}

interface Shape {
  name: string;
  /** One reply in RESP. */
  reply: string;
  /** Replies per pre-built buffer. */
  count: number;
  /** Buffers decoded per measured run. */
  work: number;
}

const SHAPES: Shape[] = [
  { name: 'simple string', reply: '+OK\r\n', count: 10_000, work: 300 },
  { name: 'integer', reply: ':1234567\r\n', count: 10_000, work: 300 },
  { name: `bulk ${VALUE_BYTES} B`, reply: bulk(VALUE_BYTES), count: 10_000, work: 60 },
  { name: 'bulk 1 MiB', reply: bulk(LARGE_BYTES), count: 4, work: 50 },
  { name: `array 1000 x ${VALUE_BYTES} B`, reply: `*1000\r\n${bulk(VALUE_BYTES).repeat(1000)}`, count: 10, work: 40 },
];

function chunks(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; at += CHUNK) out.push(buf.subarray(at, at + CHUNK));
  return out;
}

function decoderScenario(shape: Shape): Scenario {
  const input = Buffer.from(shape.reply.repeat(shape.count), 'latin1');
  const pieces = chunks(input);
  return {
    name: `decode ${shape.name}`,
    unit: 'replies/s',
    warmup: Math.ceil(shape.work / 4),
    work: scaled(shape.work),
    contenders: [
      {
        client: 'redisconn',
        variant: 'Decoder',
        open: async () => ({
          async run(buffers) {
            const decoder = new Decoder();
            let replies = 0;
            const started = performance.now();
            for (let b = 0; b < buffers; b++) {
              for (const piece of pieces) {
                decoder.feed(piece);
                while (decoder.next() !== NEED_MORE) replies++;
              }
            }
            const seconds = (performance.now() - started) / 1000;
            if (replies !== buffers * shape.count) throw new Error(`bench: decoded ${replies} replies, expected ${buffers * shape.count}`);
            return { value: replies / seconds, extras: { MBps: (buffers * input.length) / 1e6 / seconds } };
          },
          close: async () => {},
        }),
      },
    ],
    note: (r) => `${r.redisconn?.extras.MBps?.toFixed(0)} MB/s`,
  };
}

export const decoders: Scenario[] = SHAPES.map(decoderScenario);
