/**
 * The package as a user gets it: `npm pack` from a fresh copy of the repository
 * (no dist/, so the `prepack`/`prepare` scripts must build it), then the tarball
 * installed into a throwaway app and used from there: the file list, package.json's
 * targets, source maps and declarations that reference only shipped files, imports
 * of `redisconn`, `redisconn/client` and `redisconn/testing` as ESM and as CommonJS
 * (require(esm)), `redisconn/client` loading neither Fastify nor prom-client, a real
 * PING through the installed package, and a strict NodeNext TypeScript consumer.
 *
 * The app is installed offline (`npm ci --offline`) from a lock file derived from
 * the repository's, so the npm cache filled by the repository's `npm ci` is all it
 * needs: no network.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

/** The Node range the package promises: require(esm) is unflagged from 20.19 and 22.12. */
const NODE_RANGE = '^20.19.0 || >=22.12.0';

/** What `redisconn`, `redisconn/client` and `redisconn/testing` resolve to. */
const ENTRY_FILES = ['dist/plugin/index.js', 'dist/src/index.js', 'dist/src/testing/index.js'];

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Environment for child processes: no NODE_OPTIONS from the runner, none of `npm test`'s npm_* settings but the cache. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH') continue;
    if (/^npm_/i.test(k) && !/^npm_config_(cache|userconfig|globalconfig|registry)$/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

const tail = (s: string, n = 4000): string => (s.length > n ? `…${s.slice(-n)}` : s);

/**
 * Runs a command in its own process group; rejects with its output on a non-zero
 * exit, and kills the whole group (npm → sh → tsc) when `timeoutMs` passes.
 */
function run(what: string, cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what}: could not run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && !timedOut) return resolve({ stdout, stderr });
      const how = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${code ?? signal}`;
      let hint = '';
      if (/ENOTCACHED/.test(stderr)) {
        hint = '\nA dependency of the tarball is not in the npm cache (this test installs offline): run `npm ci` in the repository first.';
      }
      reject(new Error(`${what}: \`${cmd} ${args.join(' ')}\` in ${cwd} ${how}${hint}\n--- stderr ---\n${tail(stderr)}\n--- stdout ---\n${tail(stdout)}`));
    });
  });
}

/** Copies the repository as a clone would have it: no .git, nothing .gitignore names at the top (node_modules, dist, …). */
function copyAsFreshClone(to: string): void {
  const ignored = new Set(['.git', 'node_modules', 'dist']);
  for (const line of readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')) {
    const name = line.trim().replace(/^\//, '').replace(/\/$/, '');
    if (name && !name.startsWith('#') && !name.startsWith('!') && !/[*?[/]/.test(name)) ignored.add(name);
  }
  mkdirSync(to);
  for (const name of readdirSync(ROOT)) {
    if (!ignored.has(name)) cpSync(join(ROOT, name), join(to, name), { recursive: true });
  }
  // The build needs the dev dependencies (tsc, @types/node) a clone gets from `npm ci`.
  symlinkSync(join(ROOT, 'node_modules'), join(to, 'node_modules'), 'dir');
}

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

interface PackageJson {
  name: string;
  version: string;
  license?: string;
  main?: string;
  types?: string;
  exports?: unknown;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * A package.json + package-lock.json for an app depending on the tarball and on
 * @types/node, the versions of everything else taken from the repository's lock
 * file, so `npm ci --offline` resolves nothing and reads only the npm cache.
 */
function writeApp(dir: string, tarball: string, pkg: PackageJson): void {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const all = lock.packages;
  const resolveFrom = (from: string, name: string): string | null => {
    for (let dir = from; ; ) {
      const at = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (all[at]) return at;
      if (!dir) return null;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const picked: Record<string, LockEntry> = {};
  const queue: string[] = [];
  const want = (from: string, name: string, optional = false): void => {
    const at = resolveFrom(from, name);
    if (at === null) {
      if (optional) return;
      throw new Error(`package-lock.json has no ${name} reachable from ${from || 'the root'}; run \`npm install\` in the repository`);
    }
    if (picked[at]) return;
    const { dev: _dev, devOptional: _devOptional, optional: _optional, peer: _peer, ...entry } = all[at]!;
    picked[at] = entry;
    queue.push(at);
  };
  for (const name of Object.keys(pkg.dependencies ?? {})) want('', name);
  want('', '@types/node');
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    const e = all[at]!;
    for (const name of Object.keys(e.dependencies ?? {})) want(at, name);
    for (const name of Object.keys(e.optionalDependencies ?? {})) want(at, name, true);
    for (const name of Object.keys(e.peerDependencies ?? {})) want(at, name, e.peerDependenciesMeta?.[name]?.optional === true);
  }
  const spec = `file:${tarball}`;
  const deps = { redisconn: spec, '@types/node': picked['node_modules/@types/node']!.version! };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: deps }, null, 2));
  const appLock = {
    name: 'app',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'app', version: '1.0.0', dependencies: deps },
      'node_modules/redisconn': { version: pkg.version, resolved: spec, license: pkg.license, dependencies: pkg.dependencies, engines: pkg.engines },
      ...picked,
    },
  };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(appLock, null, 2));
}

