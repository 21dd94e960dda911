// The client's side of a connect: CPU of this process per session opened, 3 000 sessions 200 at a
// time, against the gateway (JWT, a private redis-server) in another process. `livebus`: the real
// `@livebus/bus-consumer` client (options, hello, welcome, heartbeat); `raw`: a bare `ws` socket
// sending the same hello and waiting for the welcome, which is what the protocol itself costs.
//
//   node bench/client-connect.mjs livebus|raw      (node --cpu-prof ... to see where it goes)
//
// BENCH_CONSUMER_MODULE=/path/to/dist/index.js measures another build of the client (before/after
// comparisons; as in bench/lib/load.mjs, keep it where it resolves `ws` and `@livebus/protocol`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, gatewayEnv, get, signJwt, sleep, startRedis } from './lib/common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'x'.repeat(40);
const redis = await startRedis();
const port = await freePort();
const gw = spawn(process.execPath, [path.join(here, '../apps/gateway/dist/main.js')], {
  env: gatewayEnv(port, redis.url, SECRET, { INSTANCE_ID: 'cc' }),
  stdio: ['ignore', 'ignore', 'inherit'],
});
for (;;) {
  const r = await get(`http://127.0.0.1:${port}/health/readiness`, 500);
  if (r.status === 200) break;
  await sleep(20);
}
const mode = process.argv[2] ?? 'livebus';
const { BusConsumer } = await import(process.env.BENCH_CONSUMER_MODULE ?? '@livebus/bus-consumer');
const { WebSocket } = await import('ws');
const N = 3000;
const tokens = await Promise.all(
  Array.from({ length: N }, (_, i) =>
    signJwt(SECRET, { sub: `c${mode}${i}`, exp: Math.floor(Date.now() / 1000) + 3600 }),
  ),
);
const clients = [];
async function one(i) {
  if (mode === 'livebus') {
    const c = new BusConsumer({ url: `ws://127.0.0.1:${port}/ws`, token: tokens[i] });
    c.onClient('error', () => {});
    clients.push(c);
    await c.connect();
  } else {
    await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      clients.push(ws);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token: tokens[i] })));
      ws.once('message', resolve);
    });
  }
}
let next = 0;
const worker = async () => {
  while (next < N) await one(next++);
};
const t0 = process.cpuUsage();
await Promise.all(Array.from({ length: 200 }, worker));
const d = process.cpuUsage(t0);
console.log(mode, 'client CPU per connect (us)', Math.round((d.user + d.system) / N));
for (const c of clients) (c.close ?? c.terminate).call(c);
gw.kill('SIGTERM');
redis.stop();
await sleep(300);
process.exit(0);
