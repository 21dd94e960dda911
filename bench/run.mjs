// The side-by-side harness: livebus, plain ws and Socket.IO 4 under the same
// scenarios, each server, load generator and publisher in its own process, with
// a private redis-server. Prints a markdown table and appends JSON lines to
// bench/results/.
//
//   node bench/run.mjs [--quick] [--targets livebus,ws,socketio]
//                      [--scenarios startup,idle,fanout,rate,storm,scale,churn]
//
// GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the livebus gateway,
// LOAD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" the load process (the clients),
// PUBLISHER_NODE_ARGS the same for the publisher process.
import { fork, spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  commandCalls,
  commandsPer,
  cpuSeconds,
  cpuSecondsByThread,
  freePort,
  get,
  now,
  rssBytes,
  sleep,
  startRedis,
  summarize,
} from './lib/common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: 'ws,socketio,livebus' },
    scenarios: { type: 'string', default: 'startup,idle,fanout,rate,storm,scale,churn' },
    out: { type: 'string' },
  },
});
const quick = opt.quick;
const P = {
  // BENCH_IDLE_STEPS=5000: other steps (comma-separated), e.g. for profiling one size.
  idleSteps: process.env.BENCH_IDLE_STEPS
    ? process.env.BENCH_IDLE_STEPS.split(',').map(Number)
    : quick
      ? [1_000]
      : [1_000, 5_000, 10_000],
  fanoutClients: 1_000,
  fanoutWindow: 2_000,
  fanoutMs: quick ? 3_000 : 6_000,
  rate: 1_000,
  rateMs: quick ? 4_000 : 10_000,
  stormClients: quick ? 1_000 : 2_000,
  stormRate: 200,
  startups: quick ? 2 : 5,
  scaleInstances: [2, 3],
  churnClients: quick ? 500 : 1_000,
  churnRate: quick ? 50 : 100,
  churnMs: quick ? 8_000 : 20_000,
  /** livebus's DETACH_DELAY_MS in the churn scenario (5 s by default): shorter, so the scenario stays short. */
  churnDetachDelayMs: 1_000,
};
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const resultsDir = path.join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
const outFile = opt.out ?? path.join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model?.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;

function record(row) {
  const line = { ...row, quick, machine, at: new Date().toISOString() };
  appendFileSync(outFile, `${JSON.stringify(line)}\n`);
  console.error(JSON.stringify(line));
}

// ---- processes ----------------------------------------------------------------

// Every server gets the heap probe: SIGUSR2 makes it collect garbage and write its memory use.
const heapProbe = ['--expose-gc', '--require', path.join(here, 'lib', 'heap-probe.cjs')];

/**
 * The server's memory after a full collection (bytes), read through the heap probe: `heapUsed`,
 * and `spaces`: V8's heap spaces by name, `{ size, used }` each (empty when unread).
 */