/** The relative and bare module specifiers of a .js or .d.ts file, plus its `/// <reference types>`. */
function specifiers(text: string): { relative: string[]; bare: string[]; referenceTypes: string[]; referencePaths: string[] } {
  const all = new Set<string>();
  const patterns = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  // Doc comments quote code (`import … from 'redisconn'`): look at code only.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/(?!\/).*$/gm, '');
  for (const re of patterns) for (const m of code.matchAll(re)) all.add(m[1]!);
  const referenceTypes = [...text.matchAll(/^\/\/\/\s*<reference\s+types="([^"]+)"/gm)].map((m) => m[1]!);
  const referencePaths = [...text.matchAll(/^\/\/\/\s*<reference\s+path="([^"]+)"/gm)].map((m) => m[1]!);
  const relative = [...all].filter((s) => s.startsWith('.'));
  const bare = [...all].filter((s) => !s.startsWith('.'));
  return { relative, bare, referenceTypes, referencePaths };
}

/** `fastify/types/x` → `fastify`, `@scope/name/x` → `@scope/name`. */
const packageName = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

/** The string leaves of package.json's `exports`. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets);
  return [];
}

/**
 * `heavy()`: which of Fastify, its plugins/helpers (@fastify/*, fastify-plugin) and
 * prom-client have modules in require.cache (ESM imports of CommonJS land there too).
 */
const HEAVY_PROBE = String.raw`
const heavy = () => [...new Set(Object.keys(require.cache)
  .map((k) => /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(k)?.[1]?.replace(/\\/g, '/'))
  .filter((n) => n && (/^(fastify|fastify-plugin|prom-client)$/.test(n) || n.startsWith('@fastify/'))))].sort();
`;

const CHECK_BODY = `
  out.exports = {
    default: typeof root.default,
    ErrNotConfigured: typeof root.ErrNotConfigured,
    getConn: typeof root.getConn,
    rootDial: typeof root.dial,
    dial: typeof client.dial,
    dialURL: typeof client.dialURL,
    newPool: typeof client.newPool,
    Pool: typeof client.Pool,
    RedisError: typeof client.RedisError,
    startRedisServer: typeof testing.startRedisServer,
  };
  out.sameDial = root.dial === client.dial;
  out.clientHasNoPlugin = !('default' in client) && !('ErrNotConfigured' in client);
  const e = new root.ErrNotConfigured();
  out.err = { code: e.code, statusCode: e.statusCode, message: e.message, isError: e instanceof Error };
`;

