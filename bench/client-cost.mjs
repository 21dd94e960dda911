// The client's CPU per received event at a fixed event rate, the same for every client: 1 000
// sessions of the real client (`BusConsumer`) against 1 000 plain `ws` clients that JSON.parse
// each message (the fan-out scenario's two clients). A stand-in server (plain `ws`, no Redis)
// sends each session the frames a gateway would, at `--rate` events per second in all, so the
// load process's CPU is the clients' alone and does not depend on how fast a gateway can go.
//
//   node bench/client-cost.mjs [--clients 1000] [--rate 10000] [--seconds 5] [--rounds 2]
//                              [--targets livebus,ws,ws-livebus-frames] [--consumer path/to/dist/index.js]
//
// --consumer compares another build of the client (for before/after). Prints one JSON line per
// run: load_cpu_s over the measured seconds, and µs per event split into user and system time.
// LOAD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the load process.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { now, sleep } from './lib/common.mjs';

const here = fileURLToPath(import.meta.url);
const { values: a } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    clients: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    targets: { type: 'string', default: 'livebus,ws' },
    consumer: { type: 'string' },
    target: { type: 'string' },
    port: { type: 'string' },
  },
});

/** Sends a request to a child and waits for the reply named `reply`. */
function request(child, message, reply) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.cmd !== reply) return;
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
    if (message) child.send(message);
  });
}

// ---- the stand-in server: welcome, then event frames at the asked rate -------------------------

function server() {
  const epoch = 'AbCdEfGh';
  const sessions = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    // Plain clients get `{u,s,t}` (the ws target of run.mjs), or with `frames=livebus` livebus's event frames.
    const plain = req.url.includes('plain=') && !req.url.includes('frames=livebus');
    const session = { ws, plain, u: sessions.length, offset: 0 };
    ws.on('error', () => {});
    if (req.url.includes('plain=')) {
      ws.send('{"type":"welcome"}');
      sessions.push(session);
      return;
    }
    ws.once('message', (data) => {
      const hello = JSON.parse(data);
      const welcome = {
        type: 'welcome',
        v: 1,
        session_id: hello.session_id,
        user_id: `u${session.u}`,
        instance_id: 'client-cost',
        heartbeat: { ping_interval_ms: 20_000, ping_timeout_ms: 60_000 },
        resume: { status: 'fresh', cursor: `${epoch}:0`, replayed: 0 },
      };
      ws.send(JSON.stringify(welcome));
      sessions.push(session);
    });
  });
  // The frames as the gateway writes them (the publisher's text, cursor and ts in front).
  const frame = (s, t) =>
    s.plain
      ? JSON.stringify({ u: s.u, s: s.offset, t })
      : JSON.stringify({
          type: 'event',
          cursor: `${epoch}:${s.offset}`,
          ts: Date.now(),
          event: 'task.progress_update',
          data: { task_id: `${s.u}.${s.offset}`, status: 'running', progress: 50, message: String(t) },
        });
  let next = 0;
  process.on('message', async (m) => {
    if (m.cmd === 'send') {
      // Round-robin over the sessions, paced every 2 ms.
      const t0 = now();
      let sent = 0;
      while (now() - t0 < m.ms) {
        const due = Math.floor(((now() - t0) / 1000) * m.rate) - sent;
        for (let k = 0; k < due; k++) {
          const s = sessions[next];
          next = (next + 1) % sessions.length;
          s.offset++;
          s.ws.send(frame(s, now()));
        }
        sent += Math.max(0, due);
        await sleep(2);
      }
      process.send({ cmd: 'sent', sent });
    } else if (m.cmd === 'close') process.exit(0);
  });
  wss.on('listening', () => process.send({ cmd: 'up', port: wss.address().port }));
}

// ---- the load: the clients, counting what they receive ----------------------------------------------

