#!/usr/bin/env node
// Makes sure `redis-server` (and `redis-benchmark`, same Debian package) is on PATH.
// On a fresh Debian machine running as root it installs Debian's `redis-server`
// package; anywhere else it stops with a one-line instruction. Used by `npm test`,
// `npm start`, `npm run bench` and CI, so a clean clone needs nothing but Node.
import { execFileSync, spawnSync } from 'node:child_process';

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

if (onPath('redis-server')) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  console.error('redisconn: redis-server not found on PATH; install it (Debian/Ubuntu: sudo apt-get install -y redis-server) and retry.');
  process.exit(1);
}

const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const aptInstall = () =>
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: 'inherit', env }).status === 0;

console.error('redisconn: redis-server not found; installing Debian package redis-server');
if (!aptInstall()) {
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  if (!aptInstall()) {
    console.error('redisconn: apt-get could not install redis-server; install it by hand and retry.');
    process.exit(1);
  }
}
// Debian's package may start a system-wide server on 6379; our harness never uses it.
if (!onPath('redis-server')) {
  console.error('redisconn: redis-server installed but still not on PATH (expected /usr/bin/redis-server).');
  process.exit(1);
}
