// The load process: N clients of one target, one user each (user i is client i).
// Counts every event: received, duplicates (a sequence number at or below the
// last one seen for that user), misrouted (an event of another user), and the
// latency from the publisher's timestamp. Driven by its parent over IPC.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { now, signJwt, sleep } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    target: { type: 'string' },
    url: { type: 'string' },
    secret: { type: 'string' },
    users: { type: 'string' },
  },
});
const users = Number(a.users);
const lastSeq = new Int32Array(users);
const count = new Int32Array(users);
/** Per user: sequence numbers skipped so far (arrived out of order or lost). */
const missing = new Map();
let received = 0;
let dup = 0;
let reordered = 0;
let misrouted = 0;
let lat = [];
let open = 0;
let opens = 0;
const clients = [];
/** Handshake times of the last `connect` (ms, from opening the socket to open/welcome). */
let handshakes = [];

function onEvent(i, u, s, t) {
  received++;
  lat.push(now() - t);
  if (u !== i) {
    misrouted++;
    return;
  }
  const last = lastSeq[u];
  if (s <= last) {
    // Late (published out of order: concurrent publishes) or a duplicate.
    const m = missing.get(u);
    if (m?.delete(s)) {
      reordered++;
      count[u]++;
    } else dup++;
    return;
  }
  if (s > last + 1) {
    let m = missing.get(u);
    if (!m) {
      m = new Set();
      missing.set(u, m);
    }
    for (let k = last + 1; k < s; k++) m.add(k);
  }
  lastSeq[u] = s;
  count[u]++;
}

// --url may list several servers (comma-separated): client i connects to server i mod n.
const hosts = a.url.split(',').map((u) => new URL(u).host);
const hostOf = (i) => hosts[i % hosts.length];

// BENCH_RECONNECT_TRACE=1 (livebus only): every connection attempt of every client is recorded
// (start, TCP/upgrade outcome, error code, HTTP status and Retry-After of a refused upgrade,
// the welcome, the close and the delay the client chose next); `trace` writes them to a file.
const traceOn = process.env.BENCH_RECONNECT_TRACE === '1';
/** Per client: its attempts, oldest first. */
const attempts = [];
let NodeWebSocket;
/** Client i's WebSocket: `ws`'s, recording each attempt. */
function tracedWebSocket(i) {
  // The `ws` the client itself resolves (it checks `instanceof` for its fast message path).
  NodeWebSocket ??= createRequire(createRequire(import.meta.url).resolve('@livebus/bus-consumer'))('ws');
  return class extends NodeWebSocket {
    constructor(url) {
      // As the client's own Node transport opens its sockets (transport/node.ts).
      super(url, { perMessageDeflate: false });
      const rec = { t: now() };
      attempts[i] ??= [];
      attempts[i].push(rec);
      this.on('upgrade', () => {
        rec.upgraded = now();
      });
      this.on('unexpected-response', (_req, res) => {
        rec.status = res.statusCode;
        rec.retryAfter = res.headers['retry-after'];
        rec.refusedAt = now();
      });
      this.on('error', (e) => {
        rec.error ??= e.code ?? e.message;
        rec.errorAt ??= now();
      });
    }
  };
}

/** Client i's token, minted before its connect (see {@link prepareLivebus}). */
const tokens = [];
let BusConsumer;

/**
 * Loads the client and mints the tokens of clients [from, to) before any of them connects: a
 * browser gets its token from the app's auth server, so minting it is not the client's work, and
 * done inside the connect loop it would take this process's CPU from the handshakes measured.
 */
async function prepareLivebus(from, to) {
  // BENCH_CONSUMER_MODULE: another build of the client (a path), for before/after comparisons.
  ({ BusConsumer } = await import(process.env.BENCH_CONSUMER_MODULE ?? '@livebus/bus-consumer'));
  const exp = Math.floor(Date.now() / 1000) + 24 * 3600;
  for (let i = from; i < to; i++) tokens[i] ??= await signJwt(a.secret, { sub: `u${i}`, exp });
}

