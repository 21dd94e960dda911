// What Redis spends per published event, counted in instructions (deterministic, unlike CPU
// time on a shared machine): a private redis-server runs under valgrind's callgrind, the
// publisher sends the fan-out's traffic (publish() calls, `--window` in flight, users
// round-robin; each appendMany call carries up to 128 users, and with the outbox's rounds of up
// to 2 000 events and the defaults here, two events each), and
// only the measured events are counted (instrumentation is switched on after a warm-up round that
// creates every user's meta, and off before the shutdown). Prints instructions per event in
// total and for the main parts: the Lua VM, the commands the script calls, reply building.
//
//   node bench/redis-instructions.mjs [--events 10000] [--users 1000] [--window 2000]
//     [--publisher <path of another build's index.js, to compare>] [--keep <callgrind out file>]
//     [--subscribe no (no subscriber: SPUBLISH delivers to nobody)]
// Needs valgrind (callgrind_control, callgrind_annotate) and redis-server on the PATH.
// Compare builds with the same arguments: the counts repeat to within a fraction of a percent.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { userKeys } from '@livebus/publisher/redis';
import Redis from 'ioredis';
import { freePort, sleep } from './lib/common.mjs';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '10000' },
    users: { type: 'string', default: '1000' },
    window: { type: 'string', default: '2000' },
    publisher: { type: 'string', default: '@livebus/publisher' },
    keep: { type: 'string' },
    subscribe: { type: 'string', default: 'yes' },
  },
});
const { createPublisher } = await import(values.publisher);
const n = Number(values.events);
const users = Number(values.users);
const window = Number(values.window);

const port = await freePort();
const out = values.keep ?? join(tmpdir(), `redis-instructions.${process.pid}.cg`);
const server = spawn(
  'valgrind',
  [
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${out}`,
    'redis-server',
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ],
  { stdio: 'ignore' },
);
const url = `redis://127.0.0.1:${port}`;
const admin = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
admin.on('error', () => {});
for (let i = 0; ; i++) {
  try {
    await admin.connect();
    await admin.ping();
    break;
  } catch {
    if (i > 300) throw new Error('redis-server under valgrind did not start');
    admin.disconnect();
    await sleep(100);
  }
}
const publisher = createPublisher({ redisUrl: url });
// One subscriber of every user's channel, as a gateway is: SPUBLISH then writes each event to it.
const subscriber = new Redis(url);
let heard = 0;
if (values.subscribe !== 'no') {
  for (let u = 0; u < users; u += 100) {
    const channels = [];
    for (let k = u; k < Math.min(users, u + 100); k++) channels.push(userKeys(`u${k}`).channel);
    await subscriber.ssubscribe(...channels);
  }
  subscriber.on('smessageBuffer', () => heard++);
}

const eventOf = (u, i) => ({
  event: 'task.progress_update',
  data: { task_id: `${u}.${i}`, status: 'running', progress: 50, message: String(1_700_000_000_000 + i) },
});

/** count publish() calls, users round-robin, at most `window` in flight. */
async function publishAll(count) {
  let next = 0;
  let done = 0;
  await new Promise((resolve, reject) => {
    const pump = () => {
      while (next < count && next - done < window) {
        const i = next++;
        publisher.publish(`u${i % users}`, eventOf(i % users, i)).then(() => {
          done++;
          if (done === count) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
}

const control = (...args) => execFileSync('callgrind_control', [...args, String(server.pid)], { stdio: 'ignore' });

await publishAll(Math.max(users, 2000)); // warm-up: scripts loaded, every user's meta and stream made
control('-i', 'on');
await publishAll(n);
control('-i', 'off');
await publisher.close();
subscriber.disconnect();
await admin.shutdown('NOSAVE').catch(() => {});
admin.disconnect();
await new Promise((resolve) => server.once('exit', resolve));

// The file may be named <out>.<pid> when valgrind adds the pid.
const file = existsSync(out) ? out : `${out}.${server.pid}`;
const annotate = (...args) =>
  execFileSync('callgrind_annotate', [...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
const total = Number(/([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/.exec(annotate())?.[1]?.replaceAll(',', '') ?? Number.NaN);
const inclusive = annotate('--inclusive=yes', '--threshold=100');
const of = (fn) => {
  let best = 0;
  for (const line of inclusive.split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+\S*?:(\S+?)(?: \[|$)/.exec(line);
    if (m && m[2] === fn) best = Math.max(best, Number(m[1].replaceAll(',', '')));
  }
  return best;
};
const per = (x) => (x / n).toFixed(0).padStart(7);
// Inclusive counts by function name (the names a stripped redis-server keeps; Lua's own are
// addresses): the parts overlap as the call tree nests them.
const parts = [
  ['EVALSHA in all', 'evalShaCommand'],
  ['  the script (lua_pcall)', 'lua_pcall'],
  ['    redis.call: the commands, argument checks', 'scriptCall'],
  ['      HMGET', 'hmgetCommand'],
  ['      XADD', 'xaddCommand'],
  ['      SPUBLISH', 'spublishCommand'],
  ['      HSET', 'hsetCommand'],
  ['    redis.call: replies made Lua values', 'parseReply'],
  ['    tonumber (strtod)', 'strtod'],
  ['    string.format and number conversions (vfprintf)', '__vfprintf_internal'],
  ['requests read and run (readQueryFromClient; replies are written outside it)', 'readQueryFromClient'],
];
console.log(
  `${n} events, ${users} users round-robin, ${window} in flight, ${values.subscribe === 'no' ? 'no subscriber' : 'one subscriber of every channel'}; instructions per event:`,
);
console.log(`${per(total)}  total (redis-server, every thread)`);
for (const [name, fn] of parts) console.log(`${per(of(fn))}  ${name}`);
if (values.subscribe !== 'no' && heard < n) console.log(`(the subscriber heard ${heard} of ${n} events)`);
if (values.keep) console.log(`callgrind output kept in ${file}`);
else rmSync(file, { force: true });
