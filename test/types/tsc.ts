/**
 * Running `tsc` for the type tests (test/types.test.ts) and the README check
 * (test/readme.test.ts): a scratch directory inside the repository (so
 * `fastify`, `@types/node`... resolve from its node_modules), the package's
 * declarations emitted there exactly as `npm run build` emits them into
 * dist/ (same tsconfig, so `stripInternal` applies), and a tsconfig mapping
 * `redisconn`, `redisconn/client` and `redisconn/testing` to them: what a
 * user of the package compiles against, without touching dist/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

export interface TscResult {
  status: number | null;
  /** stdout + stderr, for the failure message. */
  output: string;
}

export function tsc(args: string[]): TscResult {
  const result = spawnSync(TSC, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

/** A fresh directory under node_modules/.cache; remove it with `rmSync(dir, { recursive: true, force: true })`. */
export function scratchDir(name: string): string {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  return mkdtempSync(join(cache, `${name}-`));
}

/**
 * Emits the declarations of src/ and plugin/ into `<dir>/dts` with the
 * package's own tsconfig (as `npm run build` does for dist/), and returns
 * the `paths` a tsconfig in `configDir` needs to resolve the package's three
 * entry points to them.
 */
export function emitDeclarations(dir: string, configDir: string): { result: TscResult; paths: Record<string, string[]> } {
  const outDir = join(dir, 'dts');
  const config = join(dir, 'tsconfig.emit.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { rootDir: ROOT, outDir, declaration: true, emitDeclarationOnly: true, noEmit: false },
      include: [join(ROOT, 'src'), join(ROOT, 'plugin')],
    }),
  );
  const result = tsc(['-p', config]);
  const at = (file: string): string[] => [`./${relative(configDir, join(outDir, file))}`];
  return {
    result,
    paths: {
      redisconn: at('plugin/index.d.ts'),
      'redisconn/client': at('src/index.d.ts'),
      'redisconn/testing': at('src/testing/index.d.ts'),
    },
  };
}
