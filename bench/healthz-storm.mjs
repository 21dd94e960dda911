// /healthz latency while clients reconnect in a storm and their detaches and
// registry cleanups run. Three processes, so no side measures under the other's
// load: the gateway (the built CLI), the storm of clients, and this poller.
//
//   pnpm --filter @livebus/bench healthz-storm [-- --clients 2000 --rounds 3]
//
// Prints p50 / p99 / max of /healthz while the storm runs, and what the gateway did.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'detach-delay': { type: 'string', default: '200' },
    role: { type: 'string' },
    url: { type: 'string' },
  },
});
const clients = Number(values.clients);
const rounds = Number(values.rounds);

if (values.role === 'storm') {
  // Child: open `clients` sessions, then drop and reopen them all, `rounds` times.
  const { WebSocket } = await import('ws');
  const open = (uid) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(values.url);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: uid })));
      ws.on('message', () => resolve(ws));
      ws.on('error', reject);
    });
  const uids = Array.from({ length: clients }, (_, i) => `storm-${i}`);
  let sockets = await Promise.all(uids.map(open));
  process.send?.({ ready: true });
  for (let r = 0; r < rounds; r++) {
    for (const ws of sockets) ws.terminate();
    // Half come back within the detach delay (cancelled), half after it (executed).
    await new Promise((res) => setTimeout(res, r % 2 === 0 ? 20 : Number(values['detach-delay']) * 2));
    sockets = await Promise.all(uids.map(open));
  }
  for (const ws of sockets) ws.terminate();
  await new Promise((res) => setTimeout(res, Number(values['detach-delay']) * 3));
  process.send?.({ done: true });
  process.exit(0);
}

const gatewayMain = join(here, '..', 'apps', 'gateway', 'dist', 'main.js');
const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = probe.address();
    probe.close(() => resolve(p));
  });
});
// GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the gateway.
const nodeArgs = process.env.GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const gateway = spawn(process.execPath, [...nodeArgs, gatewayMain], {
  env: {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DETACH_DELAY_MS: values['detach-delay'],
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {}
  if (i > 100) throw new Error('gateway did not start');
  await new Promise((r) => setTimeout(r, 50));
}

const stormArgs = ['--role', 'storm', '--url', `ws://127.0.0.1:${port}/ws`, '--clients', String(clients)];
stormArgs.push('--rounds', String(rounds), '--detach-delay', values['detach-delay']);
const storm = spawn(process.execPath, [fileURLToPath(import.meta.url), ...stormArgs], {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const [first] = await once(storm, 'message');
if (!first.ready) throw new Error('storm did not start');

const latencies = [];
let done = false;
storm.on('message', (m) => {
  if (m.done) done = true;
});
while (!done) {
  const t0 = performance.now();
  const res = await fetch(`${base}/healthz`);
  await res.text();
  latencies.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 5));
}
const ws = await (await fetch(`${base}/ws-metrics`)).json();
gateway.kill('SIGTERM');
await once(gateway, 'exit');

latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1);
console.log(
  `livebus /healthz during a reconnect storm: ${clients} clients x ${rounds} rounds, detach delay ${values['detach-delay']} ms`,
);
console.log(
  `  samples ${latencies.length}  p50 ${pct(50)} ms  p99 ${pct(99)} ms  max ${latencies.at(-1).toFixed(1)} ms`,
);
console.log(`  detaches: cancelled ${ws.metrics.detach.cancelled}, executed ${ws.metrics.detach.executed}`);
