// What measuring the delivery latency costs per event: DeliveryLatency.prepare (reads the
// origin from the frame's text) and record (one histogram increment), on the frames the
// bus stores, against the same loop without them. Prints ns per event.
//
//   node bench/delivery-cost.mjs [--events 2000000]
import { parseArgs } from 'node:util';
import { DeliveryLatency } from '@livebus/gateway';

const { values } = parseArgs({ options: { events: { type: 'string', default: '2000000' } } });
const n = Number(values.events);
const frame = (event, data) => JSON.stringify({ type: 'event', cursor: 'AbCdEfGh:12345', ts: Date.now(), event, data });
const frames = [
  frame('listener.change', {
    source: 'firestore',
    path: 'users/u1/notifications/n1',
    change: 'modified',
    data: { title: 'hello', body: 'x'.repeat(200), sent_at: 1 },
    listener: 'notifications',
    initial: false,
    update_time: '2026-12-02T16:00:00.123456Z',
  }),
  frame('task.progress_update', { task_id: 't1', status: 'running', progress: 40 }),
  frame('session.notice', { level: 'info', message: 'hello' }),
];

function run(measure) {
  const latency = new DeliveryLatency();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const text = frames[i % frames.length];
    sink += text.length; // the loop's own work, the same with and without
    if (measure && latency.prepare(text)) latency.record();
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  return { ns, sink };
}
for (let round = 0; round < 3; round++) {
  const base = run(false);
  const measured = run(true);
  console.log(
    `round ${round + 1}: ${(measured.ns - base.ns).toFixed(0)} ns per event (${measured.ns.toFixed(0)} with, ${base.ns.toFixed(0)} without)`,
  );
}
