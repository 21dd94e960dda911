// The publisher process: events for users 0..N-1 round-robin, each with the
// user, a per-user sequence number and the time it was sent. livebus: the
// @livebus/publisher (Lua append + SPUBLISH); ws: PUBLISH u:<user>; Socket.IO:
// @socket.io/redis-emitter to the user's room.
import { parseArgs } from 'node:util';
import { now } from './common.mjs';

const { values: a } = parseArgs({
  options: { target: { type: 'string' }, redis: { type: 'string' }, users: { type: 'string' } },
});
const users = Number(a.users);
const seq = new Int32Array(users);
let published = 0;
let confirmed = 0;
let errors = 0;
let received = 0;
let next = 0;
/** Publish round trips (ms) since the last report: Redis and the publisher's own share of the latency. */
let acks = [];

let send;
let closeAll;
if (a.target === 'livebus') {
  const { createPublisher } = await import('@livebus/publisher');
  const p = createPublisher({ redisUrl: a.redis });
  send = (u, s, t) =>
    p
      .publish(`u${u}`, {
        event: 'task.progress_update',
        data: { task_id: `${u}.${s}`, status: 'running', progress: 50, message: String(t) },
      })
      .then(
        () => {
          confirmed++;
          acks.push(now() - t);
        },
        () => errors++,
      );
  closeAll = () => p.close();
} else {
  const { Redis } = await import('ioredis');
  const redis = new Redis(a.redis, { enableAutoPipelining: true });
  if (a.target === 'socketio') {
    const { Emitter } = await import('@socket.io/redis-emitter');
    const emitter = new Emitter(redis);
    send = (u, s, t) => emitter.to(`u:${u}`).emit('ev', { u, s, t });
  } else {
    send = (u, s, t) =>
      redis.publish(`u:${u}`, JSON.stringify({ u, s, t })).then(
        () => {
          confirmed++;
          acks.push(now() - t);
        },
        () => errors++,
      );
  }
  closeAll = () => redis.quit();
}

function publishOne() {
  const u = next;
  next = (next + 1) % users;
  const s = ++seq[u];
  published++;
  send(u, s, now());
}

let mode;
let until = 0;
let window = 0;
let rate = 0;
let startedAt = 0;
let startedCount = 0;

function pump() {
  if (mode !== 'window') return;
  if (now() >= until) return finish();
  while (published - received < window) publishOne();
}

function finish() {
  mode = undefined;
  // Let confirmations settle before reporting.
  setTimeout(() => {
    const a = Float64Array.from(acks).sort();
    acks = [];
    const ack = a.length
      ? { p50: a[Math.floor(a.length / 2)], p99: a[Math.floor(a.length * 0.99)], max: a.at(-1) }
      : null;
    process.send({ cmd: 'done', published, confirmed, errors, ack, expected: Array.from(seq) });
  }, 300);
}

process.on('message', (m) => {
  if (m.r !== undefined) {
    received = m.r;
    pump();
  } else if (m.cmd === 'window') {
    mode = 'window';
    window = m.window;
    until = now() + m.durationMs;
    const tick = setInterval(() => {
      if (mode !== 'window') clearInterval(tick);
      else pump();
    }, 5);
    pump();
  } else if (m.cmd === 'rate') {
    mode = 'rate';
    rate = m.rate;
    until = now() + m.durationMs;
    startedAt = now();
    startedCount = published;
    const tick = setInterval(() => {
      if (mode !== 'rate') return clearInterval(tick);
      const t = now();
      if (t >= until) {
        clearInterval(tick);
        return finish();
      }
      const due = Math.floor(((t - startedAt) / 1000) * rate) - (published - startedCount);
      for (let i = 0; i < due; i++) publishOne();
    }, 2);
  } else if (m.cmd === 'stop') {
    if (mode) finish();
  } else if (m.cmd === 'close') {
    Promise.resolve(closeAll()).finally(() => process.exit(0));
  }
});
process.send({ cmd: 'up' });