/** ESM: import redisconn/client alone first, then the rest. */
const ESM_CHECK = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
${HEAVY_PROBE}
const out = {};
const client = await import('redisconn/client');
out.heavyAfterClientOnly = heavy();
const testing = await import('redisconn/testing');
const root = await import('redisconn');
out.heavyAfterRoot = heavy();
out.resolved = ['redisconn', 'redisconn/client', 'redisconn/testing'].map((s) => import.meta.resolve(s));
{
${CHECK_BODY}
}
console.log(JSON.stringify(out));
`;

/** CommonJS: require(esm) of every entry point, redisconn/client alone first. */
const CJS_CHECK = `
${HEAVY_PROBE}
const out = {};
const client = require('redisconn/client');
out.heavyAfterClientOnly = heavy();
const testing = require('redisconn/testing');
const root = require('redisconn');
out.heavyAfterRoot = heavy();
out.resolved = ['redisconn', 'redisconn/client', 'redisconn/testing'].map((s) => require.resolve(s));
out.esModule = root.__esModule === true;
{
${CHECK_BODY}
}
console.log(JSON.stringify(out));
`;

/** A real round trip through the installed package: a throwaway redis-server, a dialed PING, and a plugin route. */
const E2E_BODY = `
async function main() {
  const server = await startRedisServer();
  try {
    const conn = await dial(server.addr);
    const pong = await conn.do('PING');
    await conn.close();
    const app = Fastify();
    await app.register(redisconn, { addr: server.addr, db: 0 });
    app.get('/ping', async (request) => {
      const c = await request.redis.get();
      try {
        return { reply: await c.do('PING') };
      } finally {
        await c.close();
      }
    });
    const res = await app.inject({ method: 'GET', url: '/ping' });
    await app.close();
    console.log(JSON.stringify({ pong, status: res.statusCode, body: res.json() }));
  } finally {
    await server.stop();
  }
}
`;
const ESM_E2E = `
import Fastify from 'fastify';
import redisconn from 'redisconn';
import { dial } from 'redisconn/client';
import { startRedisServer } from 'redisconn/testing';
${E2E_BODY}
await main();
`;
const CJS_E2E = `
const Fastify = require('fastify');
const redisconn = require('redisconn').default;
const { dial } = require('redisconn/client');
const { startRedisServer } = require('redisconn/testing');
${E2E_BODY}
main().catch((err) => { console.error(err); process.exitCode = 1; });
`;

/** A strict NodeNext consumer, ESM side; the @ts-expect-error lines fail if the types degrade to any. */
const TS_ESM = `
import Fastify from 'fastify';
import redisconn, { ErrNotConfigured, getConn } from 'redisconn';
import { asString, dial, newPool, type Conn, type Reply } from 'redisconn/client';
import { startRedisServer } from 'redisconn/testing';

const app = Fastify();
await app.register(redisconn, { addr: 'localhost:6379', db: 0 });
app.get('/', async (request) => {
  const conn: Conn = await request.redis.get();
  try {
    const reply: Reply = await conn.do('PING');
    return { pong: asString(reply) };
  } finally {
    await conn.close();
  }
});
const viaApp: Promise<Conn> = app.redis.get();
const viaHelper: Promise<Conn> = getConn(app);
const code: string = new ErrNotConfigured().code;
const pool = newPool('localhost:6379', 0);
const server = await startRedisServer();
const addr: string = server.addr;
const conn: Conn = await dial(addr, { db: 1, connectTimeoutMs: 1000 });
// @ts-expect-error a Conn is not a string (an \`any\` from unresolved types would pass)
const notAString: string = await pool.get();
// @ts-expect-error the address is a string
void dial(6379);
export { viaApp, viaHelper, code, conn, notAString };
`;

/** The same consumer written as CommonJS TypeScript (require of an ES module, as Node 20.19+ allows). */
const TS_CJS = `
import redisconn = require('redisconn');
import client = require('redisconn/client');
import plugin2 from 'redisconn';
import { startRedisServer } from 'redisconn/testing';

