/** The printed table (Markdown, so it can go into the README) and bench/results.json. */
import type { Client, ContenderResult, ScenarioResult } from './harness.js';

const COLUMNS: Client[] = ['redisconn', 'ioredis', 'node-redis', 'redis-benchmark'];

function number(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { maximumFractionDigits: value >= 100 ? 0 : 1 });
}

/** A contender's variant for display: its plain API has none. */
function variantName(c: ContenderResult): string {
  return c.variant === '' ? 'plain' : c.variant;
}

function times(value: number | null): string {
  return value === null ? '' : `${value.toFixed(2)}x`;
}

/** The best contender of `client`, with its variant named when the client ran more than one. */
function cell(result: ScenarioResult, client: Client): string {
  const mine = result.contenders.filter((c) => c.client === client);
  const best = mine.reduce<ContenderResult | undefined>((b, c) => (b === undefined || c.median > b.median ? c : b), undefined);
  if (best === undefined) return '';
  return mine.length > 1 ? `${number(best.median)} (${variantName(best)})` : number(best.median);
}

/** The slower variants of clients that ran several, so no measured number is hidden. */
function alsoRan(result: ScenarioResult): string {
  const others: string[] = [];
  for (const client of COLUMNS) {
    const mine = result.contenders.filter((c) => c.client === client).sort((a, b) => b.median - a.median);
    for (const c of mine.slice(1)) others.push(`${client} ${variantName(c)} ${number(c.median)}`);
  }
  return others.length === 0 ? '' : `also: ${others.join(', ')}`;
}

export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'unit', ...COLUMNS, 'vs best peer', 'vs redis-benchmark', 'target', 'met', 'notes'];
  const rows = results.map((r) => [
    r.name,
    r.unit,
    ...COLUMNS.map((client) => cell(r, client)),
    times(r.vsBestPeer),
    times(r.vsRedisBenchmark),
    r.target?.text ?? '',
    r.target === null ? '' : r.target.met ? 'yes' : 'NO',
    [r.note, alsoRan(r)].filter((text) => text !== '').join('; '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** What bench/results.json holds about one scenario. */
function toJson(r: ScenarioResult) {
  const label = (c: ContenderResult | undefined) => (c === undefined ? null : `${c.client} (${variantName(c)})`);
  return {
    name: r.name,
    unit: r.unit,
    seconds: r.seconds,
    contenders: r.contenders.map((c) => ({
      client: c.client,
      variant: c.variant,
      median: c.median,
      samples: c.samples.map((s) => s.value),
      extras: c.extras,
    })),
    bestPeer: label(r.bestPeer),
    vsBestPeer: r.vsBestPeer,
    vsRedisBenchmark: r.vsRedisBenchmark,
    target: r.target,
    note: r.note,
  };
}

export function resultsJson(results: ScenarioResult[], run: Record<string, unknown>): string {
  return `${JSON.stringify({ ...run, scenarios: results.map(toJson) }, null, 2)}\n`;
}
