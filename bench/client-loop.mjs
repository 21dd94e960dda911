// The client's own work per event, without sockets: a `BusConsumer` on a stand-in WebSocket is
// handed `--events` event frames per round, `--rounds` rounds, in a loop (the frames are made
// before the first round). `--raw` runs `JSON.parse` and the same handler instead of the client.
// Prints ns per event; meant to be counted under callgrind, where the difference between two
// round counts is the instructions of the loop alone:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node --single-threaded bench/client-loop.mjs --events 20000 --rounds 2   # then --rounds 8
//
// (instructions per event = (count with 8 rounds - count with 2) / (6 x events)).
//   node bench/client-loop.mjs [--events 20000] [--rounds 8] [--raw] [--consumer path/to/dist/index.js]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '8' },
    raw: { type: 'boolean', default: false },
    consumer: { type: 'string' },
  },
});
const n = Number(a.events);
const rounds = Number(a.rounds);
const { BusConsumer } = await import(
  a.consumer ? pathToFileURL(path.resolve(a.consumer)).href : '@livebus/bus-consumer'
);

/** A socket that opens at once and answers the hello with a welcome. */
let socket;
class StandInSocket {
  constructor() {
    this.readyState = 0;
    socket = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(text) {
    const hello = JSON.parse(text);
    if (hello.type !== 'hello') return;
    const welcome = {
      type: 'welcome',
      v: 1,
      session_id: hello.session_id,
      user_id: 'u1',
      instance_id: 'client-loop',
      heartbeat: { ping_interval_ms: 20_000, ping_timeout_ms: 60_000 },
      resume: { status: 'fresh', cursor: 'AbCdEfGh:0', replayed: 0 },
    };
    setTimeout(() => this.onmessage({ data: JSON.stringify(welcome) }), 0);
  }
  close() {}
}

let received = 0;
let wrong = 0;
// What the fan-out's load process does with each event.
const handle = (data) => {
  const [u, s] = data.task_id.split('.');
  received++;
  if (Number(u) + Number(s) + Number(data.message) < 0) wrong++;
};
const client = new BusConsumer({ url: 'ws://127.0.0.1:1/ws', token: 'client-loop', WebSocket: StandInSocket });
client.onAny((frame) => handle(frame.data));
client.onClient('error', (error) => {
  console.error(error);
  process.exit(1);
});
await client.connect();

// The frames of every round first (8 rounds' worth whatever --rounds says, so that runs with
// different round counts make the same frames).
const frames = [];
let offset = 0;
for (let r = 0; r < Math.max(8, rounds); r++) {
  const round = [];
  for (let i = 0; i < n; i++) {
    offset++;
    round.push(
      JSON.stringify({
        type: 'event',
        cursor: `AbCdEfGh:${offset}`,
        ts: Date.now(),
        event: 'task.progress_update',
        data: { task_id: `1.${offset}`, status: 'running', progress: 50, message: String(performance.now()) },
      }),
    );
  }
  frames.push(round);
}

const times = [];
for (let r = 0; r < rounds; r++) {
  const round = frames[r];
  const t0 = process.hrtime.bigint();
  if (a.raw) for (let i = 0; i < n; i++) handle(JSON.parse(round[i]).data);
  else for (let i = 0; i < n; i++) socket.onmessage({ data: round[i] });
  times.push(Number(process.hrtime.bigint() - t0) / n);
}
times.sort((x, y) => x - y);
console.log(
  `${a.raw ? 'JSON.parse and the handler' : 'client'}: ${rounds} x ${n} events, median ${times[times.length >> 1].toFixed(0)} ns per event (${received} received, ${wrong} wrong)`,
);
client.close();
process.exit(0);