async function openLivebus(i) {
  if (tokens[i] === undefined) await prepareLivebus(i, i + 1);
  const token = tokens[i];
  const c = new BusConsumer({
    url: `ws://${hostOf(i)}/ws`,
    token,
    ...(traceOn ? { WebSocket: tracedWebSocket(i) } : {}),
  });
  if (traceOn) {
    const last = () => attempts[i]?.[attempts[i].length - 1];
    c.onClient('open', () => {
      const r = last();
      if (r) r.welcome = now();
    });
    c.onClient('close', ({ code, reason, delayMs }) => {
      const r = last();
      if (r) Object.assign(r, { closedAt: now(), code, reason, delayMs });
    });
  }
  c.onAny((frame) => {
    const [u, s] = frame.data.task_id.split('.');
    onEvent(i, Number(u), Number(s), Number(frame.data.message));
  });
  c.onClient('state', ({ oldState, newState }) => {
    if (newState === 'open') {
      open++;
      opens++;
    } else if (oldState === 'open') open--;
  });
  c.onClient('error', () => {});
  clients[i] = { close: () => c.close() };
  const t0 = now();
  await c.connect();
  handshakes.push(now() - t0);
}

function openSocketIo(i, ioClient) {
  return new Promise((resolve) => {
    let t0 = now();
    const s = ioClient(`http://${hostOf(i)}`, { transports: ['websocket'], auth: { u: i } });
    s.on('ev', (m) => onEvent(i, m.u, m.s, m.t));
    s.on('connect', () => {
      if (t0 !== undefined) handshakes.push(now() - t0);
      t0 = undefined;
      open++;
      opens++;
      resolve();
    });
    s.on('disconnect', () => open--);
    clients[i] = { close: () => s.close() };
  });
}

function openWs(i, WebSocket) {
  let closed = false;
  return new Promise((resolve) => {
    const connect = () => {
      const t0 = now();
      const ws = new WebSocket(`ws://${hostOf(i)}/ws?u=${i}`);
      let welcomed = false;
      ws.on('message', (data) => {
        if (!welcomed) {
          welcomed = true;
          handshakes.push(now() - t0);
          open++;
          opens++;
          resolve();
          return;
        }
        const m = JSON.parse(data);
        onEvent(i, m.u, m.s, m.t);
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        if (welcomed) open--;
        // Full-jitter reconnect, like the other two clients.
        if (!closed) setTimeout(connect, Math.random() * 500);
      });
      clients[i] = {
        close: () => {
          closed = true;
          ws.close();
        },
      };
    };
    connect();
  });
}

let opener;
if (a.target === 'livebus') opener = openLivebus;
else if (a.target === 'socketio') {
  const { io } = await import('socket.io-client');
  opener = (i) => openSocketIo(i, io);
} else {
  const { WebSocket } = await import('ws');
  opener = (i) => openWs(i, WebSocket);
}

async function connect(from, to, concurrency = 200) {
  if (opener === openLivebus) await prepareLivebus(from, to);
  let next = from;
  const worker = async () => {
    while (next < to) await opener(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Detach churn: for `durationMs`, `rate` times a second, a client that is open
 * (another user each time) disconnects and reconnects after a delay drawn from
 * `within` (ms, inside the server's detach delay) or `after` (past it), in
 * turn. Then waits, at most `settleMs`, for every client to be open again.
 */
async function churn({ rate, durationMs, within, after, settleMs = 15_000 }) {
  const t0 = now();
  const busy = new Set();
  let started = 0;
  let reopened = 0;
  let failed = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = now() - t0;
      if (elapsed >= durationMs) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor((elapsed / 1000) * rate) - started;
      for (let k = 0; k < due; k++) {
        let i = Math.floor(Math.random() * users);
        for (let tries = 0; busy.has(i) && tries < 20; tries++) i = Math.floor(Math.random() * users);
        if (busy.has(i)) continue;
        busy.add(i);
        const [lo, hi] = started % 2 === 0 ? within : after;
        started++;
        clients[i].close();
        setTimeout(
          () =>
            opener(i).then(
              () => {
                reopened++;
                busy.delete(i);
              },
              () => {
                failed++;
                busy.delete(i);
              },
            ),
          lo + Math.random() * (hi - lo),
        );
      }
    }, 10);
  });
  const until = now() + settleMs;
  while (busy.size > 0 && now() < until) await sleep(20);
  return { started, reopened, failed, churnMs: now() - t0 };
}

