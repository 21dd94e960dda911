// The client's side of a connect: CPU of this process per session opened, 3 000 sessions 200 at a
// time, against the gateway (JWT, a private redis-server) in another process. `livebus`: the real
// `@livebus/bus-consumer` client (options, hello, welcome, heartbeat); `raw`: a bare `ws` socket
// sending the same hello and waiting for the welcome, which is what the protocol itself costs.
//
//   node bench/client-connect.mjs livebus|raw      (node --cpu-prof ... to see where it goes)
//
// BENCH_CONSUMER_MODULE=/path/to/dist/index.js measures another build of the client (before/after
// comparisons; as in bench/lib/load.mjs, keep it where it resolves `ws` and `@livebus/protocol`).
// `--alloc` also prints the bytes allocated per connect (V8's sampling heap profiler, one sample per
// 1 KB on average, objects the collectors freed counted too), in all and by allocating function:
// unlike the CPU, it does not move with the machine's load.
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
const alloc = process.argv.includes('--alloc') ? await startSampling() : undefined;
const t0 = process.cpuUsage();
await Promise.all(Array.from({ length: 200 }, worker));
const d = process.cpuUsage(t0);
console.log(mode, 'client CPU per connect (us)', Math.round((d.user + d.system) / N));
if (alloc) {
  const { total, byFunction } = await alloc();
  console.log(mode, 'client bytes allocated per connect', Math.round(total / N));
  console.log('bytes per connect by allocating function (the 25 largest):');
  for (const [where, bytes] of byFunction.slice(0, 25)) console.log(String(Math.round(bytes / N)).padStart(7), where);
}
for (const c of clients) (c.close ?? c.terminate).call(c);
gw.kill('SIGTERM');
redis.stop();
await sleep(300);
process.exit(0);

/** Starts V8's sampling heap profiler; the function it returns stops it and gives the bytes sampled, in all and by function. */
async function startSampling() {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  await post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await post('HeapProfiler.stopSampling');
    session.disconnect();
    const byFunction = new Map();
    const walk = (node) => {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      byFunction.set(where, (byFunction.get(where) ?? 0) + node.selfSize);
      return node.selfSize + node.children.reduce((n, child) => n + walk(child), 0);
    };
    const total = walk(profile.head);
    return { total, byFunction: [...byFunction].sort((a, b) => b[1] - a[1]) };
  };
}
