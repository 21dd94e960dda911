// Turns the JSON lines of a run into the side-by-side markdown table.
import { readFileSync } from 'node:fs';

export function load(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
const k = (v) => (v === undefined ? '-' : `${(v / 1000).toFixed(1)} k`);

export function table(file) {
  const rows = load(file);
  const pick = (scenario, target, filter = () => true) =>
    rows.filter((r) => r.scenario === scenario && r.target === target && !r.error && filter(r)).at(-1);
  const one = (t) => pick('fanout', t, (r) => (r.instances ?? 1) === 1);
  const lines = [];
  const figures = [
    ['start to ready, median (ms)', (t) => pick('startup', t)?.ready_ms_median, (v) => fmt(v, 0), 'lower'],
    ...[1_000, 5_000, 10_000].map((n) => [
      `RSS per idle connection, ${n / 1000} k (KB)`,
      (t) => pick('idle', t, (r) => r.connections === n)?.rss_per_conn_kb,
      (v) => fmt(v, 1),
      'lower',
    ]),
    [
      'all idle clients closing at once: server CPU per connection (µs)',
      (t) => pick('idle-close', t)?.close_cpu_us_per_conn,
      (v) => fmt(v, 0),
      'lower',
    ],
    ['fan-out: events per server CPU-second', (t) => one(t)?.events_per_cpu_s, k, 'higher'],
    ['fan-out: events per second', (t) => one(t)?.events_per_s, k, 'higher'],
    ['fan-out latency p50 (ms)', (t) => one(t)?.p50_ms, (v) => fmt(v, 0), 'lower'],
    ['fan-out latency p99 (ms)', (t) => one(t)?.p99_ms, (v) => fmt(v, 0), 'lower'],
    ...[2, 3].map((n) => [
      `fan-out, ${n} instances: events per server CPU-second (all instances)`,
      (t) => pick('fanout', t, (r) => r.instances === n)?.events_per_cpu_s,
      k,
      'higher',
    ]),
    ['1 000 events/s: p50 (ms)', (t) => pick('rate', t)?.p50_ms, (v) => fmt(v, 1), 'lower'],
    ['1 000 events/s: p99 (ms)', (t) => pick('rate', t)?.p99_ms, (v) => fmt(v, 1), 'lower'],
    ['1 000 events/s: server CPU (cores)', (t) => pick('rate', t)?.server_cores, (v) => fmt(v, 3), 'lower'],
    ['storm: kill to ready (ms)', (t) => pick('storm', t)?.kill_to_ready_ms, (v) => fmt(v, 0), 'lower'],
    ['storm: all clients back (ms after kill)', (t) => pick('storm', t)?.all_back_ms, (v) => fmt(v, 0), 'lower'],
    ['storm: /healthz p99 (ms)', (t) => pick('storm', t)?.healthz_p99_ms, (v) => fmt(v, 1), 'lower'],
    ['storm: /healthz max (ms)', (t) => pick('storm', t)?.healthz_max_ms, (v) => fmt(v, 1), 'lower'],
    ['storm: /healthz failures (1 s timeout)', (t) => pick('storm', t)?.healthz_failures, (v) => fmt(v, 0), 'none'],
    ['storm: events lost', (t) => pick('storm', t)?.lost, (v) => fmt(v, 0), 'none'],
    [
      'detach churn: server CPU per reconnect (ms)',
      (t) => pick('churn', t)?.cpu_ms_per_reconnect,
      (v) => fmt(v, 2),
      'lower',
    ],
    ['detach churn: /healthz p99 (ms)', (t) => pick('churn', t)?.healthz_p99_ms, (v) => fmt(v, 1), 'lower'],
    [
      'detach churn: counts match sessions after, zero when all left',
      (t) => {
        const r = pick('churn', t);
        return r && r.settled_ok !== undefined
          ? `${r.settled_ok ? 'yes' : 'no'} / ${r.empty_ok ? 'yes' : 'no'}`
          : undefined;
      },
      (v) => v ?? '-',
      'none',
    ],
    [
      'lost / duplicated / misrouted, all scenarios',
      (t) => {
        const rs = rows.filter((r) => ['fanout', 'rate', 'storm'].includes(r.scenario) && r.target === t && !r.error);
        return rs.length
          ? rs.reduce((a, r) => [a[0] + r.lost, a[1] + r.dup, a[2] + r.misrouted], [0, 0, 0])
          : undefined;
      },
      (v) => (v ? v.join(' / ') : '-'),
      'none',
    ],
  ];
  const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  lines.push('| figure | plain ws | Socket.IO 4 + redis-adapter | livebus | livebus / ws | livebus / Socket.IO |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, get, f, better] of figures) {
    const [w, s, l] = ['ws', 'socketio', 'livebus'].map(get);
    if (w === undefined && s === undefined && l === undefined) continue;
    const r = better === 'none' ? ['', ''] : [ratio(l, w), ratio(l, s)];
    lines.push(`| ${name} | ${f(w)} | ${f(s)} | ${f(l)} | ${r[0]} | ${r[1]} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  console.log(table(process.argv[2]));
}
