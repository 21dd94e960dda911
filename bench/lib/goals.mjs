// The goals of the performance round (issue 23) against one run's JSON lines: each figure, its
// ratio to plain `ws` (or Socket.IO) taken within the run, the goal and whether the run met it.
// Printed by run.mjs after its table; `node bench/goals.mjs bench/results/<run>.jsonl` for an
// earlier run. A goal whose scenarios are not in the file is left out.
import { load } from './report.mjs';

const x = (v) => `${v.toFixed(2)}x`;
const n = (v, d = 1) => Number(v).toFixed(d);

/** Rows of [figure, values, ratio, goal, met]; `met` is true, false, or undefined (not measured). */
export function goalRows(rows) {
  const pick = (scenario, target, filter = () => true) =>
    rows.filter((r) => r.scenario === scenario && r.target === target && !r.error && filter(r)).at(-1);
  const out = [];
  const add = (figure, values, ratio, goal, met) => out.push([figure, values, ratio, goal, met]);

  const at5k = (r) => r.connections === 5000;
  const idleWs = pick('idle', 'ws', at5k);
  const idleLb = pick('idle', 'livebus', at5k);
  if (idleWs && idleLb) {
    const rss = idleLb.rss_per_conn_kb / idleWs.rss_per_conn_kb;
    add(
      'RSS per idle connection, 5 000 (KB)',
      `${n(idleWs.rss_per_conn_kb, 2)} / ${n(idleLb.rss_per_conn_kb, 2)}`,
      x(rss),
      '≤ 1.2x ws',
      rss <= 1.2,
    );
    const heap = idleLb.heap_per_conn_kb / idleWs.heap_per_conn_kb;
    add(
      'JS heap per idle connection, 5 000 (KB)',
      `${n(idleWs.heap_per_conn_kb, 2)} / ${n(idleLb.heap_per_conn_kb, 2)}`,
      x(heap),
      '≤ 1.3x ws',
      heap <= 1.3,
    );
    const hs = idleLb.handshake_p99_ms / idleWs.handshake_p99_ms;
    add(
      'handshake p99 while 5 000 connect (ms)',
      `${n(idleWs.handshake_p99_ms, 0)} / ${n(idleLb.handshake_p99_ms, 0)}`,
      x(hs),
      '≤ 1.5x ws',
      hs <= 1.5,
    );
  }

  const one = (t) => pick('fanout', t, (r) => (r.instances ?? 1) === 1);
  const [fw, fs, fl] = [one('ws'), one('socketio'), one('livebus')];
  if (fw && fs && fl) {
    const vsSio = fl.events_per_s / fs.events_per_s;
    const vsWs = fl.events_per_s / fw.events_per_s;
    add(
      'fan-out: events per second, ws / Socket.IO / livebus',
      `${n(fw.events_per_s / 1000)} / ${n(fs.events_per_s / 1000)} / ${n(fl.events_per_s / 1000)} k`,
      `${x(vsSio)} Socket.IO, ${x(vsWs)} ws`,
      '≥ Socket.IO, ≥ 0.5x ws',
      vsSio >= 1 && vsWs >= 0.5,
    );
    const perCpu = fl.events_per_cpu_s / fw.events_per_cpu_s;
    add(
      'fan-out: events per server CPU-second',
      `${n(fw.events_per_cpu_s / 1000)} / ${n(fl.events_per_cpu_s / 1000)} k`,
      x(perCpu),
      '≥ 0.7x ws',
      perCpu >= 0.7,
    );
    const pub = (fl.publisher_cpu_s / fl.events) * 1e6;
    const redis = (fl.redis_cpu_s / fl.events) * 1e6;
    add(
      'fan-out: publisher / Redis CPU per event (µs)',
      `${n(pub)} / ${n(redis)}`,
      '',
      '≤ 15 / ≤ 20',
      pub <= 15 && redis <= 20,
    );
    const p99 = fl.p99_ms / fw.p99_ms;
    add('fan-out latency p99 (ms)', `${n(fw.p99_ms, 0)} / ${n(fl.p99_ms, 0)}`, x(p99), '≤ 2x ws', p99 <= 2);
  }

  const [rw, rl] = [pick('rate', 'ws'), pick('rate', 'livebus')];
  if (rw && rl) {
    const p99 = rl.p99_ms / rw.p99_ms;
    add('1 000 events/s: latency p99 (ms)', `${n(rw.p99_ms, 2)} / ${n(rl.p99_ms, 2)}`, x(p99), '≤ 1.5x ws', p99 <= 1.5);
    const cpu = rl.server_cores / rw.server_cores;
    add(
      '1 000 events/s: server CPU (cores)',
      `${n(rw.server_cores, 3)} / ${n(rl.server_cores, 3)}`,
      x(cpu),
      '≤ 1.5x ws',
      cpu <= 1.5,
    );
  }

  const [sw, sl] = [pick('storm', 'ws'), pick('storm', 'livebus')];
  if (sw && sl) {
    const cpu = sl.server_cpu_to_all_back_s / sw.server_cpu_to_all_back_s;
    add(
      'storm: server CPU, restart to all back (s)',
      `${n(sw.server_cpu_to_all_back_s, 2)} / ${n(sl.server_cpu_to_all_back_s, 2)}`,
      x(cpu),
      '≤ 1.3x ws',
      cpu <= 1.3,
    );
    const back = sl.all_back_ms / sw.all_back_ms;
    add(
      'storm: kill to all 2 000 back (ms)',
      `${n(sw.all_back_ms, 0)} / ${n(sl.all_back_ms, 0)}`,
      x(back),
      '≤ 1.1x ws',
      back <= 1.1,
    );
    add(
      'storm: `/healthz` p99 (ms), failures',
      `${n(sl.healthz_p99_ms, 0)}, ${sl.healthz_failures}`,
      '',
      '< 100 ms, 0 failures',
      sl.healthz_p99_ms < 100 && sl.healthz_failures === 0,
    );
  }

  // Every livebus scenario of the run: nothing lost, duplicated or misrouted.
  const livebus = rows.filter((r) => r.target === 'livebus' && !r.error && r.lost !== undefined);
  if (livebus.length > 0) {
    const sum = (k) => livebus.reduce((s, r) => s + (r[k] ?? 0), 0);
    const [lost, dup, misrouted] = [sum('lost'), sum('dup'), sum('misrouted')];
    add(
      'lost / duplicated / misrouted, every scenario',
      `${lost} / ${dup} / ${misrouted}`,
      '',
      '0',
      lost + dup + misrouted === 0,
    );
  }
  return out;
}

/** The goals as a markdown table, with how many of those measured the run met. */
export function goals(file) {
  const rows = goalRows(load(file));
  if (rows.length === 0) return '';
  const lines = [
    '| figure (issue 23) | plain ws (, Socket.IO) / livebus | livebus / peer | goal | met |',
    '| --- | ---: | ---: | --- | --- |',
  ];
  for (const [figure, values, ratio, goal, met] of rows)
    lines.push(`| ${figure} | ${values} | ${ratio} | ${goal} | ${met ? 'yes' : 'no'} |`);
  const met = rows.filter((r) => r[4]).length;
  lines.push(
    '',
    `${met} of ${rows.length} goals met in this run. The browser client's size, the last goal, is`,
    "not a run's: `node bench/bundle-size.mjs` (and the test suite's budget).",
  );
  return lines.join('\n');
}
