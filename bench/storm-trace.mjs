// Reads the reconnect traces of `BENCH_RECONNECT_TRACE=1 node bench/run.mjs --targets livebus --scenarios storm`
// (one JSON file per storm, see bench/lib/load.mjs) and prints, per storm: when the clients were back,
// how their attempts failed (R: connection refused, H503: upgrade refused with Retry-After, W: welcome),
// the attempt sequences of the last 1 %, and per 250 ms of attempt starts how long the upgrade and
// the hello took.
//
//   node bench/storm-trace.mjs FILE... [--bins]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const bins = args.includes('--bins');
const kindOf = (r) =>
  r.welcome !== undefined
    ? 'W'
    : r.status
      ? `H${r.status}`
      : r.error === 'ECONNREFUSED'
        ? 'R'
        : (r.error ?? (r.reason ? `C:${r.reason}` : '?'));
const at = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

for (const file of args.filter((a) => !a.startsWith('--'))) {
  const d = JSON.parse(readFileSync(file, 'utf8'));
  const outcomes = {};
  const back = [];
  const started = {};
  const delays = {};
  for (const list of d.clients) {
    // Attempts made after the kill; the socket open before it is the one the kill closed.
    const after = list.filter((r) => r.t >= 0);
    for (const r of after) {
      const k = kindOf(r);
      outcomes[k] = (outcomes[k] ?? 0) + 1;
      if (r.delayMs !== undefined) {
        delays[k] ??= [];
        delays[k].push(r.delayMs);
      }
      if (r.welcome !== undefined) {
        const b = Math.floor(r.t / 250) * 250;
        started[b] ??= [];
        started[b].push(r);
      }
    }
    const w = after.find((r) => r.welcome !== undefined);
    back.push({ at: w?.welcome ?? Number.POSITIVE_INFINITY, seq: after.map(kindOf).join(' ') });
  }
  back.sort((a, b) => a.at - b.at);
  const t = back.map((b) => b.at);
  const last = {};
  for (const b of back.slice(Math.floor(back.length * 0.99))) last[b.seq] = (last[b.seq] ?? 0) + 1;
  const seen = d.clients
    .map((l) => l.find((r) => r.t < 0)?.closedAt)
    .filter((x) => x !== undefined)
    .sort((a, b) => a - b);
  console.log(`${file}`);
  console.log(
    `  kill to ready ${Math.round(d.kill_to_ready_ms)} ms; the kill seen by the clients ${seen[0]} to ${seen.at(-1)} ms`,
  );
  console.log(
    `  back (welcome, ms after the kill): p50 ${at(t, 0.5)}, p90 ${at(t, 0.9)}, p99 ${at(t, 0.99)}, last ${t.at(-1)}`,
  );
  console.log(`  attempts after the kill, by outcome: ${JSON.stringify(outcomes)}`);
  for (const [k, v] of Object.entries(delays)) {
    v.sort((a, b) => a - b);
    console.log(`  delay chosen after ${k}: p50 ${at(v, 0.5)} ms, max ${v.at(-1)} ms (${v.length})`);
  }
  console.log(`  the last 1 % back, by attempt sequence: ${JSON.stringify(last)}`);
  if (!bins) continue;
  for (const b of Object.keys(started)
    .map(Number)
    .sort((x, y) => x - y)) {
    const rs = started[b];
    const up = rs.map((r) => r.upgraded - r.t).sort((x, y) => x - y);
    const hello = rs.map((r) => r.welcome - r.upgraded).sort((x, y) => x - y);
    console.log(
      `  started ${b}-${b + 250} ms: ${rs.length} welcomed; start to 101 p50 ${at(up, 0.5)} max ${up.at(-1)}; 101 to welcome p50 ${at(hello, 0.5)} max ${hello.at(-1)}`,
    );
  }
}
