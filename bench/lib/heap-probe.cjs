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
  writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
  require('node:fs').renameSync(`${file}.tmp`, file);
});