const plugin: typeof redisconn.default = redisconn.default;
const same: typeof plugin = plugin2;
const conn: Promise<client.Conn> = client.dial('localhost:6379');
const server: ReturnType<typeof startRedisServer> = startRedisServer();
// @ts-expect-error newPool needs an address
client.newPool();
export { plugin, same, conn, server };
`;

describe('npm pack', { timeout: 30_000 }, () => {
  let tmp = '';
  let files: string[] = [];
  let pkgDir = '';
  let app = '';
  let installLog = '';
  let clone = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'redisconn-pack-'));
    clone = join(tmp, 'clone');
    copyAsFreshClone(clone);
    expect(existsSync(join(clone, 'dist')), 'the copy must start without dist/').toBe(false);

    const out = join(tmp, 'out');
    mkdirSync(out);
    // `npm pack` runs prepack (clean) and prepare (build): this is the build being tested.
    await run('npm pack', 'npm', ['pack', '--pack-destination', out, '--ignore-scripts=false', '--loglevel=warn'], clone, 35_000);
    const tgzs = readdirSync(out).filter((f) => f.endsWith('.tgz'));
    expect(tgzs).toHaveLength(1);
    const tarball = join(out, tgzs[0]!);

    const listed = await run('tar -tzf', 'tar', ['-tzf', tarball], tmp, 5_000);
    files = listed.stdout
      .split('\n')
      .filter((l) => l && !l.endsWith('/'))
      .map((l) => l.replace(/^package\//, ''))
      .sort();

    app = join(tmp, 'app');
    mkdirSync(app);
    const packed = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as PackageJson;
    writeApp(app, tarball, packed);
    const installed = await run('npm ci (offline) of the tarball', 'npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=warn'], app, 20_000);
    installLog = installed.stdout + installed.stderr;
    pkgDir = join(app, 'node_modules', 'redisconn');
  }, 60_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const read = (file: string): string => readFileSync(join(pkgDir, file), 'utf8');

  it('ships the built client and plugin with their types, LICENSE and README, and nothing else', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/testing/index.js', 'dist/src/testing/index.d.ts']) {
      expect(files, `tarball lacks ${f}`).toContain(f);
    }
    const outside = files.filter((f) => !['LICENSE', 'README.md', 'package.json'].includes(f) && !f.startsWith('dist/src/') && !f.startsWith('dist/plugin/'));
    expect(outside, 'files outside dist/src and dist/plugin (dist/examples, dist/bench, dist/test, sources, …)').toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'TypeScript sources are not shipped').toEqual([]);
    const js = files.filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(20);
    expect(js.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts'))), 'every module has its declarations').toEqual([]);
    expect(read('LICENSE')).toMatch(/Apache License/);
  });

  it("package.json's entry points exist in the tarball and engines states the require(esm) minimum", () => {
    const pkg = JSON.parse(read('package.json')) as PackageJson;
    const targets = [pkg.main, pkg.types, ...exportTargets(pkg.exports)].filter((t): t is string => typeof t === 'string');
    expect(targets).toContain('./dist/src/testing/index.js');
    expect(targets.filter((t) => !files.includes(posix.normalize(t))), 'entry points missing from the tarball').toEqual([]);
    expect(pkg.engines?.node).toBe(NODE_RANGE);
    // npm checked that range against this Node while installing: no complaint about redisconn itself.
    expect(installLog).not.toMatch(/EBADENGINE\s+package: 'redisconn@/);
  });

  it('every source map is shipped and carries the sources it maps (inlined)', () => {
    const mapped = files.filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'));
    const jsWithoutMap: string[] = [];
    const problems: string[] = [];
    for (const f of mapped) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(read(f))?.[1];
      if (url === undefined) {
        if (f.endsWith('.js')) jsWithoutMap.push(f);
        continue;
      }
      const mapFile = posix.join(posix.dirname(f), url);
      if (!files.includes(mapFile)) {
        problems.push(`${f} → ${mapFile} (not shipped)`);
        continue;
      }
      const map = JSON.parse(read(mapFile)) as { sources: string[]; sourcesContent?: (string | null)[]; sourceRoot?: string };
      map.sources.forEach((src, i) => {
        const inPackage = posix.normalize(posix.join(posix.dirname(mapFile), map.sourceRoot ?? '', src));
        const content = map.sourcesContent?.[i];
        if (typeof content === 'string') {
          // The inlined text is the source this build compiled.
          if (content !== readFileSync(join(clone, inPackage), 'utf8')) problems.push(`${mapFile}: inlined ${src} differs from ${inPackage}`);
        } else if (!files.includes(inPackage)) {
          problems.push(`${mapFile}: ${src} neither inlined nor shipped`);
        }
      });
    }
    expect(jsWithoutMap, 'JavaScript without a source map').toEqual([]);
    expect(problems, 'source maps that are missing, stale, or whose sources are neither inlined nor shipped').toEqual([]);
  });

  it('shipped modules and declarations import only shipped files, dependencies and Node built-ins', () => {
    const pkg = JSON.parse(read('package.json')) as PackageJson;
    const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), 'redisconn']);
    const builtins = new Set(builtinModules);
    const problems: string[] = [];
    for (const f of files.filter((x) => x.endsWith('.js') || x.endsWith('.d.ts'))) {
      const { relative, bare, referenceTypes, referencePaths } = specifiers(read(f));
      for (const spec of [...relative, ...referencePaths]) {
        const target = posix.normalize(posix.join(posix.dirname(f), spec));
        const candidates = f.endsWith('.d.ts') ? [target.replace(/\.js$/, '.d.ts'), target] : [target];
        if (!candidates.some((c) => files.includes(c))) problems.push(`${f}: ${spec} is not shipped`);
      }
      for (const spec of bare) {
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        if (!allowed.has(packageName(spec))) problems.push(`${f}: imports ${spec}, not a dependency`);
      }
      for (const t of referenceTypes) if (t !== 'node') problems.push(`${f}: references types ${t}`);
    }
    expect(problems, 'references to files or packages a consumer does not have').toEqual([]);
  });

  it('ESM: imports redisconn, redisconn/client and redisconn/testing; redisconn/client alone loads neither Fastify nor prom-client', async () => {
    writeFileSync(join(app, 'esm-check.mjs'), ESM_CHECK);
    const { stdout } = await run('ESM import check', process.execPath, ['esm-check.mjs'], app, 20_000);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.heavyAfterClientOnly).toEqual([]);
    expect(out.heavyAfterRoot, 'the probe sees what redisconn itself loads').toContain('prom-client');
    expect(out.resolved, 'the installed copy, not the repository').toEqual(ENTRY_FILES.map((p) => pathToFileURL(join(realpathSync(pkgDir), p)).href));
    expectExports(out);
  });

  it('CommonJS: requires redisconn, redisconn/client and redisconn/testing; redisconn/client alone loads neither Fastify nor prom-client', async () => {
    writeFileSync(join(app, 'cjs-check.cjs'), CJS_CHECK);
    const { stdout } = await run('CommonJS require check', process.execPath, ['cjs-check.cjs'], app, 20_000);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.heavyAfterClientOnly).toEqual([]);
    expect(out.heavyAfterRoot, 'the probe sees what redisconn itself loads').toContain('prom-client');
    expect(out.resolved, 'the installed copy, not the repository').toEqual(ENTRY_FILES.map((p) => join(realpathSync(pkgDir), p)));
    expect(out.esModule).toBe(true);
    expectExports(out);
  });

  it.each([
    ['ESM', 'e2e.mjs', ESM_E2E],
    ['CommonJS', 'e2e.cjs', CJS_E2E],
  ])('%s: the installed package PINGs a throwaway redis-server, directly and through a plugin route', async (_kind, file, text) => {
    writeFileSync(join(app, file), text);
    const { stdout } = await run(`${file}`, process.execPath, [file], app, 20_000);
    expect(JSON.parse(stdout)).toEqual({ pong: 'PONG', status: 200, body: { reply: 'PONG' } });
  });

  it('a strict NodeNext TypeScript app (ESM and CommonJS files) compiles against the shipped types', async () => {
    writeFileSync(join(app, 'esm.mts'), TS_ESM);
    writeFileSync(join(app, 'cjs.cts'), TS_CJS);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    // tsc reports type errors on stdout and exits non-zero: run() rejects with them.
    await run('tsc over a strict consumer', TSC, ['-p', 'tsconfig.json', '--pretty', 'false'], app, 30_000);
  });
});

function expectExports(out: Record<string, unknown>): void {
  expect(out.exports).toEqual({
    default: 'function',
    ErrNotConfigured: 'function',
    getConn: 'function',
    rootDial: 'function',
    dial: 'function',
    dialURL: 'function',
    newPool: 'function',
    Pool: 'function',
    RedisError: 'function',
    startRedisServer: 'function',
  });
  expect(out.sameDial, 'one module instance behind redisconn and redisconn/client').toBe(true);
  expect(out.clientHasNoPlugin).toBe(true);
  expect(out.err).toEqual({ code: 'FST_REDIS_NOT_CONFIGURED', statusCode: 503, message: 'Redis connection pool is not configured', isError: true });
}
