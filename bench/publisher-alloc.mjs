// What the publisher allocates per event, by function: V8's sampling heap profiler, with the
// objects the young-generation collector frees counted too (they are most of them), while the
// real publisher publishes the fan-out's traffic (`publish()` calls, `--window` in flight, users
// round robin) into a private redis-server. Bytes are sampled (one sample per `--interval`
// bytes on average), so read them as shares and as a before/after in the same conditions; unlike
// CPU time they do not move with the machine's load.
//
//   node bench/publisher-alloc.mjs [--events 60000] [--users 1000] [--window 2000] [--interval 4096]
//     [--top 25] [--publisher <path of another build's index.js, to compare>]
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startRedis } from './lib/common.mjs';

const { values: a } = parseArgs({
  options: {
    events: { type: 'string', default: '60000' },
    users: { type: 'string', default: '1000' },
    window: { type: 'string', default: '2000' },
    interval: { type: 'string', default: '4096' },
    top: { type: 'string', default: '25' },
    publisher: { type: 'string' },
  },
});
const { createPublisher } = await import(
  a.publisher ? pathToFileURL(path.resolve(a.publisher)).href : '@livebus/publisher'
);
const users = Number(a.users);
const window = Number(a.window);
const n = Number(a.events);

const redis = await startRedis();
const publisher = createPublisher({ redisUrl: redis.url });
const seq = new Int32Array(users);
let next = 0;

/** Publishes `count` events, at most `window` unanswered at a time; resolves when all are stored. */
function run(count) {
  let inflight = 0;
  let sent = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    const pump = () => {
      while (inflight < window && sent < count) {
        const u = next;
        next = (next + 1) % users;
        const s = ++seq[u];
        inflight++;
        sent++;
        publisher
          .publish(`u${u}`, {
            event: 'task.progress_update',
            data: { task_id: `${u}.${s}`, status: 'running', progress: 50, message: String(performance.now()) },
          })
          .then(() => {
            inflight--;
            if (++done === count) resolve();
            else pump();
          }, reject);
      }
    };
    pump();
  });
}

try {
  await run(Math.min(n, 40_000)); // warm-up: the JIT, every user's meta
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(a.interval),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await run(n);
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  const bytes = new Map();
  const walk = (node) => {
    const f = node.callFrame;
    const where = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    bytes.set(where, (bytes.get(where) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  const total = [...bytes.values()].reduce((x, y) => x + y, 0);
  console.log(
    `${n} events, ${users} users, ${window} in flight: ${(total / n).toFixed(0)} bytes allocated per event (sampled)`,
  );
  for (const [where, b] of [...bytes].sort((x, y) => y[1] - x[1]).slice(0, Number(a.top))) {
    console.log(`${(b / n).toFixed(0).padStart(7)}  ${where}`);
  }
} finally {
  await publisher.close();
  redis.stop();
}
