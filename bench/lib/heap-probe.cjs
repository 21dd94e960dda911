// Preloaded into every server of the harness (`node --expose-gc --require heap-probe.cjs`):
// on SIGUSR2 it collects garbage and writes process.memoryUsage() to
// <tmpdir>/bench-heap-<pid>.json, so the harness reads the live JS heap of any target.
const { writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const file = path.join(os.tmpdir(), `bench-heap-${process.pid}.json`);
  // With V8's heap spaces: their pages count in RSS whether or not `heapUsed` counts what is
  // on them (the old space's room left by objects promoted there and then dead, the young
  // generation's semi-spaces as they grew).
  const spaces = {};
  for (const s of require('node:v8').getHeapSpaceStatistics()) {
    spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  }
  writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), spaces, mappings: mappings() }));
  require('node:fs').renameSync(`${file}.tmp`, file);
});

/**
 * Resident bytes by kind of mapping (/proc/self/smaps): `brk` (the main malloc arena), `file`
 * (the binary and libraries), `stack`, and anonymous mappings by size: `anon-v8` (multiples of
 * 256 KB: V8's heap pages and code), `anon-other` (the rest, mostly the malloc arenas of other
 * threads: each reserves 64 MB and makes the part it uses writable, a mapping of its own).
 */
function mappings() {
  const out = {};
  let kind;
  for (const line of require('node:fs').readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = Number.parseInt(head[2], 16) - Number.parseInt(head[1], 16);
      const name = head[3];
      if (name === '[heap]') kind = 'brk';
      else if (name.startsWith('[stack')) kind = 'stack';
      else if (name.startsWith('/')) kind = 'file';
      else if (name) kind = name;
      else if (size % 262144 === 0) kind = 'anon-v8';
      else kind = 'anon-other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && kind) out[kind] = (out[kind] ?? 0) + Number(rss[1]) * 1024;
  }
  return out;
}
