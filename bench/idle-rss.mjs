// Gateway memory per idle session: RSS of the gateway process (the built CLI,
// embedded default) before and after N authenticated sessions that stay quiet.
//
//   node bench/idle-rss.mjs [--clients 5000]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '5000' } } });
const clients = Number(values.clients);
const here = dirname(fileURLToPath(import.meta.url));

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = probe.address();
    probe.close(() => resolve(p));
  });
});
const gateway = spawn(process.execPath, [join(here, '..', 'apps', 'gateway', 'dist', 'main.js')], {
  env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
  } catch {}
  if (i > 100) throw new Error('gateway did not start');
  await new Promise((r) => setTimeout(r, 50));
}
const rss = () => Number(readFileSync(`/proc/${gateway.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
await new Promise((r) => setTimeout(r, 500));
const before = rss();

const sockets = [];
const open = (uid) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    sockets.push(ws);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: uid })));
    ws.once('message', resolve);
    ws.on('error', reject);
  });
for (let i = 0; i < clients; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, clients - i) }, (_, j) => open(`idle-${i + j}`)));
}
await new Promise((r) => setTimeout(r, 2_000)); // let allocations settle
const after = rss();
console.log(`livebus gateway RSS with ${clients} idle sessions (one user each)`);
console.log(
  `  before ${(before / 1e6).toFixed(1)} MB  after ${(after / 1e6).toFixed(1)} MB  per session ${((after - before) / clients / 1024).toFixed(1)} KB`,
);
for (const ws of sockets) ws.terminate();
gateway.kill('SIGTERM');
