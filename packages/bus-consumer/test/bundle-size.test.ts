import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

// A byte budget, not a timing: the browser build must be no larger, gzipped, than
// socket.io-client's (14 773 bytes for socket.io.min.js 4.8.4, issue 23's bound). `node
// bench/bundle-size.mjs` prints the sizes side by side and where the bytes come from;
// docs/client.md has the figures.
const BUDGET_GZIP_BYTES = 14_773;
const dist = join(__dirname, '..', 'dist', 'browser');
const code = (file: string) => readFileSync(join(dist, file), 'utf8').replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '');

describe('the browser build', () => {
  it.each(['livebus.js', 'livebus.global.js'])('%s stays within the gzip budget', (file) => {
    const gzipped = gzipSync(Buffer.from(code(file)), { level: 9 }).length;
    expect({ file, gzipped, within: gzipped <= BUDGET_GZIP_BYTES }).toEqual({ file, gzipped, within: true });
  });

  it.each(['livebus.js', 'livebus.global.js'])('%s carries no zod and no ws', (file) => {
    const { sources } = JSON.parse(readFileSync(join(dist, `${file}.map`), 'utf8')) as { sources: string[] };
    expect(sources.filter((s) => /node_modules|zod|\/ws\//.test(s))).toEqual([]);
    // The protocol arrives as its zod-free client entry: frame checks against the generated schemas.
    expect(sources).toContainEqual(expect.stringMatching(/protocol\/src\/client\/wire-schemas\.json$/));
  });
});
