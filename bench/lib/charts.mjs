// Hand-made SVG bar charts from the JSON lines of one run, for docs/benchmarks.md.
//   node bench/lib/charts.mjs <results.jsonl> <out-dir>
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { load } from './report.mjs';

const COLORS = { ws: '#7a7a7a', socketio: '#3b7dd8', livebus: '#e07b00' };
const LABELS = { ws: 'plain ws', socketio: 'Socket.IO 4', livebus: 'livebus' };
const TARGETS = ['ws', 'socketio', 'livebus'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** groups: [{ label, values: { ws, socketio, livebus } }] */
function barChart({ title, unit, groups, digits = 0 }) {
  const barH = 16;
  const gap = 10;
  const left = 190;
  const width = 640;
  const plotW = width - left - 90;
  let y = 44;
  const parts = [];
  for (const g of groups) {
    // Each group on its own scale: the figures of one chart can differ in unit and size.
    const max = Math.max(1e-9, ...TARGETS.map((t) => g.values[t] ?? 0));
    parts.push(`<text x="10" y="${y + barH * 1.5 + 4}" font-size="12">${esc(g.label)}</text>`);
    for (const t of TARGETS) {
      const v = g.values[t];
      const w = v === undefined ? 0 : Math.max(1, (v / max) * plotW);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[t]}"/>`);
      const text = v === undefined ? 'n/a' : `${Number(v).toFixed(digits)} ${unit}`;
      parts.push(`<text x="${left + w + 4}" y="${y + barH - 4}" font-size="11">${esc(text)}</text>`);
      y += barH;
    }
    y += gap;
  }
  const legend = TARGETS.map(
    (t, i) =>
      `<rect x="${left + i * 120}" y="24" width="10" height="10" fill="${COLORS[t]}"/><text x="${left + i * 120 + 14}" y="33" font-size="11">${LABELS[t]}</text>`,
  ).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 6}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="16" font-size="13" font-weight="bold">${esc(title)}</text>
${legend}
${parts.join('\n')}
</svg>
`;
}

export function charts(file, outDir) {
  const rows = load(file).filter((r) => !r.error);
  const pick = (scenario, target, f = () => true) =>
    rows.filter((r) => r.scenario === scenario && r.target === target && f(r)).at(-1);
  const values = (scenario, field, f) =>
    Object.fromEntries(TARGETS.map((t) => [t, pick(scenario, t, f)?.[field]]).filter(([, v]) => v !== undefined));
  const out = {
    'fanout.svg': barChart({
      title: 'Fan-out: events per server CPU-second, all instances (1 000 clients, higher is better)',
      unit: '',
      groups: [1, 2, 3].map((n) => ({
        label: n === 1 ? '1 instance' : `${n} instances`,
        values: values('fanout', 'events_per_cpu_s', (r) => (r.instances ?? 1) === n),
      })),
    }),
    'idle-rss.svg': barChart({
      title: 'Server RSS per idle connection (KB, lower is better)',
      unit: 'KB',
      digits: 1,
      groups: [1_000, 5_000, 10_000].map((n) => ({
        label: `${n.toLocaleString('en')} connections`,
        values: values('idle', 'rss_per_conn_kb', (r) => r.connections === n),
      })),
    }),
    'rate.svg': barChart({
      title: '1 000 events/s: latency p99 (ms) and server CPU (millicores), lower is better',
      unit: '',
      digits: 0,
      groups: [
        { label: 'latency p99 (ms)', values: values('rate', 'p99_ms') },
        {
          label: 'server CPU (millicores)',
          values: Object.fromEntries(Object.entries(values('rate', 'server_cores')).map(([k, v]) => [k, v * 1000])),
        },
      ],
    }),
    'storm.svg': barChart({
      title: 'Reconnect storm after kill -9 (ms, lower is better)',
      unit: 'ms',
      groups: [
        { label: 'kill to ready', values: values('storm', 'kill_to_ready_ms') },
        { label: 'all clients back', values: values('storm', 'all_back_ms') },
        { label: '/healthz p99', values: values('storm', 'healthz_p99_ms') },
        { label: 'start to ready (median)', values: values('startup', 'ready_ms_median') },
      ],
    }),
  };
  mkdirSync(outDir, { recursive: true });
  for (const [name, svg] of Object.entries(out)) writeFileSync(path.join(outDir, name), svg);
  return Object.keys(out);
}

if (process.argv[1]?.endsWith('charts.mjs')) {
  console.log(charts(process.argv[2], process.argv[3] ?? 'docs/benchmarks').join('\n'));
}