async function heapStats(pid) {
  const file = path.join(os.tmpdir(), `bench-heap-${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 400; i++) {
    try {
      const m = JSON.parse(readFileSync(file, 'utf8'));
      rmSync(file, { force: true });
      return m;
    } catch {
      await sleep(25);
    }
  }
  return { heapUsed: Number.NaN, spaces: {} };
}

/** Per connection (KB): how V8's heap spaces grew in size (pages) and in use from `before` to `after`. */
function spacesPerConn(before, after, n) {
  const row = {};
  for (const name of ['old_space', 'new_space', 'large_object_space', 'code_space']) {
    const [b, a] = [before?.[name], after?.[name]];
    row[`${name}_per_conn_kb`] = a && b ? (a.size - b.size) / n / 1024 : null;
    row[`${name}_used_per_conn_kb`] = a && b ? (a.used - b.used) / n / 1024 : null;
  }
  return row;
}

/** A process's read and write system calls so far (/proc/<pid>/io; NaN where unreadable). */
function ioSyscalls(pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? Number.NaN);
    return { syscr: field('syscr'), syscw: field('syscw') };
  } catch {
    return { syscr: Number.NaN, syscw: Number.NaN };
  }
}

let instanceSeq = 0;
/**
 * BENCH_REDIS_DELAY_MS: servers reach Redis through a proxy that holds every chunk this long
 * in each direction (a Redis a network hop away, not on loopback). Killed with the harness.
 */
const redisDelayMs = Number(process.env.BENCH_REDIS_DELAY_MS) || 0;
const delayProxies = new Map();
process.on('exit', () => {
  for (const proxy of delayProxies.values()) proxy.kill('SIGKILL');
});

/** A delay proxy (lib/delay-proxy.mjs) in front of host:port; its port. Killed with the harness. */
async function startDelayProxy(host, targetPort, delayMs) {
  const port = await freePort();
  const proxy = fork(
    path.join(here, 'lib', 'delay-proxy.mjs'),
    [String(port), host, String(targetPort), String(delayMs)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  await new Promise((resolve) => proxy.once('message', resolve));
  // Not what keeps the harness running.
  proxy.unref();
  proxy.channel?.unref();
  delayProxies.set(`${host}:${targetPort}`, proxy);
  return port;
}

async function delayedRedisUrl(redisUrl) {
  if (!redisDelayMs) return redisUrl;
  const target = new URL(redisUrl);
  const known = delayProxies.get(`${target.hostname}:${target.port}`);
  if (known) return known.url;
  const port = await startDelayProxy(target.hostname, target.port, redisDelayMs);
  const url = `redis://127.0.0.1:${port}`;
  delayProxies.get(`${target.hostname}:${target.port}`).url = url;
  return url;
}

/**
 * BENCH_CLIENT_DELAY_MS: the clients reach the server through a proxy that holds every chunk this
 * long in each direction (clients a network away: each round trip of a connect costs twice this).
 */
const clientDelayMs = Number(process.env.BENCH_CLIENT_DELAY_MS) || 0;

/** Where the load process reaches `server` (through the client delay proxy when there is one). */
async function clientBase(server) {
  if (!clientDelayMs) return server.base;
  return `http://127.0.0.1:${await startDelayProxy('127.0.0.1', server.port, clientDelayMs)}`;
}

let outSeq = 0;

async function startServer(target, redisUrl, port, extraEnv = {}) {
  port ??= await freePort();
  const env = { ...process.env, PORT: String(port), REDIS_URL: await delayedRedisUrl(redisUrl), ...extraEnv };
  let args;
  if (target === 'livebus') {
    Object.assign(env, {
      HOST: '127.0.0.1',
      AUTH_MODE: 'jwt',
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      INSTANCE_ID: `bench-${++instanceSeq}`,
    });
    // BENCH_HEALTH_PORT=1: the gateway also serves health on a port of its own (HEALTH_PORT,
    // a worker thread), and the storm polls that one.
    if (process.env.BENCH_HEALTH_PORT === '1') env.HEALTH_PORT = String(await freePort());
    const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
    // GATEWAY_MAIN: another build of the gateway, for before/after comparisons.
    args = [...heapProbe, ...nodeArgs, process.env.GATEWAY_MAIN ?? path.join(root, 'apps/gateway/dist/main.js')];
  } else {
    // BENCH_TARGET_NODE_ARGS: node options of the plain `ws` and Socket.IO servers (GATEWAY_NODE_ARGS's counterpart).
    const nodeArgs = (process.env.BENCH_TARGET_NODE_ARGS ?? '').split(' ').filter(Boolean);
    args = [
      ...heapProbe,
      ...nodeArgs,
      path.join(here, 'targets', target === 'ws' ? 'ws-server.mjs' : 'sio-server.mjs'),
    ];
  }
  const t0 = now();
  // BENCH_SERVER_STDOUT=dir: each server's standard output to dir/<target>-<n>.out (e.g. with --trace-opt in GATEWAY_NODE_ARGS).
  const out = process.env.BENCH_SERVER_STDOUT
    ? openSync(path.join(process.env.BENCH_SERVER_STDOUT, `${target}-${++outSeq}.out`), 'w')
    : 'ignore';
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', out, 'inherit'] });
  // The child has its own copy of the file's descriptor.
  if (typeof out === 'number') closeSync(out);
  const base = `http://127.0.0.1:${port}`;
  const readyPath = target === 'livebus' ? '/health/readiness' : '/healthz';
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${target} server exited with ${proc.exitCode}`);
    const r = await get(base + readyPath, 500);
    if (r.status === 200) break;
    await sleep(5);
  }
  const healthBase = env.HEALTH_PORT ? `http://127.0.0.1:${env.HEALTH_PORT}` : base;
  return { proc, port, base, healthBase, readyMs: now() - t0, pid: proc.pid };
}

function forkChild(file, args, execArgv = process.execArgv) {
  const child = fork(path.join(here, 'lib', file), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const waiters = [];
  child.on('message', (m) => {
    for (const w of [...waiters]) {
      if (w.cmd === m.cmd) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.request = (m, reply) =>
    new Promise((resolve) => {
      waiters.push({ cmd: reply, resolve });
      if (m) child.send(m);
    });
  return child;
}

/** Resolves once `child` has exited, or after `ms`. */
function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function startLoad(target, servers, users) {
  const loadArgs = (process.env.LOAD_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const load = forkChild(
    'load.mjs',
    [
      '--target',
      target,
      '--url',
      (await Promise.all([servers].flat().map(clientBase))).join(','),
      '--secret',
      SECRET,
      '--users',
      String(users),
    ],
    [...process.execArgv, ...loadArgs],
  );
  await load.request(null, 'up');
  return load;
}

async function startPublisher(target, redisUrl, users, load) {
  const pubArgs = (process.env.PUBLISHER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const pub = forkChild(
    'publisher.mjs',
    ['--target', target, '--redis', redisUrl, '--users', String(users)],
    [...process.execArgv, ...pubArgs],
  );
  await pub.request(null, 'up');
  // Relay the load's received count to the publisher (its in-flight window).
  load.on('message', (m) => {
    if (m.r !== undefined && pub.connected) pub.send(m);
  });
  return pub;
}

async function drain(load, published, timeoutMs = 5_000) {
  const until = now() + timeoutMs;
  for (;;) {
    const s = await load.request({ cmd: 'stats' }, 'stats');
    if (s.received >= published || now() > until) return s;
    await sleep(50);
  }
}

/** SIGKILL, or SIGTERM when profiling (a killed process writes no profile). */
async function stopServer(server) {
  if (!server || server.proc.exitCode !== null) return;
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill(process.env.GATEWAY_NODE_ARGS ? 'SIGTERM' : 'SIGKILL');
  await Promise.race([exited, sleep(15_000)]);
  server.proc.kill('SIGKILL');
}

async function withRig(target, users, fn, instances = 1, serverEnv = {}) {
  const redis = await startRedis();
  const rig = { redis, server: undefined, servers: [], load: undefined, pub: undefined };
  try {
    for (let i = 0; i < instances; i++) rig.servers.push(await startServer(target, redis.url, undefined, serverEnv));
    rig.server = rig.servers[0];
    rig.load = await startLoad(target, rig.servers, users);
    rig.pub = await startPublisher(target, redis.url, users, rig.load);
    return await fn(rig);
  } finally {
    rig.pub?.send({ cmd: 'close' });
    rig.load?.send({ cmd: 'close' });
    await sleep(300);
    await stopServer(rig.server);
    for (const server of rig.servers.slice(1)) await stopServer(server);
    rig.pub?.kill('SIGKILL');
    // A profiled load process (LOAD_NODE_ARGS="--cpu-prof ...") writes its profile as it exits.
    if (rig.load && process.env.LOAD_NODE_ARGS) await exited(rig.load, 10_000);
    rig.load?.kill('SIGKILL');
    redis.stop();
  }
}

// ---- scenarios -----------------------------------------------------------------

async function startup(target) {
  const redis = await startRedis();
  const times = [];
  try {
    for (let i = 0; i < P.startups; i++) {
      const s = await startServer(target, redis.url);
      times.push(s.readyMs);
      s.proc.kill('SIGKILL');
      await new Promise((r) => s.proc.once('exit', r));
    }
  } finally {
    redis.stop();
  }
  const sorted = [...times].sort((x, y) => x - y);
  record({ scenario: 'startup', target, ready_ms_median: sorted[Math.floor(sorted.length / 2)], ready_ms: times });
}

async function idle(target) {
  const max = P.idleSteps.at(-1);
  await withRig(target, max, async ({ server, load, redis }) => {
    await sleep(1_000);
    const before = rssBytes(server.pid);
    const statsBefore = await heapStats(server.pid);
    const heapBefore = statsBefore.heapUsed;
    let connected = 0;
    for (const n of P.idleSteps) {
      // The livebus clients' tokens are minted first: not part of the connects' CPU.
      await load.request({ cmd: 'prepare', from: connected, to: n }, 'prepared');
      const connectCpu0 = cpuSeconds(server.pid);
      const loadCpu0 = cpuSeconds(load.pid);
      const redisCpu0 = cpuSeconds(redis.proc.pid);
      const syscalls0 = ioSyscalls(server.pid);
      // BENCH_CONNECT_CONCURRENCY: clients connecting at a time (200 by default; 1 shows a hello's own latency).
      const concurrency = Number(process.env.BENCH_CONNECT_CONCURRENCY) || undefined;
      const step = await load.request({ cmd: 'connect', from: connected, to: n, concurrency }, 'connected');
      const connectCpu = cpuSeconds(server.pid) - connectCpu0;
      const loadCpu = cpuSeconds(load.pid) - loadCpu0;
      const redisCpu = cpuSeconds(redis.proc.pid) - redisCpu0;
      const syscalls1 = ioSyscalls(server.pid);
      const added = n - connected;
      connected = n;
      await sleep(2_000);
      const after = rssBytes(server.pid);
      const statsAfter = await heapStats(server.pid);
      const heapAfter = statsAfter.heapUsed;
      // CPU with the connections open and no traffic: timers, heartbeats, housekeeping.
      const cpu0 = cpuSeconds(server.pid);
      await sleep(3_000);
      const idleCores = (cpuSeconds(server.pid) - cpu0) / 3;
      record({
        scenario: 'idle',
        target,
        connections: n,
        rss_before_mb: before / 2 ** 20,
        rss_after_mb: after / 2 ** 20,
        rss_per_conn_kb: (after - before) / n / 1024,
        // The same read right after the probe's full collection (garbage the collector had not
        // yet reclaimed at the first read is gone; pages it freed may go back to the system).
        rss_after_gc_per_conn_kb: (statsAfter.rss - statsBefore.rss) / n / 1024,
        // Of it, by kind of mapping (see lib/heap-probe.cjs), per connection.
        mappings_per_conn_kb: Object.fromEntries(
          Object.keys({ ...statsBefore.mappings, ...statsAfter.mappings }).map((k) => [
            k,
            Math.round((((statsAfter.mappings?.[k] ?? 0) - (statsBefore.mappings?.[k] ?? 0)) / n / 1024) * 100) / 100,
          ]),
        ),
        heap_before_mb: heapBefore / 2 ** 20,
        heap_after_mb: heapAfter / 2 ** 20,
        heap_per_conn_kb: (heapAfter - heapBefore) / n / 1024,
        // Memory outside V8's heap that V8 knows of (Buffers, ArrayBuffers, external strings).
        external_per_conn_kb: (statsAfter.external - statsBefore.external) / n / 1024,
        // V8's heap spaces after a full collection, per connection: pages held (they count in RSS)
        // and bytes in use. `new_space` is the young generation's semi-spaces as they grew.
        ...spacesPerConn(statsBefore.spaces, statsAfter.spaces, n),
        // The clients of this step connecting, 200 at a time: from opening the socket to open (welcome).
        handshakes: added,
        connect_concurrency: concurrency ?? 200,
        redis_delay_ms: redisDelayMs,
        client_delay_ms: clientDelayMs,
        // Wall time of the step, first connect to last welcome.
        connect_ms: step.ms,
        handshake_p50_ms: step.handshake?.p50 ?? null,
        handshake_p99_ms: step.handshake?.p99 ?? null,
        // The server's CPU (user + system, /proc) while this step's clients connected, per connection.
        connect_cpu_us_per_conn: (connectCpu / added) * 1e6,
        // The load process's CPU for the same (the clients' side of each handshake; it shares the cores).
        load_cpu_us_per_conn: (loadCpu / added) * 1e6,
        // Redis's CPU for the same (the third process on the same cores).
        redis_cpu_us_per_conn: (redisCpu / added) * 1e6,
        // Read and write system calls (sockets included, /proc/<pid>/io) while they connected, per connection.
        connect_syscr_per_conn: (syscalls1.syscr - syscalls0.syscr) / added,
        connect_syscw_per_conn: (syscalls1.syscw - syscalls0.syscw) / added,
        idle_cpu_cores: idleCores,
      });
    }
    // Every client closing at once (a deploy's drain, a network that drops them all): the
    // server's CPU and system calls from the close until 1 s after the last client saw its
    // close (the second's idle CPU, a few ms, included), per connection.
    const closeCpu0 = cpuSeconds(server.pid);
    const closeIo0 = ioSyscalls(server.pid);
    await load.request({ cmd: 'closeAll' }, 'closedAll');
    await sleep(1_000);
    const closeIo1 = ioSyscalls(server.pid);
    record({
      scenario: 'idle-close',
      target,
      connections: connected,
      close_cpu_us_per_conn: ((cpuSeconds(server.pid) - closeCpu0) / connected) * 1e6,
      close_syscr_per_conn: (closeIo1.syscr - closeIo0.syscr) / connected,
      close_syscw_per_conn: (closeIo1.syscw - closeIo0.syscw) / connected,
    });
  });
}

async function fanout(target, instances = 1) {
  const users = P.fanoutClients;
  await withRig(target, users, (rig) => fanoutOn(target, users, instances, rig), instances);
}

/** Fan-out with 2 and 3 instances: clients spread over them, CPU summed over them. */
async function scale(target) {
  for (const n of P.scaleInstances) await fanout(target, n);
}

async function fanoutOn(target, users, instances, { servers, load, pub, redis }) {
  const server = { pids: servers.map((s) => s.pid) };
  {
    await load.request({ cmd: 'connect', from: 0, to: users }, 'connected');
    // Warm-up: the JIT and the Redis connections.
    let done = await pub.request({ cmd: 'window', window: P.fanoutWindow, durationMs: 1_500 }, 'done');
    await drain(load, done.published);
    await load.request({ cmd: 'stats', reset: true }, 'stats');
    const start = await load.request({ cmd: 'stats' }, 'stats');
    const others = { publisher: pub.pid, load: load.pid, redis: redis.proc.pid };
    const others0 = Object.fromEntries(Object.entries(others).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const serverCpu = () => server.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const cpu0 = serverCpu();
    const t0 = now();
    done = await pub.request({ cmd: 'window', window: P.fanoutWindow, durationMs: P.fanoutMs }, 'done');
    const end = await drain(load, done.published);
    const cpu = serverCpu() - cpu0;
    const othersCpu = Object.fromEntries(
      Object.entries(others).map(([k, pid]) => [`${k}_cpu_s`, cpuSeconds(pid) - others0[k]]),
    );
    const wall = (now() - t0) / 1000;
    const fin = await load.request({ cmd: 'final', expected: done.expected }, 'final');
    const events = end.received - start.received;
    record({
      scenario: 'fanout',
      target,
      instances,
      clients: users,
      window: P.fanoutWindow,
      events,
      server_cpu_s: cpu,
      ...othersCpu,
      wall_s: wall,
      events_per_cpu_s: events / cpu,
      events_per_s: events / wall,
      p50_ms: end.lat.p50,
      p99_ms: end.lat.p99,
      lost: fin.lost,
      dup: fin.dup,
      misrouted: fin.misrouted,
      reordered: fin.reordered,
      publish_errors: done.errors,
    });
  }
}

async function rate(target) {
  const users = P.fanoutClients;
  await withRig(target, users, async ({ server, load, pub }) => {
    await load.request({ cmd: 'connect', from: 0, to: users }, 'connected');
    let done = await pub.request({ cmd: 'rate', rate: P.rate, durationMs: 1_500 }, 'done');
    await drain(load, done.published);
    await load.request({ cmd: 'stats', reset: true }, 'stats');
    const cpu0 = cpuSeconds(server.pid);
    const t0 = now();
    done = await pub.request({ cmd: 'rate', rate: P.rate, durationMs: P.rateMs }, 'done');
    const wall = (now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const end = await drain(load, done.published);
    const fin = await load.request({ cmd: 'final', expected: done.expected }, 'final');
    record({
      scenario: 'rate',
      target,
      clients: users,
      rate: P.rate,
      server_cores: cpu / wall,
      p50_ms: end.lat.p50,
      p99_ms: end.lat.p99,
      max_ms: end.lat.max,
      publish_ack_p99_ms: done.ack?.p99 ?? null,
      publish_ack_max_ms: done.ack?.max ?? null,
      lost: fin.lost,
      dup: fin.dup,
      misrouted: fin.misrouted,
      reordered: fin.reordered,
    });
  });
}

async function storm(target) {
  const users = P.stormClients;
  await withRig(target, users, async (rig) => {
    const { load, pub, redis } = rig;
    await load.request({ cmd: 'connect', from: 0, to: users }, 'connected');
    const publishing = pub.request({ cmd: 'rate', rate: P.stormRate, durationMs: 60_000 }, 'done');
    await sleep(2_000);
    const old = rig.server;
    const opensBefore = (await load.request({ cmd: 'stats' }, 'stats')).opens;
    const callsBefore = commandCalls(redis.url);
    let redisCommandsPerClient;
    const tKill = now();
    old.proc.kill('SIGKILL');
    await new Promise((r) => old.proc.once('exit', r));
    rig.server = await startServer(target, redis.url, old.port);
    const killToReady = now() - tKill;
    const tReady = now();
    // Poll /healthz (1 s timeout) until every client is back, and a second more.
    const polls = [];
    let failures = 0;
    const failureKinds = [];
    let allBackMs;
    let stormCpuS;
    let stormThreads;
    let stormSyscalls;
    let stopAt = now() + 90_000;
    let lastCheck = 0;
    while (now() < stopAt) {
      const r = await get(`${rig.server.healthBase}/healthz`, 1_000);
      if (r.status === 200) polls.push(r.ms);
      else {
        failures++;
        // When it failed: ms after the restarted server was ready.
        if (failureKinds.length < 5)
          failureKinds.push(`${r.error ?? `HTTP ${r.status}`} at ${Math.round(now() - tReady)} ms`);
      }
      if (allBackMs === undefined && now() - lastCheck > 20) {
        lastCheck = now();
        const s = await load.request({ cmd: 'stats' }, 'stats');
        if (s.open >= users && s.opens - opensBefore >= users) {
          allBackMs = now() - tKill;
          // The new process's CPU from its start until every client is back.
          stormCpuS = cpuSeconds(rig.server.pid);
          stormThreads = cpuSecondsByThread(rig.server.pid);
          stormSyscalls = ioSyscalls(rig.server.pid);
          // What Redis ran from the kill until every client was back (the publisher's 200 events/s included).
          redisCommandsPerClient = commandsPer(callsBefore, commandCalls(redis.url), users);
          stopAt = now() + 1_000;
        }
      }
      await sleep(5);
    }
    // Publish a little longer, then stop and count what reached whom.
    await sleep(1_000);
    const done = await stopRate(pub, publishing);
    await drain(load, done.published, 10_000);
    const fin = await load.request({ cmd: 'final', expected: done.expected }, 'final');
    // BENCH_RECONNECT_TRACE=1: the livebus clients' attempts from the kill on (bench/lib/load.mjs).
    if (process.env.BENCH_RECONNECT_TRACE === '1' && target === 'livebus') {
      const file = `${process.env.BENCH_TRACE_DIR ?? '/tmp'}/storm-trace-${Date.now()}.json`;
      const meta = { kill_to_ready_ms: killToReady, all_back_ms: allBackMs ?? null };
      await load.request({ cmd: 'trace', file, from: tKill, meta }, 'traced');
      console.error(`storm trace: ${file}`);
    }
    const h = summarize(polls);
    record({
      scenario: 'storm',
      target,
      clients: users,
      kill_to_ready_ms: killToReady,
      all_back_ms: allBackMs ?? null,
      server_cpu_to_all_back_s: stormCpuS ?? null,
      // The same by thread: `main`, and V8's helpers (optimizing compiler, collector) by name.
      server_cpu_by_thread_s: stormThreads ?? null,
      // The restarted server's read and write system calls (sockets included) until all back, per client.
      syscr_per_client: stormSyscalls ? stormSyscalls.syscr / users : null,
      syscw_per_client: stormSyscalls ? stormSyscalls.syscw / users : null,
      redis_commands_per_client: redisCommandsPerClient ?? null,
      healthz_p50_ms: h.p50,
      healthz_p99_ms: h.p99,
      healthz_max_ms: h.max,
      healthz_failures: failures,
      healthz_failure_kinds: failureKinds,
      healthz_polls: polls.length,
      healthz_port: rig.server.healthBase === rig.server.base ? 'main' : 'health',
      published: done.published,
      lost: fin.lost,
      // Up to five users that missed events: which, and what they got (see lib/load.mjs).
      ...(fin.lost > 0 ? { lost_detail: fin.lostDetail } : {}),
      dup: fin.dup,
      misrouted: fin.misrouted,
      reordered: fin.reordered,
    });
  });
}

/** livebus's own counts (GET /debug): what must match the sessions left after churn. */
async function livebusCounts(server) {
  const res = await fetch(`${server.base}/debug`);
  const d = await res.json();
  return {
    connections: d.stats.connections,
    sessions: d.stats.sessions,
    users: d.stats.users,
    listeners_attached: d.stats.listeners,
    pending_detaches: d.stats.pendingDetaches,
    pending_detach_users: d.pending_detaches.length,
    detach_cancelled: d.stats.detachCancelled,
    detach_executed: d.stats.detachExecuted,
    bus_streams: d.bus.streams,
  };
}

/**
 * Detach churn: clients of distinct users disconnect and reconnect at a bounded
 * rate for a bounded time, half within livebus's detach delay (the detach is
 * cancelled), half after it (the detach runs: listeners released, registry
 * cleaned, then attached again). Reported: server CPU per reconnect, /healthz
 * latency meanwhile, RSS growth, and for livebus its counts once every client
 * is back and the delays have passed (they must match the sessions left), and
 * again after every client left (all zero). Plain ws and Socket.IO have no
 * detach: only CPU per reconnect, /healthz and RSS apply to them.
 */
async function churn(target) {
  const users = P.churnClients;
  const delay = P.churnDetachDelayMs;
  const env = target === 'livebus' ? { DETACH_DELAY_MS: String(delay) } : {};
  await withRig(
    target,
    users,
    async ({ server, load }) => {
      await load.request({ cmd: 'connect', from: 0, to: users }, 'connected');
      await sleep(1_000);
      const rss0 = rssBytes(server.pid);
      const cpu0 = cpuSeconds(server.pid);
      const t0 = now();
      let finished = false;
      const churning = load
        .request(
          {
            cmd: 'churn',
            rate: P.churnRate,
            durationMs: P.churnMs,
            within: [20, delay * 0.6],
            after: [delay * 1.3, delay * 2],
          },
          'churned',
        )
        .finally(() => {
          finished = true;
        });
      const polls = [];
      let failures = 0;
      while (!finished) {
        const r = await get(`${server.base}/healthz`, 1_000);
        if (r.status === 200) polls.push(r.ms);
        else failures++;
        // Every 50 ms: the probe's own cost stays a small part of the CPU per reconnect.
        await sleep(50);
      }
      const res = await churning;
      const cpu = cpuSeconds(server.pid) - cpu0;
      const wall = (now() - t0) / 1000;
      // Every client is back; let the last detach delays run out before counting.
      await sleep(delay + 1_500);
      const rss1 = rssBytes(server.pid);
      const settled = target === 'livebus' ? await livebusCounts(server) : undefined;
      const closed = await load.request({ cmd: 'closeAll' }, 'closedAll');
      await sleep(delay + 1_500);
      const empty = target === 'livebus' ? await livebusCounts(server) : undefined;
      const h = summarize(polls);
      record({
        scenario: 'churn',
        target,
        clients: users,
        rate: P.churnRate,
        churn_ms: P.churnMs,
        detach_delay_ms: target === 'livebus' ? delay : null,
        reconnects: res.reopened,
        reconnect_failures: res.failed,
        open_after_churn: res.open,
        server_cpu_s: cpu,
        server_cores: cpu / wall,
        cpu_ms_per_reconnect: res.reopened > 0 ? (cpu * 1000) / res.reopened : null,
        healthz_p50_ms: h.p50,
        healthz_p99_ms: h.p99,
        healthz_max_ms: h.max,
        healthz_failures: failures,
        rss_growth_mb: (rss1 - rss0) / 2 ** 20,
        open_after_close: closed.open,
        ...(settled
          ? {
              settled,
              // Leaks: after the churn each open client is one session, one user, one attached
              // listener set and one bus stream; nothing waits for a detach. After all left: zeros.
              settled_ok:
                settled.sessions === res.open &&
                settled.users === res.open &&
                settled.listeners_attached === res.open &&
                settled.bus_streams === res.open &&
                settled.pending_detaches === 0 &&
                settled.pending_detach_users === 0,
              empty,
              empty_ok: Object.entries(empty)
                .filter(([k]) => !k.startsWith('detach_'))
                .every(([, v]) => v === 0),
            }
          : {}),
      });
    },
    1,
    env,
  );
}

async function stopRate(pub, publishing) {
  pub.send({ cmd: 'stop' });
  return publishing;
}

// ---- main ----------------------------------------------------------------------

const scenarios = { startup, idle, fanout, rate, storm, scale, churn };
const targets = opt.targets.split(',');
console.error(`results: ${path.relative(process.cwd(), outFile)}\nmachine: ${machine}`);
for (const name of opt.scenarios.split(',')) {
  for (const target of targets) {
    console.error(`-- ${name} ${target}`);
    try {
      await scenarios[name](target);
    } catch (error) {
      console.error(`${name} ${target} failed: ${error.stack ?? error}`);
      record({ scenario: name, target, error: String(error) });
    }
  }
}
const { table } = await import('./lib/report.mjs');
console.log(table(outFile));
const { goals } = await import('./lib/goals.mjs');
const met = goals(outFile);
if (met) console.log(`\n${met}`);
process.exit(0);
