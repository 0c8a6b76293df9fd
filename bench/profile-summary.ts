/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`): the functions with the most
 * self time, and self time per file of the client and plugin.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile>... [--top N]
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  /** µs */
  startTime: number;
  endTime: number;
}

const OURS = /\/dist\/((?:src|plugin|bench)\/.*)\.js$/;
const sourceMaps = new Map<string, SourceMap | null>();

/** The source map of a compiled file of ours, if it has one. */
function sourceMapOf(url: string): SourceMap | null {
  let map = sourceMaps.get(url);
  if (map === undefined) {
    const file = `${fileURLToPath(url)}.map`;
    map = existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, 'utf8'))) : null;
    sourceMaps.set(url, map);
  }
  return map;
}

/**
 * Where a function is: `src/conn.ts` plus its TypeScript line for our files
 * (through the source maps), the package path for dependencies, the URL else.
 */
function where(frame: ProfileNode['callFrame']): { file: string; line: number } {
  const ours = OURS.exec(frame.url);
  if (ours) {
    const entry = sourceMapOf(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber);
    const line = entry !== undefined && 'originalLine' in entry ? entry.originalLine : frame.lineNumber;
    return { file: `${ours[1]}.ts`, line: line + 1 };
  }
  const dep = /node_modules\/(.*)$/.exec(frame.url);
  return { file: dep ? (dep[1] as string) : frame.url, line: frame.lineNumber + 1 };
}

function percent(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(1).padStart(5)}%`;
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
if (args.length === 0) throw new Error('usage: node dist/bench/profile-summary.js <file.cpuprofile>... [--top N]');

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
let idle = 0;
let seconds = 0;
for (const file of args) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  seconds += (profile.endTime - profile.startTime) / 1e6;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') idle += hits;
    if (hits === 0 || functionName === '(idle)') continue;
    total += hits;
    const { file, line } = where(node.callFrame);
    const key = url === '' ? functionName : `${file}:${functionName || '(anonymous)'}:${line}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    if (/^(src|plugin)\//.test(file)) byFile.set(file, (byFile.get(file) ?? 0) + hits);
  }
}

const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
console.log(`${seconds.toFixed(1)} s profiled, busy ${percent(total, total + idle).trim()} of it; self time as a share of the busy samples:`);
for (const [key, hits] of sorted(byFunction).slice(0, top)) console.log(`${percent(hits, total)}  ${key}`);
console.log('\nself time per file in src/ and plugin/:');
for (const [file, hits] of sorted(byFile)) console.log(`${percent(hits, total)}  ${file}`);
