/**
 * The type tests: tsc over test/types/*.test-d.ts (expected types through
 * `expectType(value).is<T>()`, expected errors under `// @ts-expect-error`),
 * as a strict user compiles them (test/types/tsconfig.json) against the
 * package's declarations emitted fresh, exactly as `npm run build` emits
 * dist/ (stripInternal applied). Plus controls proving the harness fails: a
 * wrong expected type, a misuse that compiles, and an `any` all make tsc
 * fail, each where expected.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitDeclarations, ROOT, scratchDir, tsc, type TscResult } from './types/tsc.js';

const TYPES = join(ROOT, 'test', 'types');

let dir: string;
let emitted: TscResult;
let paths: Record<string, string[]>;

/** A tsconfig in the scratch dir: test/types/tsconfig.json, with the fresh declarations and `files`. */
function project(name: string, files: string[]): string {
  const config = join(dir, name);
  writeFileSync(config, JSON.stringify({ extends: join(TYPES, 'tsconfig.json'), compilerOptions: { paths }, files, include: [] }));
  return config;
}

beforeAll(() => {
  dir = scratchDir('redisconn-types');
  ({ result: emitted, paths } = emitDeclarations(dir, dir));
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('type tests (test/types)', () => {
  it('the package declarations emit cleanly', () => {
    expect(emitted.output, emitted.output).toBe('');
    expect(emitted.status).toBe(0);
  });

  it('test/types/*.test-d.ts compile against them: every expected type holds, every expected error occurs', () => {
    const config = join(dir, 'tsconfig.json');
    writeFileSync(config, JSON.stringify({ extends: join(TYPES, 'tsconfig.json'), compilerOptions: { paths }, include: [join(TYPES, '*.test-d.ts'), join(TYPES, 'expect.ts')] }));
    const result = tsc(['-p', config, '--pretty', 'false', '--listFilesOnly']);
    const listed = result.output.split('\n').map((file) => relative(ROOT, file.trim()));
    // The type tests are in the program, and redisconn resolved to the emitted declarations, not to dist/ or the sources.
    expect(listed).toEqual(expect.arrayContaining(['test/types/plugin.test-d.ts', 'test/types/client.test-d.ts']));
    expect(listed.filter((file) => /^(dist|src|plugin)\//.test(file))).toEqual([]);
    const checked = tsc(['-p', config, '--pretty', 'false']);
    expect(checked.output, `\n${checked.output}`).toBe('');
    expect(checked.status).toBe(0);
  });

  it('control: a wrong expected type, an expected error that does not occur, and an any all fail', () => {
    const control = join(dir, 'control.test-d.ts');
    writeFileSync(
      control,
      [
        `import { asInt, type Conn } from 'redisconn';`,
        `import { expectType } from ${JSON.stringify(join(TYPES, 'expect.js'))};`,
        `declare const app: import('fastify').FastifyInstance;`,
        `expectType(asInt(1)).is<number>();`, // line 4: it is number | null
        `// @ts-expect-error`,
        `void app.redis.get();`, // line 6: compiles, so the directive is unused
        `expectType(JSON.parse('1')).is<Conn>();`, // line 7: any is not Conn
        `expectType(app.redis.get()).is<Promise<Conn>>();`, // line 8: right
        '',
      ].join('\n'),
    );
    const result = tsc(['-p', project('tsconfig.control.json', [control]), '--pretty', 'false']);
    expect(result.status).not.toBe(0);
    const errors = result.output.split('\n').filter((line) => line.includes('error TS'));
    const at = errors.map((line) => /control\.test-d\.ts\((\d+),\d+\): error (TS\d+)/.exec(line)?.slice(1).join(' '));
    expect(at, result.output).toEqual(['4 TS2554', '5 TS2578', '7 TS2554']);
  });
});
