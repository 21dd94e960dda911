// Per-user Firestore listeners one instance holds, against Google's Firestore emulator:
// the gateway runs in this process with a LISTENERS_FILE of one per-user collection,
// --users clients (one user each) in a child process. Prints the RSS and heap per
// attached user (one Firestore listener each) and the write -> listener.change latency
// of --writes writes to random users (the writer stamps `sent_at`, the client compares).
//
//   node bench/listeners.mjs [--users 1000] [--writes 200]
//
// Needs the Debian package google-cloud-cli-firestore-emulator (or FIRESTORE_EMULATOR_JAR).
import { fork, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000' },
    writes: { type: 'string', default: '200' },
    role: { type: 'string' },
    url: { type: 'string' },
  },
});
const users = Number(values.users);
const writes = Number(values.writes);

if (values.role === 'clients') {
  const latencies = [];
  await Promise.all(
    Array.from(
      { length: users },
      (_, i) =>
        new Promise((resolve) => {
          const ws = new WebSocket(values.url);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: `lb-${i}` })));
          ws.on('message', (raw) => {
            const frame = JSON.parse(raw.toString());
            if (frame.type === 'welcome') resolve();
            if (frame.type === 'event' && frame.event === 'listener.change' && frame.data.data?.sent_at) {
              latencies.push(Date.now() - frame.data.data.sent_at);
              process.send({ latency: Date.now() - frame.data.data.sent_at });
            }
          });
        }),
    ),
  );
  process.send({ ready: true });
  await new Promise(() => {});
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const jar =
  process.env.FIRESTORE_EMULATOR_JAR ??
  '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';
const emuPort = await freePort();
const host = `127.0.0.1:${emuPort}`;
const emulator = spawn(
  'java',
  ['-cp', jar, 'com.google.cloud.datastore.emulator.firestore.CloudFirestore', '--host=127.0.0.1', `--port=${emuPort}`],
  { stdio: 'ignore' },
);
for (let i = 0; ; i++) {
  if (i > 300) throw new Error('the emulator did not start');
  try {
    if ((await (await fetch(`http://${host}/`)).text()).trim() === 'Ok') break;
  } catch {}
  await sleep(200);
}
process.env.FIRESTORE_EMULATOR_HOST = host;
process.env.METADATA_SERVER_DETECTION = 'none';
const project = 'livebus-bench';
const docUrl = (path) => `http://${host}/v1/projects/${project}/databases/(default)/documents/${path}`;
const write = (path, sentAt) =>
  fetch(docUrl(path), {
    method: 'PATCH',
    headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
    body: JSON.stringify({ fields: { sent_at: { integerValue: String(sentAt) } } }),
  });

const { composePorts, createGateway, createLogger, defaultConfig } = await import('@livebus/gateway');
const config = defaultConfig({
  port: 0,
  host: '127.0.0.1',
  instanceId: 'bench',
  rateLimitFramesPerS: 0,
  listeners: { user: [{ name: 'notifications', collection: 'users/{uid}/notifications' }] },
  firestoreProjectId: project,
});
const logger = createLogger({ level: 'error', format: 'json', instanceId: 'bench' });
const gateway = createGateway(config, { ...(await composePorts(config, logger)), logger });
const { port } = await gateway.listen();

// Warm the emulator and the Firestore client (module loading, JVM) before measuring.
await write('users/warm/notifications/w', 0);
global.gc?.();
const before = { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed };

const child = fork(fileURLToPath(import.meta.url), [
  '--role',
  'clients',
  '--users',
  String(users),
  '--url',
  `ws://127.0.0.1:${port}/ws`,
]);
const latencies = [];
const ready = new Promise((resolve) =>
  child.on('message', (m) => {
    if (m.ready) resolve();
    if (m.latency !== undefined) latencies.push(m.latency);
  }),
);
const t0 = Date.now();
await ready;
for (let i = 0; gateway.stats().listeners < users; i++) {
  if (i > 600) throw new Error(`only ${gateway.stats().listeners} of ${users} attached`);
  await sleep(100);
}
const attachMs = Date.now() - t0;
await sleep(2_000); // initial snapshots settle
global.gc?.();
const after = { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed };

for (let i = 0; i < writes; i++) {
  await write(`users/lb-${Math.floor(Math.random() * users)}/notifications/n${i}`, Date.now());
  await sleep(10);
}
for (let i = 0; latencies.length < writes && i < 100; i++) await sleep(100);
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(
  JSON.stringify(
    {
      users,
      listeners_attached: gateway.stats().listeners,
      attach_all_ms: attachMs,
      rss_per_listener_kb: Math.round((after.rss - before.rss) / users / 102.4) / 10,
      heap_per_listener_kb: Math.round((after.heap - before.heap) / users / 102.4) / 10,
      writes,
      delivered: latencies.length,
      latency_ms: { p50: q(0.5), p99: q(0.99), max: latencies.at(-1) },
    },
    null,
    2,
  ),
);
child.kill();
await gateway.shutdown('bench');
emulator.kill('SIGKILL');
process.exit(0);