async function load() {
  let received = 0;
  let misrouted = 0;
  const url = `ws://127.0.0.1:${a.port}/ws`;
  const n = Number(a.clients);
  let open;
  if (a.target === 'livebus') {
    const { BusConsumer } = await import(
      a.consumer ? pathToFileURL(path.resolve(a.consumer)).href : '@livebus/bus-consumer'
    );
    open = async (i) => {
      const c = new BusConsumer({ url, token: 'client-cost' });
      // What the fan-out's load process does with each event.
      c.onAny((frame) => {
        const [u, s] = frame.data.task_id.split('.');
        received++;
        if (Number(u) + Number(s) + Number(frame.data.message) < 0) misrouted++;
      });
      c.onClient('error', () => {});
      await c.connect();
      return i;
    };
  } else {
    // `ws`: run.mjs's plain client. `ws-livebus-frames`: the same client receiving livebus's event
    // frames, which tells the cost of the bigger frame from the cost of the client's own work.
    const frames = a.target === 'ws-livebus-frames';
    open = (i) =>
      new Promise((resolve) => {
        const ws = new WebSocket(`${url}?plain=${i}${frames ? '&frames=livebus' : ''}`);
        let welcomed = false;
        ws.on('message', (data) => {
          if (!welcomed) {
            welcomed = true;
            resolve(i);
            return;
          }
          const m = JSON.parse(data);
          received++;
          if (frames) {
            const [u, s] = m.data.task_id.split('.');
            if (Number(u) + Number(s) + Number(m.data.message) < 0) misrouted++;
          } else if (m.u + m.s + m.t < 0) misrouted++;
        });
        ws.on('error', () => {});
      });
  }
  // One at a time, so the server numbers sessions in order.
  for (let i = 0; i < n; i++) await open(i);
  process.on('message', (m) => {
    if (m.cmd === 'mark') process.send({ cmd: 'mark', received, misrouted, cpu: process.cpuUsage() });
    else if (m.cmd === 'close') process.exit(0); // an exit, not a kill: a profile gets written
  });
  process.send({ cmd: 'up' });
}

// ---- main ---------------------------------------------------------------------------------------

async function measure(target) {
  const srv = fork(here, ['--role', 'server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await request(srv, null, 'up');
  const args = ['--role', 'load', '--target', target, '--port', String(port), '--clients', a.clients];
  if (a.consumer) args.push('--consumer', a.consumer);
  const execArgv = (process.env.LOAD_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const ld = fork(here, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  try {
    await request(ld, null, 'up');
    const rate = Number(a.rate);
    await request(srv, { cmd: 'send', rate, ms: 1_500 }, 'sent'); // warm-up
    await sleep(300);
    const m0 = await request(ld, { cmd: 'mark' }, 'mark');
    const { sent } = await request(srv, { cmd: 'send', rate, ms: Number(a.seconds) * 1000 }, 'sent');
    const until = now() + 5_000;
    let m1 = await request(ld, { cmd: 'mark' }, 'mark');
    while (m1.received - m0.received < sent && now() < until) {
      await sleep(20);
      m1 = await request(ld, { cmd: 'mark' }, 'mark');
    }
    const events = m1.received - m0.received;
    const user = (m1.cpu.user - m0.cpu.user) / 1e6;
    const system = (m1.cpu.system - m0.cpu.system) / 1e6;
    const line = {
      bench: 'client-cost',
      target,
      consumer: target === 'livebus' ? (a.consumer ?? 'workspace') : undefined,
      clients: Number(a.clients),
      rate,
      sent,
      events,
      load_cpu_s: user + system,
      us_per_event: ((user + system) / events) * 1e6,
      user_us_per_event: (user / events) * 1e6,
      system_us_per_event: (system / events) * 1e6,
      at: new Date().toISOString(),
    };
    console.log(JSON.stringify(line));
  } finally {
    const exited = new Promise((resolve) => ld.once('exit', resolve));
    if (ld.connected) ld.send({ cmd: 'close' });
    await Promise.race([exited, sleep(10_000)]);
    ld.kill('SIGKILL');
    srv.kill('SIGKILL');
  }
}

if (a.role === 'server') server();
else if (a.role === 'load') await load();
else {
  for (let round = 0; round < Number(a.rounds); round++) {
    for (const target of a.targets.split(',')) await measure(target);
  }
}
