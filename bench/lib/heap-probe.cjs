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
  writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), spaces }));
  require('node:fs').renameSync(`${file}.tmp`, file);
});
