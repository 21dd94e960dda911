// Per-user Firestore listeners, end to end: Google's Firestore emulator, Redis, and
// --gateways gateway processes (the built CLI) sharing the fleet; --users clients (one
// user each, spread over the gateways) in a child process. Documents are written at a
// fixed rate (--rate per second for --duration seconds) to random users' notifications;
// each change is timed by the client that receives it, from the document's commit (its
// `update_time`, Firestore's clock) and from the moment the writer sent the request, and
// compared with what the gateways' own histograms (livebus_delivery_seconds) report.
// Also prints the gateways' RSS per attached listener.
//
//   pnpm bench:listeners [--users 1000] [--gateways 2] [--rate 20] [--duration 30]
//
// Needs a build (`pnpm build`), redis-server, java and the Debian package
// google-cloud-cli-firestore-emulator (or FIRESTORE_EMULATOR_JAR).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { freePort, now, rssBytes, sleep, startFirestoreEmulator, startRedis, summarize } from './lib/common.mjs';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000' },
    gateways: { type: 'string', default: '2' },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '30' },
    role: { type: 'string' },
    urls: { type: 'string' },
  },
});
const users = Number(values.users);

/** RFC 3339 with microseconds (the listeners' update_time) in ms since the epoch, sub-ms kept. */
const rfc3339Ms = (t) => Date.parse(`${t.slice(0, 23)}Z`) + Number(t.slice(23, 26) || 0) / 1000;

if (values.role === 'clients') {
  const urls = values.urls.split(',');
  const sockets = [];
  await Promise.all(
    Array.from(
      { length: users },
      (_, i) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(urls[i % urls.length]);
          sockets.push(ws);
          ws.on('error', reject);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: `lb-${i}` })));
          ws.on('message', (raw) => {
            const at = now();
            const frame = JSON.parse(raw.toString());
            if (frame.type === 'welcome') resolve();
            const change = frame.type === 'event' && frame.event === 'listener.change' ? frame.data : undefined;
            if (!change || change.initial || !change.data?.sent_at) return;
            process.send({
              commit: at - rfc3339Ms(change.update_time),
              sent: at - change.data.sent_at,
            });
          });
        }),
    ),
  );
  process.send({ ready: true });
  await new Promise(() => {});
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'apps', 'gateway', 'dist', 'main.js');
const ADMIN = 'bench-admin-token-0123456789';
const project = 'livebus-bench';
const children = [];
const stopAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('exit', stopAll);

async function startGateway(i, env) {
  const port = await freePort();
  const proc = spawn(process.execPath, [cli], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', INSTANCE_ID: `bench-${i}` },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(proc);
  const http = `http://127.0.0.1:${port}`;
  for (let n = 0; ; n++) {
    if (n > 300) throw new Error(`gateway ${i} did not start`);
    if ((await fetch(`${http}/healthz`).catch(() => undefined))?.ok) break;
    await sleep(100);
  }
  return { proc, http, ws: `ws://127.0.0.1:${port}/ws` };
}

const json = async (url) => (await fetch(url, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
const text = async (url) => (await fetch(url, { headers: { authorization: `Bearer ${ADMIN}` } })).text();

/** Cumulative bucket counts of one histogram series over every gateway's /metrics: [[le, count], ...]. */
async function histogram(gateways, name, labels) {
  const sums = new Map();
  for (const g of gateways) {
    for (const m of (await text(`${g.http}/metrics`)).matchAll(
      new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'),
    )) {
      if (!labels.every((l) => m[1].includes(l))) continue;
      const le = /le="([^"]+)"/.exec(m[1])[1];
      sums.set(le, (sums.get(le) ?? 0) + Number(m[2]));
    }
  }
  return [...sums].map(([le, n]) => [le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le) * 1000, n]);
}

/** p-quantile (ms) of cumulative buckets, linear within a bucket (histogram_quantile). */
function quantile(buckets, p) {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = p * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of buckets) {
    if (n >= rank)
      return le === Number.POSITIVE_INFINITY ? lower : lower + ((le - lower) * (rank - below)) / (n - below || 1);
    lower = le;
    below = n;
  }
  return lower;
}

const emulator = await startFirestoreEmulator();
children.push(emulator.proc);
const emulatorHost = emulator.host;
const redis = await startRedis();
children.push(redis.proc);
const dir = mkdtempSync(join(tmpdir(), 'livebus-bench-'));
const listenersFile = join(dir, 'listeners.json');
writeFileSync(
  listenersFile,
  JSON.stringify({ user: [{ name: 'notifications', collection: 'users/{uid}/notifications' }] }),
);
const env = {
  PATH: process.env.PATH ?? '',
  REDIS_URL: redis.url,
  LISTENERS_FILE: listenersFile,
  FIRESTORE_EMULATOR_HOST: emulatorHost,
  FIREBASE_PROJECT_ID: project,
  METADATA_SERVER_DETECTION: 'none',
  ADMIN_TOKEN: ADMIN,
  RATE_LIMIT_FRAMES_PER_S: '0',
  ADMISSION_MAX_HANDSHAKES: '0',
  ADMISSION_MAX_LAG_MS: '0',
  LOG_LEVEL: 'error',
};
const gateways = await Promise.all(Array.from({ length: Number(values.gateways) }, (_, i) => startGateway(i, env)));

