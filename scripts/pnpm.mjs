#!/usr/bin/env node
// The README's two commands (`npm start`, `npm test`) must work on a machine
// that has only Node 20 and npm. This script finds pnpm (or fetches the pinned
// version through npx, never through corepack), installs the workspace, builds
// it, and then starts the gateway or runs every check.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // "pnpm@10.x.y"
const pinnedVersion = pinned.split('@')[1];

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

function has(cmd, args) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim().startsWith('10.')) return ['pnpm', []];
  return ['npx', ['--yes', `pnpm@${pinnedVersion}`]];
}

// npm exports its own config to scripts as npm_config_* variables; pnpm would
// read some of them as its own (e.g. a global prefix), so hand it a clean env.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));

const [pnpm, pre] = pnpmCommand();
const pn = (...args) => run(pnpm, [...pre, ...args], { env });

/**
 * Starts the built gateway and stays its parent until it exits: a stop sent to `npm start` (a
 * supervisor's SIGTERM, Ctrl-C, a closed terminal) reaches the gateway, which shuts down and frees
 * its port, and the gateway's exit ends this script with its code (128 + its signal if killed).
 * SIGHUP is passed on as SIGTERM: the gateway has no SIGHUP handler and would die without its shutdown.
 */
function startGateway() {
  // Only this start listens on loopback by default (AUTH_MODE=none lets anyone who reaches it in);
  // the image's `node dist/main.js` keeps the gateway's 0.0.0.0.
  const gwEnv = { HOST: '127.0.0.1', ...env };
  const gw = spawn(process.execPath, [join(root, 'apps/gateway/dist/main.js')], { stdio: 'inherit', env: gwEnv });
  const forward = { SIGINT: 'SIGINT', SIGTERM: 'SIGTERM', SIGHUP: 'SIGTERM' };
  for (const [signal, as] of Object.entries(forward)) process.on(signal, () => gw.kill(as));
  gw.on('error', (error) => {
    throw error;
  });
  gw.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
  // npm passes a SIGTERM to its `sh -c`, which dies of it without passing it on: orphaned (another
  // parent), this script stops the gateway itself.
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(orphaned);
    gw.kill('SIGTERM');
  }, 200);
  orphaned.unref();
}

const [, , mode, what, ...flags] = process.argv;
const noBuild = what === 'start' && flags.length === 1 && flags[0] === '--no-build';
if (mode !== 'bootstrap' || !['start', 'test'].includes(what) || (flags.length > 0 && !noBuild)) {
  console.error('usage: node scripts/pnpm.mjs bootstrap start [--no-build] | bootstrap test');
  process.exit(2);
}

/** Runs pnpm with `args`; exits with its code on a failure. */
function step(...args) {
  const code = pn(...args);
  if (code !== 0) process.exit(code);
}

const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
if (what === 'test') {
  step('install', ...frozen);
  runChecks();
} else if (noBuild) {
  // The workspace is built already (apps/gateway/test/npm-start.int.test.ts): only the start.
  startGateway();
} else {
  console.log('building the gateway and the client (about a minute the first time)');
  step('install', ...frozen);
  step(
    'exec',
    'turbo',
    'run',
    'build',
    '--filter=@livebus/gateway...',
    '--filter=@livebus/bus-consumer...',
    '--output-logs=errors-only',
  );
  startGateway();
}

/** Every check, after naming the services the integration tests need and cannot find. */
function runChecks() {
  // The integration tests start real services themselves; say up front what is missing.
  const FIRESTORE_JAR =
    process.env.FIRESTORE_EMULATOR_JAR ??
    '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';
  const missing = [
    !has(process.env.REDIS_SERVER_BIN ?? 'redis-server', ['--version']) &&
      'redis-server (Debian package redis-server, or set REDIS_SERVER_BIN)',
    !existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium') &&
      'Chromium (Debian package chromium, or set CHROMIUM_PATH)',
    !(has('java', ['-version']) && existsSync(FIRESTORE_JAR)) &&
      'the Firestore emulator (java and the package google-cloud-cli-firestore-emulator, or set FIRESTORE_EMULATOR_JAR)',
  ].filter(Boolean);
  if (missing.length > 0) {
    console.error(`npm test needs, and could not find:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    console.error('.ci/run installs redis-server and chromium on Debian when they are missing.');
    process.exit(1);
  }

  // Every check: lint, types, unit and integration tests, across the workspace. The packages' tests
  // run side by side (every service a test starts is on a free port, so they share nothing), and
  // each package's jest runs its files on a few workers; the leak check (test:leaks: a few files
  // per package with --detectOpenHandles, which forces a run in band) is a task of its own. The
  // tests mostly wait on timers and sockets, so three tasks at once keep 2 cores busy, not
  // overloaded.
  const code = pn(
    'exec',
    'turbo',
    'run',
    'lint:root',
    'lint',
    'typecheck',
    'test',
    'test:leaks',
    '--concurrency=3',
    '--output-logs=new-only',
  );
  process.exit(code);
}
