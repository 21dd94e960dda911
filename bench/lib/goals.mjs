// The goals of the performance round (issue 23) against one run's JSON lines: each figure, its
// ratio to plain `ws` (or Socket.IO) taken within the run, the goal and whether the run met it.
// Printed by run.mjs after its table; `node bench/goals.mjs bench/results/<run>.jsonl` for an
// earlier run, or several runs side by side ({@link goalsAcross}). A goal whose scenarios are not
// in the file is left out.
import { load } from './report.mjs';

const x = (v) => `${v.toFixed(2)}x`;
const n = (v, d = 1) => Number(v).toFixed(d);

/** Rows of [figure, values, ratio, goal, met]. */
export function goalRows(rows) {
  const pick = (scenario, target, filter = () => true) =>
    rows.filter((r) => r.scenario === scenario && r.target === target && !r.error && filter(r)).at(-1);
  const out = [];
  const add = (figure, values, ratio, goal, met) => out.push([figure, values, ratio, goal, met]);
  /** A figure of livebus against plain `ws` in the same run, met when the ratio is at most `most`. */
  const atMost = (figure, ws, livebus, field, digits, most) => {
    const ratio = livebus[field] / ws[field];
    add(figure, `${n(ws[field], digits)} / ${n(livebus[field], digits)}`, x(ratio), `≤ ${most}x ws`, ratio <= most);
  };

  const at5k = (r) => r.connections === 5000;
  const [iw, il] = [pick('idle', 'ws', at5k), pick('idle', 'livebus', at5k)];
  if (iw && il) {
    atMost('RSS per idle connection, 5 000 (KB)', iw, il, 'rss_per_conn_kb', 2, 1.2);
    atMost('JS heap per idle connection, 5 000 (KB)', iw, il, 'heap_per_conn_kb', 2, 1.3);
    atMost('handshake p99 while 5 000 connect (ms)', iw, il, 'handshake_p99_ms', 0, 1.5);
  }

  const one = (t) => pick('fanout', t, (r) => (r.instances ?? 1) === 1);
  const [fw, fs, fl] = [one('ws'), one('socketio'), one('livebus')];
  if (fw && fs && fl) {
    const vsSio = fl.events_per_s / fs.events_per_s;
    const vsWs = fl.events_per_s / fw.events_per_s;
    const k = (r) => n(r.events_per_s / 1000);
    add(
      'fan-out: events per second, ws / Socket.IO / livebus',
      `${k(fw)} / ${k(fs)} / ${k(fl)} k`,
      `${x(vsSio)} Socket.IO, ${x(vsWs)} ws`,
      '≥ Socket.IO, ≥ 0.5x ws',
      vsSio >= 1 && vsWs >= 0.5,
    );
    const perCpu = fl.events_per_cpu_s / fw.events_per_cpu_s;
    const cpuK = (r) => n(r.events_per_cpu_s / 1000);
    add('fan-out: events per server CPU-second', `${cpuK(fw)} / ${cpuK(fl)} k`, x(perCpu), '≥ 0.7x ws', perCpu >= 0.7);
    const [pub, redis] = [fl.publisher_cpu_s, fl.redis_cpu_s].map((s) => (s / fl.events) * 1e6);
    add(
      'fan-out: publisher / Redis CPU per event (µs)',
      `${n(pub)} / ${n(redis)}`,
      '',
      '≤ 15 / ≤ 20',
      pub <= 15 && redis <= 20,
    );
    atMost('fan-out latency p99 (ms)', fw, fl, 'p99_ms', 0, 2);
  }

  const [rw, rl] = [pick('rate', 'ws'), pick('rate', 'livebus')];
  if (rw && rl) {
    atMost('1 000 events/s: latency p99 (ms)', rw, rl, 'p99_ms', 2, 1.5);
    atMost('1 000 events/s: server CPU (cores)', rw, rl, 'server_cores', 3, 1.5);
  }

  const [sw, sl] = [pick('storm', 'ws'), pick('storm', 'livebus')];
  if (sw && sl) {
    atMost('storm: server CPU, restart to all back (s)', sw, sl, 'server_cpu_to_all_back_s', 2, 1.3);
    atMost('storm: kill to all 2 000 back (ms)', sw, sl, 'all_back_ms', 0, 1.1);
    const healthy = sl.healthz_p99_ms < 100 && sl.healthz_failures === 0;
    add(
      'storm: `/healthz` p99 (ms), failures',
      `${n(sl.healthz_p99_ms, 0)}, ${sl.healthz_failures}`,
      '',
      '< 100 ms, 0 failures',
      healthy,
    );
  }

  // Every livebus scenario of the run: nothing lost, duplicated or misrouted.
  const livebus = rows.filter((r) => r.target === 'livebus' && !r.error && r.lost !== undefined);
  if (livebus.length > 0) {
    const sum = (key) => livebus.reduce((total, r) => total + (r[key] ?? 0), 0);
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

/**
 * Several runs side by side: each goal's ratio in each run (its values where it has no ratio), a
 * miss in bold, `-` where the run did not measure it, and in how many of the runs it was met. A
 * goal "in every run" is met only when every run measured and met it.
 */
export function goalsAcross(files) {
  const runs = files.map((file) => new Map(goalRows(load(file)).map((row) => [row[0], row])));
  // In the order of the run that measured the most, then any the others add.
  const fullest = runs.reduce((a, b) => (b.size > a.size ? b : a), new Map());
  const figures = [...new Set([...fullest.keys(), ...runs.flatMap((run) => [...run.keys()])])];
  if (figures.length === 0) return '';
  const lines = [
    `| figure (issue 23) | ${files.map((_, i) => `run ${i + 1}`).join(' | ')} | goal | met in |`,
    `| --- | ${files.map(() => '---').join(' | ')} | --- | --- |`,
  ];
  for (const figure of figures) {
    const rows = runs.map((run) => run.get(figure));
    const cells = rows.map((row) => {
      if (!row) return '-';
      const [, values, ratio, , met] = row;
      return met ? ratio || values : `**${ratio || values}**`;
    });
    const measured = rows.filter(Boolean);
    const missing = rows.length - measured.length;
    const met = `${measured.filter((r) => r[4]).length} of ${rows.length}${missing ? ` (${missing} not measured)` : ''}`;
    lines.push(`| ${figure} | ${cells.join(' | ')} | ${measured[0][3]} | ${met} |`);
  }
  const perRun = runs.map((run) => `${[...run.values()].filter((r) => r[4]).length} of ${run.size}`);
  const every = runs.every((run) => run.size === figures.length && [...run.values()].every((r) => r[4]));
  lines.push(
    '',
    `Goals met per run (of those it measured): ${perRun.join(', ')}. Every goal measured and met in every run: ${every ? 'yes' : 'no'}.`,
    "The browser client's size, the last goal, is not a run's: `node bench/bundle-size.mjs`.",
  );
  return lines.join('\n');
}
