// What Redis spends per published event, counted in instructions (deterministic, unlike CPU
// time on a shared machine): a private redis-server runs under valgrind's callgrind, the
// publisher sends the fan-out's traffic (publish() calls, `--window` in flight, users
// round-robin, so each appendMany call carries up to 128 users with one event each), and
// only the measured events are counted (instrumentation is switched on after a warm-up round that
// creates every user's meta, and off before the shutdown). Prints instructions per event in
// total and for the main parts: the Lua VM, the commands the script calls, reply building.
//
//   node bench/redis-instructions.mjs [--events 10000] [--users 1000] [--window 2000]
//     [--publisher <path of another build's index.js, to compare>] [--keep <callgrind out file>]
// Needs valgrind (callgrind_control, callgrind_annotate) and redis-server on the PATH.
// Compare builds with the same arguments: the counts repeat to within a fraction of a percent.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { freePort, sleep } from './lib/common.mjs';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '10000' },
    users: { type: 'string', default: '1000' },
    window: { type: 'string', default: '2000' },
    publisher: { type: 'string', default: '@livebus/publisher' },
    keep: { type: 'string' },
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
    const m = /^\s*([\d,]+) \([^)]*\)\s+\S+:(\S+?)(?: \[|$)/.exec(line);
    if (m && m[2] === fn) best = Math.max(best, Number(m[1].replaceAll(',', '')));
  }
  return best;
};
const per = (x) => (x / n).toFixed(0).padStart(7);
const parts = {
  'EVAL(SHA) in all': of('evalGenericCommand'),
  '  XADD': of('xaddCommand'),
  '  SPUBLISH': of('spublishCommand'),
  '  HSET': of('hsetCommand'),
  '  HMGET': of('hmgetCommand'),
  '  INFO (once per call)': of('infoCommand'),
  '  lua -> redis command (luaRedisGenericCommand)': of('luaRedisGenericCommand'),
  '  reply to lua (redisProtocolToLuaType)': of('redisProtocolToLuaType'),
  '  lua reply to client (luaReplyToRedisReply)': of('luaReplyToRedisReply'),
  'reading requests (processInputBuffer)': of('processInputBuffer'),
  'writing replies (writeToClient)': of('writeToClient'),
};
console.log(`${n} events, ${users} users round-robin, ${window} in flight; instructions per event:`);
console.log(`${per(total)}  total (redis-server, every thread)`);
for (const [name, x] of Object.entries(parts)) console.log(`${per(x)}  ${name}`);
console.log('  Lua VM (luaV_execute, self and callees outside redis commands):', (of('luaV_execute') / n).toFixed(0));
if (values.keep) console.log(`callgrind output kept in ${file}`);
else rmSync(file, { force: true });
