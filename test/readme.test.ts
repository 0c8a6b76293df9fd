/**
 * Every ```ts (and ```js) block of README.md compiles as printed, as a user
 * would paste it into a strict TypeScript project (test/types/tsconfig.json:
 * `tsc --init`'s options, target ES2022, NodeNext) with redisconn installed:
 * the package's declarations are emitted fresh (stripInternal applied, as in
 * dist/) and `redisconn`, `redisconn/client`, `redisconn/testing` map to
 * them. Each block is its own module file (a ```js block using require()
 * and no import is a .cjs file, checked as CommonJS); an error is reported
 * at its README line. A block preceded by `<!-- not compiled: <why> -->` is
 * skipped (keep those few). A control snippet with a known error, compiled
 * in the same program, proves errors are caught and mapped to their line.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitDeclarations, ROOT, scratchDir, tsc, type TscResult } from './types/tsc.js';

interface Snippet {
  /** README line of the opening fence. */
  fence: number;
  lang: 'ts' | 'js';
  code: string;
}

const SKIP_MARK = /^<!--\s*not compiled:\s*\S.*-->$/;

/** The ts/js blocks of a Markdown text (fences may be indented, as in a list item), and how many were marked not compiled. */
function extractSnippets(markdown: string): { snippets: Snippet[]; skipped: number[] } {
  const lines = markdown.split('\n');
  const snippets: Snippet[] = [];
  const skipped: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([\w-]*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', ticks = '', info = ''] = open;
    let end = i + 1;
    while (end < lines.length && !new RegExp(`^\\s*${ticks}\\s*$`).test(lines[end] ?? '')) end++;
    const lang = ({ ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js' } as const)[info.toLowerCase() as 'ts'];
    if (lang !== undefined) {
      let before = i - 1;
      while (before >= 0 && (lines[before] ?? '').trim() === '') before--;
      if (SKIP_MARK.test((lines[before] ?? '').trim())) skipped.push(i + 1);
      else {
        const body = lines.slice(i + 1, end).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()));
        snippets.push({ fence: i + 1, lang, code: `${body.join('\n')}\n` });
      }
    }
    i = end;
  }
  return { snippets, skipped };
}

/** The control: one error on line 3 of its block (README-like text, its fence on line 2). */
const CONTROL_MD = ['Control.', '```ts', "import { asInt } from 'redisconn';", 'const n: string = asInt(1);', '```', ''].join('\n');
const CONTROL_ERROR_LINE = 4;

let dir: string;
let compiled: TscResult;
let snippets: Snippet[];
let skipped: number[];
const files = new Map<string, { source: string; fence: number }>();

beforeAll(() => {
  dir = scratchDir('redisconn-readme');
  // Its errors are reported by test/types.test.ts; here only the snippets count.
  const emit = emitDeclarations(dir, dir);
  ({ snippets, skipped } = extractSnippets(readFileSync(join(ROOT, 'README.md'), 'utf8')));
  const control = extractSnippets(CONTROL_MD).snippets;
  const write = (source: string, snippet: Snippet): void => {
    // A JavaScript block written with require() (and no import) is CommonJS.
    const ext = snippet.lang === 'js' && /\brequire\(/.test(snippet.code) && !/^import\b/m.test(snippet.code) ? 'cjs' : snippet.lang;
    const file = `${source === 'README.md' ? 'readme' : 'control'}-L${snippet.fence}.${ext}`;
    writeFileSync(join(dir, file), snippet.code);
    files.set(file, { source, fence: snippet.fence });
  };
  for (const snippet of snippets) write('README.md', snippet);
  for (const snippet of control) write('control.md', snippet);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: join(ROOT, 'test', 'types', 'tsconfig.json'),
      compilerOptions: { paths: emit.paths, allowJs: true, checkJs: true },
      include: ['*.ts', '*.js', '*.cjs'],
    }),
  );
  compiled = tsc(['-p', join(dir, 'tsconfig.json'), '--pretty', 'false']);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** tsc's diagnostics as `SOURCE:LINE:COL: error TSxxxx: ...`, at the line of the Markdown file. */
function diagnostics(): string[] {
  const out: string[] = [];
  for (const line of compiled.output.split('\n')) {
    const at = /^(?:.*\/)?([\w.-]+)\((\d+),(\d+)\): (.*)$/.exec(line);
    const file = at ? files.get(at[1] ?? '') : undefined;
    if (at && file) out.push(`${file.source}:${file.fence + Number(at[2])}:${at[3]}: ${at[4]}`);
    else if (/^\s/.test(line) && out.length > 0) out[out.length - 1] += `\n${line}`; // a message's continuation
    else if (line.trim() !== '') out.push(line);
  }
  return out;
}

describe('README.md code blocks', () => {
  it('finds the blocks (and few are marked not compiled)', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(8);
    expect(skipped.length, `blocks marked not compiled at README lines ${skipped.join(', ')}`).toBeLessThanOrEqual(2);
  });

  it('every ts/js block compiles under strict TypeScript as printed', () => {
    const readme = diagnostics().filter((line) => !line.startsWith('control.md:'));
    expect(readme, `\n${readme.join('\n')}\n`).toEqual([]);
  });

  it('control: a wrong snippet fails at its own line', () => {
    const control = diagnostics().filter((line) => line.startsWith('control.md:'));
    expect(compiled.status).not.toBe(0);
    expect(control).toHaveLength(1);
    expect(control[0]).toMatch(new RegExp(`^control\\.md:${CONTROL_ERROR_LINE}:7: error TS2322: `));
  });
});
