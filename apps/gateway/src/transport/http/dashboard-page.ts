// The dashboard page: plain HTML, CSS and JavaScript in strings, served as is.
// No build step and no third-party code, so it works offline and passes a strict CSP.

/** The page's stylesheet (inline; its hash is allowed by the CSP). */
export const DASHBOARD_STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{display:flex;gap:1rem;align-items:baseline;padding:.8rem 1.2rem;background:#1d2330;color:#fff}
header h1{font-size:1.1rem;margin:0}#status{opacity:.8}
main{padding:1rem 1.2rem;display:grid;gap:1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem}
.card{background:#fff;border-radius:6px;padding:.6rem .8rem;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:1.4rem}.card span{color:#667}
.ok{color:#1a7f37}.down,.bad{color:#c62828}.warn{color:#b26a00}
section{background:#fff;border-radius:6px;padding:.8rem;box-shadow:0 1px 2px #0002}
h2{font-size:1rem;margin:0 0 .5rem}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #eee}
.row{display:grid;grid-template-columns:2fr 1fr 1fr;gap:1rem}
#legend span{margin-right:.8rem;white-space:nowrap}#legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.25rem;vertical-align:middle}
form{display:flex;gap:.5rem;align-items:center}form[hidden]{display:none}input{padding:.3rem;min-width:20rem}
`;

/** The page's script (inline; its hash is allowed by the CSP). */
export const DASHBOARD_SCRIPT = `
'use strict';
const KEY = 'livebus-admin-token';
const COLORS = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const rows = (id, data) => { const t = $(id); t.replaceChildren(...data.map((cells) => { const tr = el('tr'); for (const c of cells) tr.append(el('td', c)); return tr; })); };
const pct = (x) => (x * 100).toFixed(1) + ' %';
const age = (ms) => ms < 90e3 ? Math.round(ms / 1e3) + ' s' : ms < 90 * 60e3 ? Math.round(ms / 60e3) + ' min' : Math.round(ms / 3600e3) + ' h';
const colorOf = {};
const color = (reason) => colorOf[reason] ??= COLORS[Object.keys(colorOf).length % COLORS.length];

function card(label, value, cls) {
  const d = el('div', undefined, 'card');
  d.append(el('b', value, cls), el('span', label));
  return d;
}

function chart(history, at) {
  const svg = $('chart'), NS = 'http://www.w3.org/2000/svg', W = 600, H = 160, N = 60, BUCKET = 10e3;
  const end = at - (at % BUCKET);
  const byStart = new Map(history.map((b) => [b.start, b.reasons]));
  const totals = [];
  for (let i = 0; i < N; i++) { const r = byStart.get(end - (N - 1 - i) * BUCKET) || {}; totals.push(Object.values(r).reduce((a, b) => a + b, 0)); }
  const max = Math.max(1, ...totals), bw = W / N;
  const parts = [];
  for (let i = 0; i < N; i++) {
    const r = byStart.get(end - (N - 1 - i) * BUCKET) || {};
    let y = H;
    for (const [reason, n] of Object.entries(r)) {
      const h = (n / max) * (H - 12);
      y -= h;
      const rect = document.createElementNS(NS, 'rect');
      rect.setAttribute('x', String(i * bw + 1)); rect.setAttribute('y', String(y));
      rect.setAttribute('width', String(bw - 2)); rect.setAttribute('height', String(h));
      rect.setAttribute('fill', color(reason));
      const title = document.createElementNS(NS, 'title'); title.textContent = reason + ': ' + n; rect.append(title);
      parts.push(rect);
    }
  }
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', '2'); label.setAttribute('y', '10'); label.setAttribute('font-size', '10');
  label.textContent = 'max ' + max + ' per 10 s';
  svg.replaceChildren(label, ...parts);
  $('legend').replaceChildren(...Object.keys(colorOf).map((r) => { const s = el('span', r); const i = el('i'); i.style.background = color(r); s.prepend(i); return s; }));
}

function sparkline(history) {
  const svg = $('spark'), NS = 'http://www.w3.org/2000/svg', W = 600, H = 60, N = 120;
  const pts = history.slice(-N);
  const max = Math.max(1, ...pts.map((p) => Math.max(p.in, p.out)));
  const line = (key, stroke) => {
    const p = document.createElementNS(NS, 'polyline');
    p.setAttribute('points', pts.map((s, i) => ((N - pts.length + i) * W / (N - 1)).toFixed(1) + ',' + (H - 2 - (s[key] / max) * (H - 4)).toFixed(1)).join(' '));
    p.setAttribute('vector-effect', 'non-scaling-stroke');
    p.setAttribute('fill', 'none'); p.setAttribute('stroke', stroke); p.setAttribute('stroke-width', '1.5');
    return p;
  };
  $('sparkmax').textContent = 'this instance, last 2 minutes: out (blue), in (grey); top of the chart ' + max + '/s';
  svg.replaceChildren(line('in', '#999'), line('out', '#1f77b4'));
}

function render(d) {
  $('status').textContent = d.instance_id + ' · ' + d.version + ' · up ' + age(d.uptime_s * 1e3) + ' · updated ' + new Date(d.at).toLocaleTimeString();
  const ratio = d.detach.cancel_ratio, decided = d.detach.cancelled + d.detach.executed;
  const lag = d.event_loop_lag_ms;
  const na = (v) => (v === null || v === undefined ? 'n/a' : v);
  const p99 = d.delivery.recent.all.p99_ms;
  $('cards').replaceChildren(
    card('connections (this instance)', d.self.connections),
    card('sessions (this instance)', d.self.sessions),
    card('instances', d.instances.length),
    card('listeners', d.listeners_count),
    card('workflow listeners', d.workflow_listeners_count),
    card('detach cancelled', d.detach.cancelled),
    card('detach executed', d.detach.executed),
    card('cancel ratio', decided ? pct(ratio) : 'n/a', decided ? (ratio >= 0.3 ? 'ok' : ratio >= 0.2 ? 'warn' : 'bad') : ''),
    card('pending detaches', d.detach.pending),
    card('cleanup errors', d.registry_cleanup_errors, d.registry_cleanup_errors ? 'bad' : 'ok'),
    card('event loop lag p99 (ms)', lag.p99, lag.p99 > 100 ? 'bad' : lag.p99 > 20 ? 'warn' : 'ok'),
    card('events in/s (this instance)', d.delivery.events_in_per_s),
    card('events out/s (this instance)', d.delivery.events_out_per_s),
    card('events out/s (fleet)', d.fleet.events_out_per_s),
    card('delivery p50 (ms, 1 min)', na(d.delivery.recent.all.p50_ms)),
    card('delivery p99 (ms, 1 min)', na(d.delivery.recent.all.p99_ms), p99 === null ? '' : p99 >= 100 ? 'bad' : p99 >= 50 ? 'warn' : 'ok'),
    card('fleet worst p99 (ms)', na(d.fleet.delivery_p99_ms_max)),
    card('Redis', d.redis, d.redis),
    card('Firestore', d.firestore, d.firestore),
    card('Firestore reads', na(d.firestore_reads)),
    card('task queue depth', na(d.task_queue_depth)),
  );
  rows('instances', d.instances.map((i) => [i.id, i.version, i.sessions, i.users, na(i.eventsOutPerS), na(i.deliveryP99Ms), age(d.at - i.startedAt), age(Math.max(0, d.at - i.lastSeen)) + ' ago']));
  sparkline(d.delivery.history);
  chart(d.disconnects.history, d.at);
  rows('reasons', Object.entries(d.disconnects.reasons_total).sort((a, b) => b[1] - a[1]));
  rows('top', d.top_disconnects);
  rows('frequent', d.frequent_disconnects.map((f) => [f.uid, f.count]));
}

async function stream() {
  const token = sessionStorage.getItem(KEY);
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  let res;
  try { res = await fetch(location.pathname.replace(/\\/?$/, '/stream'), { headers, cache: 'no-store' }); }
  catch { $('status').textContent = 'gateway unreachable, retrying'; return setTimeout(stream, 2000); }
  if (res.status === 401) { $('login').hidden = false; $('status').textContent = token ? 'admin token refused' : 'admin token required'; return; }
  if (!res.ok || !res.body) { $('status').textContent = 'HTTP ' + res.status + ', retrying'; return setTimeout(stream, 2000); }
  $('login').hidden = true;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch { break; }
    if (chunk.done) break;
    buf += chunk.value;
    let i;
    while ((i = buf.indexOf('\\n\\n')) >= 0) {
      const msg = buf.slice(0, i); buf = buf.slice(i + 2);
      const data = msg.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
      if (data) render(JSON.parse(data));
    }
  }
  $('status').textContent = 'stream ended, reconnecting';
  setTimeout(stream, 1000);
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $('token').value);
  $('token').value = '';
  stream();
});
stream();
`;

/** The whole page. Loaded from /dashboard; data comes from /dashboard/stream. */
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>livebus dashboard</title><link rel="icon" href="data:,"><style>${DASHBOARD_STYLE}</style></head>
<body>
<header><h1>livebus</h1><span id="status">connecting…</span></header>
<main>
<form id="login" hidden><label for="token">Admin token</label><input id="token" type="password" autocomplete="off"><button>Open</button></form>
<div id="cards" class="cards"></div>
<section><h2>Events per second <small id="sparkmax"></small></h2><svg id="spark" viewBox="0 0 600 60" preserveAspectRatio="none" width="100%" height="60" role="img" aria-label="events in and out per second, last 2 minutes"></svg></section>
<section><h2>Instances</h2><table><thead><tr><th>instance</th><th>version</th><th>sessions</th><th>users</th><th>events out/s</th><th>delivery p99 (ms)</th><th>up</th><th>last seen</th></tr></thead><tbody id="instances"></tbody></table></section>
<div class="row">
<section><h2>Disconnects by reason, last 10 minutes</h2><svg id="chart" viewBox="0 0 600 160" width="100%" height="160" role="img" aria-label="disconnects per 10 seconds"></svg><div id="legend"></div></section>
<section><h2>Since start</h2><table><tbody id="reasons"></tbody></table></section>
<section><h2>Top disconnecting users</h2><table><tbody id="top"></tbody></table><h2>Frequent (5+ in 5 min)</h2><table><tbody id="frequent"></tbody></table></section>
</div>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body></html>
`;
}