const docUrl = (path) => `http://${emulatorHost}/v1/projects/${project}/databases/(default)/documents/${path}`;
const write = (path) =>
  fetch(docUrl(path), {
    method: 'PATCH',
    headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
    body: JSON.stringify({ fields: { sent_at: { doubleValue: now() } } }),
  }).then((r) => r.ok);

// Warm the emulator (JVM) before measuring.
await write('users/warm/notifications/w');
const rssBefore = gateways.map((g) => rssBytes(g.proc.pid));

const clients = fork(fileURLToPath(import.meta.url), [
  '--role',
  'clients',
  '--users',
  String(users),
  '--urls',
  gateways.map((g) => g.ws).join(','),
]);
children.push(clients);
const seen = { commit: [], sent: [] };
const ready = new Promise((resolve) =>
  clients.on('message', (m) => {
    if (m.ready) resolve();
    if (m.commit !== undefined) {
      seen.commit.push(m.commit);
      seen.sent.push(m.sent);
    }
  }),
);
const t0 = Date.now();
await ready;
const attached = async () => {
  let n = 0;
  for (const g of gateways) n += (await json(`${g.http}/healthz`)).listeners_count;
  return n;
};
for (let i = 0; (await attached()) < users; i++) {
  if (i > 1200) throw new Error(`only ${await attached()} of ${users} listener sets attached`);
  await sleep(100);
}
const attachAllMs = Date.now() - t0;
await sleep(3_000); // the first snapshots (initial, not measured) settle
const rssAfter = gateways.map((g) => rssBytes(g.proc.pid));

const rate = Number(values.rate);
const writes = Math.round(rate * Number(values.duration));
const start = now();
const results = [];
for (let i = 0; i < writes; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - now();
  if (wait > 0) await sleep(wait);
  results.push(write(`users/lb-${Math.floor(Math.random() * users)}/notifications/n${i}`).catch(() => false));
}
const written = (await Promise.all(results)).filter(Boolean).length;
for (let i = 0; seen.commit.length < written && i < 300; i++) await sleep(100);
await sleep(2_500); // a heartbeat and a scrape see the last deliveries

const client = { commit: summarize(seen.commit), sent: summarize(seen.sent) };
const gw = await histogram(gateways, 'livebus_delivery_seconds', ['source="firestore"']);
const upd = await histogram(gateways, 'livebus_firestore_snapshot_delay_seconds', [
  'source="firestore"',
  'since="update_time"',
]);
const read = await histogram(gateways, 'livebus_firestore_snapshot_delay_seconds', [
  'source="firestore"',
  'since="read_time"',
]);
const skew = (
  await Promise.all(
    gateways.map(async (g) => (await json(`${g.http}/ws-metrics`)).metrics.delivery.clock.skew.firestore),
  )
).reduce((a, b) => a + b, 0);
const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : 'n/a');
const row = (what, n, p50, p99, max) =>
  `| ${what} | ${n} | ${r1(p50)} | ${r1(p99)} | ${max === undefined ? '' : r1(max)} |`;
const rssPerListenerKb = (rssAfter.reduce((a, b) => a + b, 0) - rssBefore.reduce((a, b) => a + b, 0)) / users / 1024;

console.log(
  [
    `users ${users}, gateways ${gateways.length} (Redis), listener sets attached in ${attachAllMs} ms, RSS ${r1(rssPerListenerKb)} KB per attached user (gateways together; ${rssBefore.map((b) => r1(b / 2 ** 20)).join(' and ')} MB each before any user)`,
    `writes ${written} of ${writes} at ${rate}/s, changes received ${seen.commit.length}, gateway clock skew count (firestore) ${skew}`,
    '',
    '| measured | n | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|',
    row(
      'client: commit (update_time) → receive',
      client.commit.n,
      client.commit.p50,
      client.commit.p99,
      client.commit.max,
    ),
    row('client: write request sent → receive', client.sent.n, client.sent.p50, client.sent.p99, client.sent.max),
    row(
      'gateways: livebus_delivery_seconds{source="firestore"}',
      gw.at(-1)?.[1] ?? 0,
      quantile(gw, 0.5),
      quantile(gw, 0.99),
    ),
    row('gateways: snapshot delay since update_time', upd.at(-1)?.[1] ?? 0, quantile(upd, 0.5), quantile(upd, 0.99)),
    row('gateways: snapshot delay since read_time', read.at(-1)?.[1] ?? 0, quantile(read, 0.5), quantile(read, 0.99)),
  ].join('\n'),
);
stopAll();
process.exit(0);
