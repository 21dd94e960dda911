// Company listeners in a fleet, against Google's Firestore emulator and a real redis-server:
// two gateways (in this process, one Redis), --companies companies of --members members each,
// the members' sessions spread over both gateways (clients in a child process). A writer
// changes one document of a random company at a fixed --rate (changes/s) for --seconds.
// Prints the Firestore listeners in the fleet (one per company, against one per member
// without company listeners), the write -> listener.change latency over every delivery
// (p50/p99/max), and the Redis CPU per change (INFO cpu, less an idle period as long).
//
//   node bench/company-listeners.mjs [--companies 20] [--members 50] [--rate 20] [--seconds 15]
//
// Needs redis-server and the Firestore emulator (google-cloud-cli-firestore-emulator, or FIRESTORE_EMULATOR_JAR).
import { fork, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { startFirestoreEmulator } from './lib/common.mjs';

const { values } = parseArgs({
  options: {
    companies: { type: 'string', default: '20' },
    members: { type: 'string', default: '50' },
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '15' },
    role: { type: 'string' },
    urls: { type: 'string' },
  },
});
const companies = Number(values.companies);
const members = Number(values.members);
const users = companies * members;
const uidOf = (c, m) => `co${c}-m${m}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (values.role === 'clients') {
  // Each member: hello, then point its registry at its company; report every delivery's latency.
  const urls = values.urls.split(',');
  let batch = [];
  const flush = () => {
    if (batch.length) process.send({ latencies: batch });
    batch = [];
  };
  setInterval(flush, 200).unref();
  let followed = 0;
  let initial = 0;
  const open = (c, m, i) =>
    new Promise((resolve) => {
      const uid = uidOf(c, m);
      const ws = new WebSocket(urls[i % urls.length]);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: uid })));
      ws.on('message', (raw) => {
        const frame = JSON.parse(raw.toString());
        if (frame.type === 'welcome') {
          const args = [uid, { companies: { current_company_id: `co${c}` } }];
          ws.send(JSON.stringify({ type: 'rpc', id: 1, method: 'UNIFIED_REGISTRY.update_user_registry', args }));
        }
        if (frame.type === 'rpc_result' && frame.id === 1) {
          followed++;
          resolve();
        }
        if (frame.type === 'rpc_error') throw new Error(JSON.stringify(frame));
        if (frame.type === 'event' && frame.event === 'listener.change') {
          if (frame.data.initial) initial++;
          const sentAt = frame.data.data?.sent_at;
          if (sentAt) batch.push(Date.now() - sentAt);
        }
      });
    });
  let i = 0;
  const all = [];
  for (let c = 0; c < companies; c++) for (let m = 0; m < members; m++) all.push([c, m, i++]);
  for (let k = 0; k < all.length; k += 50) await Promise.all(all.slice(k, k + 50).map(([c, m, j]) => open(c, m, j)));
  process.send({ ready: followed });
  process.on('message', (m) => {
    if (m === 'initial') process.send({ initial });
  });
  await new Promise(() => {});
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// Redis and the emulator.
const redisPort = await freePort();
const redisServer = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {
  stdio: 'ignore',
});
const { host, proc: emulator } = await startFirestoreEmulator();
process.env.FIRESTORE_EMULATOR_HOST = host;
process.env.METADATA_SERVER_DETECTION = 'none';
const project = 'livebus-bench-company';
const docUrl = (path) => `http://${host}/v1/projects/${project}/databases/(default)/documents/${path}`;
const write = (path, fields) =>
  fetch(docUrl(path), {
    method: 'PATCH',
    headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
    body: JSON.stringify({ fields }),
  }).then((r) => {
    if (!r.ok) throw new Error(`write ${path}: ${r.status}`);
  });

// Membership documents, and one job per company already there (everyone's initial state).
const writes = [];
for (let c = 0; c < companies; c++) {
  writes.push(() => write(`companies/co${c}/jobs/first`, { n: { integerValue: '0' } }));
  for (let m = 0; m < members; m++) {
    writes.push(() => write(`companies/co${c}/members/${uidOf(c, m)}`, { role: { stringValue: 'member' } }));
  }
}
for (let k = 0; k < writes.length; k += 50) await Promise.all(writes.slice(k, k + 50).map((w) => w()));

