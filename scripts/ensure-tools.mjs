#!/usr/bin/env node
// Makes sure the tools the project runs are on PATH, so a clean clone needs
// nothing but Node: `redis-server` (with `redis-benchmark`, same Debian
// package) always, and with `--promtool` also Prometheus's `promtool` (used by
// one metrics test; best effort: that test says so and skips without it).
// As root with apt-get it installs Debian's packages (running `apt-get update`
// when a package is not found); anywhere else it stops with a one-line
// instruction. Used by `npm test`, `npm start`, `npm run bench` and CI.
import { spawnSync } from 'node:child_process';

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const canInstall = isRoot && onPath('apt-get');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
let updated = false;

function aptInstall(pkg) {
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: ['ignore', 'inherit', 'inherit'], env }).status === 0;
  if (install()) return true;
  if (updated) return false;
  updated = true;
  spawnSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  return install();
}

/** Ensures `cmd` (from Debian package `pkg`); returns false when it could not. */
function ensure(cmd, pkg, required) {
  if (onPath(cmd)) return true;
  const how = `install it (Debian/Ubuntu: sudo apt-get install -y ${pkg}) and retry`;
  if (!canInstall) {
    console.error(`redisconn: ${cmd} not found on PATH; ${how}.`);
    return !required;
  }
  console.error(`redisconn: ${cmd} not found; installing Debian package ${pkg}`);
  if (aptInstall(pkg) && onPath(cmd)) return true;
  console.error(`redisconn: could not install ${pkg}; ${how}.`);
  return !required;
}

let ok = ensure('redis-server', 'redis-server', true);
if (process.argv.includes('--promtool')) ok = ensure('promtool', 'prometheus', false) && ok;
process.exit(ok ? 0 : 1);