let lastSent = -1;
setInterval(() => {
  if (received !== lastSent) {
    lastSent = received;
    process.send({ r: received });
  }
}, 5);

process.on('message', async (m) => {
  if (m.cmd === 'prepare') {
    // What clients [from, to) need before they connect (livebus: their tokens), outside the
    // CPU the harness counts for the connects.
    if (opener === openLivebus) await prepareLivebus(m.from, m.to);
    process.send({ cmd: 'prepared' });
  } else if (m.cmd === 'connect') {
    const t0 = now();
    handshakes = [];
    await connect(m.from, m.to, m.concurrency);
    const h = Float64Array.from(handshakes).sort();
    const at = (p) => (h.length ? h[Math.min(h.length - 1, Math.floor((p / 100) * h.length))] : null);
    process.send({ cmd: 'connected', ms: now() - t0, open, handshake: { n: h.length, p50: at(50), p99: at(99) } });
  } else if (m.cmd === 'stats') {
    const s = Float64Array.from(lat).sort();
    const pick = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null);
    process.send({
      cmd: 'stats',
      received,
      dup,
      misrouted,
      open,
      opens,
      lat: { n: s.length, p50: pick(50), p99: pick(99), max: s.length ? s[s.length - 1] : null },
    });
    if (m.reset) lat = [];
  } else if (m.cmd === 'final') {
    // expected[u]: events published to user u. Lost: expected but never received.
    let lost = 0;
    // Which, for a run that lost some: the user, the events it never got, how many it got.
    const lostDetail = [];
    for (let u = 0; u < users; u++) {
      const n = Math.max(0, (m.expected[u] ?? 0) - count[u]);
      lost += n;
      if (n > 0 && lostDetail.length < 5) {
        const gaps = [...(missing.get(u) ?? [])].slice(0, 5);
        lostDetail.push({ user: u, expected: m.expected[u], received: count[u], last: lastSeq[u], missing: gaps });
      }
    }
    process.send({ cmd: 'final', lost, lostDetail, dup, misrouted, reordered, received });
  } else if (m.cmd === 'churn') {
    const r = await churn(m);
    process.send({ cmd: 'churned', ...r, open });
  } else if (m.cmd === 'trace') {
    // Times in ms after `m.from` (the kill), attempts from then on only.
    const rel = (x) => (x === undefined ? undefined : Math.round(x - m.from));
    const out = attempts.map((list) =>
      (list ?? [])
        .filter((r) => r.t >= m.from - 1 || (r.closedAt ?? Infinity) >= m.from)
        .map((r) => ({
          ...r,
          t: rel(r.t),
          upgraded: rel(r.upgraded),
          refusedAt: rel(r.refusedAt),
          errorAt: rel(r.errorAt),
          welcome: rel(r.welcome),
          closedAt: rel(r.closedAt),
        })),
    );
    writeFileSync(m.file, JSON.stringify({ ...m.meta, clients: out }));
    process.send({ cmd: 'traced' });
  } else if (m.cmd === 'closeAll') {
    for (const c of clients) c?.close();
    const until = now() + 5_000;
    while (open > 0 && now() < until) await sleep(20);
    process.send({ cmd: 'closedAll', open });
  } else if (m.cmd === 'close') {
    for (const c of clients) c?.close();
    setTimeout(() => process.exit(0), 200);
  }
});
process.send({ cmd: 'up' });