const { Redis } = await import('ioredis');
const redis = new Redis(redisPort);
const { composePorts, createGateway, createLogger, defaultConfig } = await import('@livebus/gateway');
const gateways = [];
for (const id of ['bench-co-a', 'bench-co-b']) {
  const config = defaultConfig({
    port: 0,
    host: '127.0.0.1',
    instanceId: id,
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    rateLimitFramesPerS: 0,
    unifiedRegistryEnabled: true,
    maxSessionsPerUser: 10,
    listeners: {
      user: [],
      company: {
        listeners: [{ name: 'jobs', collection: 'companies/{company_id}/jobs' }],
        membership: { document: 'companies/{company_id}/members/{uid}' },
        followers_poll_ms: 1000,
        metrics_top: 5,
      },
    },
    firestoreProjectId: project,
  });
  const logger = createLogger({ level: 'error', format: 'json', instanceId: id });
  const gateway = createGateway(config, { ...(await composePorts(config, logger)), logger });
  const { port } = await gateway.listen();
  gateways.push({ gateway, port });
}

const child = fork(fileURLToPath(import.meta.url), [
  '--role',
  'clients',
  '--companies',
  String(companies),
  '--members',
  String(members),
  '--urls',
  gateways.map((g) => `ws://127.0.0.1:${g.port}/ws`).join(','),
]);
const latencies = [];
let initialEvents = 0;
const ready = new Promise((resolve) =>
  child.on('message', (m) => {
    if (m.ready !== undefined) resolve(m.ready);
    if (m.latencies) latencies.push(...m.latencies);
    if (m.initial !== undefined) initialEvents = m.initial;
  }),
);
const t0 = Date.now();
const followed = await ready;
const followMs = Date.now() - t0;
await sleep(3_000); // initial states sent (followers_poll_ms), leases settled

const metric = async (name) => {
  let sum = 0;
  for (const { port } of gateways) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    sum += line ? Number(line.split(' ')[1]) : 0;
  }
  return sum;
};
const redisCpu = async () => {
  const info = await redis.info('cpu');
  const num = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return num('used_cpu_user') + num('used_cpu_sys');
};
const scriptCalls = async () => {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) calls += Number(m[2]);
  return calls;
};

const seconds = Number(values.seconds);
const rate = Number(values.rate);
// Idle baseline: the fleet's own Redis work (heartbeats, presence, lease renewals, follower polls).
const idle0 = await redisCpu();
const idleCalls0 = await scriptCalls();
await sleep(seconds * 1000);
const idleCpu = (await redisCpu()) - idle0;
const idleCalls = (await scriptCalls()) - idleCalls0;

const busy0 = await redisCpu();
const calls0 = await scriptCalls();
const fanout0 = await metric('livebus_company_fanout_calls_total');
let changes = 0;
const start = Date.now();
while (Date.now() - start < seconds * 1000) {
  const due = start + (changes * 1000) / rate;
  if (due > Date.now()) await sleep(due - Date.now());
  const c = Math.floor(Math.random() * companies);
  void write(`companies/co${c}/jobs/j${changes}`, { sent_at: { integerValue: String(Date.now()) } });
  changes++;
}
const expected = changes * members;
for (let i = 0; latencies.length < expected && i < 100; i++) await sleep(100);
const busyCpu = (await redisCpu()) - busy0;
const busyCalls = (await scriptCalls()) - calls0;
const fanoutCalls = (await metric('livebus_company_fanout_calls_total')) - fanout0;
child.send('initial');
await sleep(300);

latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(
  JSON.stringify(
    {
      companies,
      members_per_company: members,
      sessions: followed,
      follow_all_ms: followMs,
      company_listeners_in_fleet: await metric('livebus_company_listeners'),
      firestore_queries_open_in_fleet: await metric('livebus_company_queries_open'),
      firestore_listeners_without_company_listeners: users,
      initial_events_received: initialEvents,
      changes,
      rate_per_s: rate,
      deliveries_expected: expected,
      deliveries: latencies.length,
      latency_ms: { p50: q(0.5), p99: q(0.99), max: latencies.at(-1) },
      redis_cpu_ms_per_change: Math.round(((busyCpu - idleCpu) * 1e6) / changes) / 1000,
      redis_script_calls_per_change: Math.round(((busyCalls - idleCalls) / changes) * 100) / 100,
      fanout_calls_per_change: Math.round((fanoutCalls / changes) * 100) / 100,
      reads_saved: await metric('livebus_company_reads_saved_total'),
    },
    null,
    2,
  ),
);
child.kill();
await Promise.all(gateways.map(({ gateway }) => gateway.shutdown('bench')));
redis.disconnect();
emulator.kill('SIGKILL');
redisServer.kill('SIGKILL');
process.exit(0);
