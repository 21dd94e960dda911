// Where the JS heap of idle sessions goes: two heap snapshots of the livebus
// gateway (JWT mode, Redis, as in bench/run.mjs), before and after N idle
// sessions of the real client, compared by constructor / object kind.
//
//   node bench/heap-profile.mjs [--clients 5000] [--top 40] [--keep] [--listeners]
//
// --listeners: the gateway also runs a per-user Firestore listener (one collection,
// `users/{uid}/notifications`, empty) against Google's emulator, and the after snapshot is
// taken once every session's listener is open (`livebus_listener_queries_open`): what a user
// whose listeners are attached costs.
//
// Prints, per kind, objects and bytes added per session (self sizes; strings,
// closures, arrays, code and system objects are kinds of their own). --keep
// leaves the two .heapsnapshot files (for Chrome DevTools) and prints their paths.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, gatewayEnv, get, rssBytes, sleep, startFirestoreEmulator, startRedis } from './lib/common.mjs';

const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string', default: '5000' },
    top: { type: 'string', default: '40' },
    keep: { type: 'boolean', default: false },
    listeners: { type: 'boolean', default: false },
  },
});
const clients = Number(opt.clients);
const here = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const ADMIN = 'bench-admin-token-0123456789';
const dir = mkdtempSync(path.join(os.tmpdir(), 'livebus-heap-'));

const redis = await startRedis();
const port = await freePort();
const main = process.env.GATEWAY_MAIN ?? path.join(here, '..', 'apps/gateway/dist/main.js');
const emulator = opt.listeners ? await startFirestoreEmulator() : undefined;
let listenerEnv = {};
if (emulator) {
  const file = path.join(dir, 'listeners.json');
  writeFileSync(file, JSON.stringify({ user: [{ name: 'notifications', collection: 'users/{uid}/notifications' }] }));
  listenerEnv = {
    LISTENERS_FILE: file,
    FIRESTORE_EMULATOR_HOST: emulator.host,
    FIREBASE_PROJECT_ID: 'livebus-bench',
    METADATA_SERVER_DETECTION: 'none',
    ADMIN_TOKEN: ADMIN,
  };
}
const gateway = spawn(process.execPath, ['--heapsnapshot-signal=SIGUSR2', main], {
  cwd: dir,
  env: gatewayEnv(port, redis.url, SECRET, listenerEnv),
  stdio: ['ignore', 'ignore', 'inherit'],
});
// Whatever ends this script (a step that throws too) stops what it started.
process.on('exit', () => {
  gateway.kill('SIGKILL');
  emulator?.proc.kill('SIGKILL');
  redis.stop();
});
const base = `http://127.0.0.1:${port}`;
while ((await get(`${base}/health/readiness`, 500)).status !== 200) await sleep(20);

async function snapshot() {
  const known = new Set(readdirSync(dir));
  gateway.kill('SIGUSR2');
  for (;;) {
    await sleep(200);
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !known.has(f));
    if (!file) continue;
    const full = path.join(dir, file);
    // Written in place: wait until it parses.
    try {
      return { file: full, summary: summarize(JSON.parse(readFileSync(full, 'utf8'))) };
    } catch {}
  }
}

/** Self size and count per kind: `type:name` for objects (the constructor), the type for the rest. */
function summarize(snap) {
  const { node_fields: fields, node_types: types } = snap.snapshot.meta;
  const nodeTypes = types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const byKind = new Map();
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = nodeTypes[nodes[i + iType]];
    const name = strings[nodes[i + iName]];
    const kind =
      type === 'object' || type === 'closure' || type === 'native'
        ? `${type}:${name.slice(0, 60)}`
        : type === 'hidden' || type === 'object shape'
          ? `${type}:${name.slice(0, 40)}`
          : type;
    const k = byKind.get(kind) ?? { count: 0, size: 0 };
    k.count++;
    k.size += nodes[i + iSize];
    byKind.set(kind, k);
  }
  return byKind;
}

const load = fork(
  path.join(here, 'lib', 'load.mjs'),
  ['--target', 'livebus', '--url', base, '--secret', SECRET, '--users', String(clients)],
  {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  },
);
const reply = (cmd) => new Promise((r) => load.on('message', (m) => m.cmd === cmd && r(m)));
await sleep(1_000);
// RSS read after the first snapshot: taking one leaves memory behind, which is not the sessions'.
const before = await snapshot();
const rss0 = rssBytes(gateway.pid);
const connected = reply('connected');
load.send({ cmd: 'connect', from: 0, to: clients });
await connected;
if (emulator) {
  // Every session's listener open (the first snapshot of each is in).
  const metrics = async () =>
    (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const open = async () =>
    Number(/^livebus_listener_queries_open(?:\{[^}]*\})? (\S+)$/m.exec(await metrics())?.[1] ?? 0);
  for (let i = 0; (await open()) < clients; i++) {
    if (i > 600) throw new Error('the listeners did not all open within 60 s');
    await sleep(100);
  }
}
await sleep(2_000);
const rss1 = rssBytes(gateway.pid);
const after = await snapshot();

const rows = [];
for (const [kind, a] of after.summary) {
  const b = before.summary.get(kind) ?? { count: 0, size: 0 };
  if (a.size !== b.size) rows.push({ kind, count: (a.count - b.count) / clients, bytes: (a.size - b.size) / clients });
}
rows.sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log(
  `${clients} idle sessions${emulator ? ', each with its listener open' : ''}: RSS ${((rss1 - rss0) / clients / 1024).toFixed(1)} KB per session (${(rss0 / 2 ** 20).toFixed(1)} MB before the first, after a heap snapshot)`,
);
console.log(`heap snapshot: ${total.toFixed(0)} B per session (self sizes)`);
console.log('| kind | objects per session | bytes per session |');
console.log('| --- | ---: | ---: |');
for (const r of rows.slice(0, Number(opt.top)))
  console.log(`| ${r.kind} | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
if (opt.keep) console.log(`snapshots: ${before.file} ${after.file}`);

load.kill('SIGKILL');
gateway.kill('SIGKILL');
emulator?.proc.kill('SIGKILL');
redis.stop();
if (!opt.keep) rmSync(dir, { recursive: true, force: true });
process.exit(0);
