// Size of the browser client: each browser entry of @livebus/bus-consumer, minified as
// published and gzipped (level 9, as `gzip -9`) and brotli-compressed, beside
// socket.io-client's own minified builds measured the same way in the same run; then
// where the bytes of livebus.js come from (from its source map). Build first (`pnpm build`).
//
//   node bench/bundle-size.mjs [--json]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const require = createRequire(import.meta.url);
const dirOf = (pkg) => dirname(require.resolve(`${pkg}/package.json`));
const livebus = join(dirOf('@livebus/bus-consumer'), 'dist', 'browser');
const sio = join(dirOf('socket.io-client'), 'dist');
const sioVersion = JSON.parse(readFileSync(join(dirOf('socket.io-client'), 'package.json'), 'utf8')).version;

const ENTRIES = [
  ['@livebus/bus-consumer livebus.js (ESM, for bundlers)', join(livebus, 'livebus.js')],
  ['@livebus/bus-consumer livebus.global.js (<script>)', join(livebus, 'livebus.global.js')],
  [`socket.io-client ${sioVersion} socket.io.min.js (<script>)`, join(sio, 'socket.io.min.js')],
  [`socket.io-client ${sioVersion} socket.io.esm.min.js (ESM)`, join(sio, 'socket.io.esm.min.js')],
];

/** The file without its trailing `//# sourceMappingURL=` comment (a browser does not download the map). */
const code = (file) => readFileSync(file, 'utf8').replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '');
const sizes = (text) => {
  const bytes = Buffer.from(text);
  return {
    minified: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
};

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Decodes one source-map segment (base64 VLQ) into its numbers. */
function vlq(segment) {
  const out = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

/** Minified bytes per original source: each generated span is charged to the source it maps to. */
function bytesBySource(file) {
  const map = JSON.parse(readFileSync(`${file}.map`, 'utf8'));
  const lines = code(file).split('\n');
  const totals = new Map();
  let source = 0;
  map.mappings.split(';').forEach((line, l) => {
    const text = lines[l] ?? '';
    let col = 0;
    let prev; // [column, source] of the previous segment
    for (const segment of line.split(',').filter(Boolean)) {
      const [dc, ds] = vlq(segment);
      col += dc;
      if (ds !== undefined) source += ds;
      if (prev) totals.set(prev[1], (totals.get(prev[1]) ?? 0) + Buffer.byteLength(text.slice(prev[0], col)));
      prev = ds === undefined ? undefined : [col, source];
    }
    if (prev) totals.set(prev[1], (totals.get(prev[1]) ?? 0) + Buffer.byteLength(text.slice(prev[0])));
  });
  const name = (i) => map.sources[i].replace(/^(\.\.\/)+/, '').replace(/^src\//, 'bus-consumer/src/');
  return [...totals].map(([i, bytes]) => [name(i), bytes]).sort((a, b) => b[1] - a[1]);
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const results = ENTRIES.map(([name, file]) => ({ name, ...sizes(code(file)) }));
const breakdown = bytesBySource(join(livebus, 'livebus.js'));

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ entries: results, livebusJsBySource: Object.fromEntries(breakdown) }));
} else {
  const w = Math.max(...results.map((r) => r.name.length));
  console.log(`${'entry'.padEnd(w)}  ${'minified'.padStart(9)}  ${'gzip -9'.padStart(9)}  ${'brotli'.padStart(9)}`);
  for (const r of results) {
    console.log(
      `${r.name.padEnd(w)}  ${kb(r.minified).padStart(9)}  ${kb(r.gzip).padStart(9)}  ${kb(r.brotli).padStart(9)}`,
    );
  }
  const [esm, , sioMin] = results;
  console.log(`\nlivebus.js gzipped / socket.io.min.js gzipped: ${(esm.gzip / sioMin.gzip).toFixed(2)}`);
  console.log('\nlivebus.js, minified bytes by source (from its source map):');
  for (const [name, bytes] of breakdown) console.log(`  ${String(bytes).padStart(6)}  ${name}`);
}
