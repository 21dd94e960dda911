// Helpers shared by the harness processes: Redis, process figures, percentiles.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** Wall clock in ms with sub-ms resolution, comparable across processes of one machine. */
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A private redis-server on a free port, no persistence. */
export async function startRedis() {
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 200; i++) {
    if (await canConnect(port)) return { url: `redis://127.0.0.1:${port}`, proc, stop: () => proc.kill('SIGKILL') };
    await sleep(25);
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** CPU seconds (user + system) of a process so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in ticks of 1/100 s
}

/**
 * CPU seconds of a process by thread name (`/proc/<pid>/task/<tid>/comm`): `main` for its main
 * thread; V8's helper threads (the optimizing compiler, the collector's helpers) are `V8 Default...`.
 */
export function cpuSecondsByThread(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = Math.round(((out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100) * 100) / 100;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** The environment of a bench gateway: JWT auth with `secret`, Redis at `redisUrl`, warnings only. */
export function gatewayEnv(port, redisUrl, secret, extra = {}) {
  return {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    AUTH_MODE: 'jwt',
    JWT_SECRET: secret,
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Calls per command so far (`INFO commandstats`), e.g. `{ evalsha: 4000, ssubscribe: 2000 }`. */
export function commandCalls(redisUrl) {
  const { hostname, port } = new URL(redisUrl);
  const text = execFileSync('redis-cli', ['-h', hostname, '-p', port, 'info', 'commandstats'], { encoding: 'utf8' });
  const calls = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  return calls;
}

/** What `after` adds to `before` (see {@link commandCalls}), per `n` (e.g. per client), the commands that moved. */
export function commandsPer(before, after, n) {
  const per = {};
  for (const [cmd, calls] of Object.entries(after)) {
    const d = calls - (before[cmd] ?? 0);
    if (d > 0) per[cmd] = Math.round((d / n) * 100) / 100;
  }
  return per;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** One HTTP GET with a timeout: resolves with { status, ms } or { error, ms }. */
export function get(url, timeoutMs = 1_000) {
  const t0 = now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: now() - t0 }));
    });
    // Says when the TCP connection was made: a connect that waited (a SYN the server's
    // kernel dropped is sent again after 1 s) is not a server that was slow to answer.
    let connectedMs;
    req.on('socket', (socket) => socket.once('connect', () => (connectedMs = Math.round(now() - t0))));
    req.setTimeout(timeoutMs, () =>
      req.destroy(
        new Error(
          connectedMs === undefined
            ? 'timeout (not connected)'
            : `timeout (connected after ${connectedMs} ms, local port ${req.socket?.localPort})`,
        ),
      ),
    );
    req.on('error', (error) => resolve({ error: error.message, ms: now() - t0 }));
  });
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summarize(samples) {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : Number.NaN };
}

/** HS256 JWT with node:crypto (what the gateway's jwt mode verifies). */
export async function signJwt(secret, claims) {
  const { createHmac } = await import('node:crypto');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/**
 * Google's Firestore emulator on a free loopback port (the Debian package
 * google-cloud-cli-firestore-emulator, or FIRESTORE_EMULATOR_JAR): its host:port once `GET /`
 * answers `Ok`, and the process (kill it when done).
 */
export async function startFirestoreEmulator() {
  const jar =
    process.env.FIRESTORE_EMULATOR_JAR ??
    '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const proc = spawn(
    'java',
    ['-cp', jar, 'com.google.cloud.datastore.emulator.firestore.CloudFirestore', '--host=127.0.0.1', `--port=${port}`],
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i++) {
    if (i > 300) {
      proc.kill('SIGKILL');
      throw new Error('the Firestore emulator did not start');
    }
    try {
      if ((await (await fetch(`http://${host}/`)).text()).trim() === 'Ok') return { host, proc };
    } catch {}
    await sleep(200);
  }
}
