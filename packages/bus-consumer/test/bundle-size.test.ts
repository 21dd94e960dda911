import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import schemas from '../../protocol/src/client/wire-schemas.json';
import { INTERNAL_NAMES } from '../src/internal-names';

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

describe('the names the browser build shortens (src/internal-names.ts)', () => {
  // Renamed wherever they appear in the bundle: none may be a name the client's users or the
  // gateway see (a method, an option, an event's or a frame's field).
  // The names a declaration file gives members and fields (parameter names and string literal
  // types left out: a function's parameters are dropped, innermost first).
  const memberNames = (file: string) => {
    let text = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
      .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, "''");
    for (let before = ''; before !== text; ) [before, text] = [text, text.replace(/\([^()]*\)/g, '()')];
    return new Set(text.match(/[A-Za-z_$][\w$]*/g));
  };
  const keys = (value: unknown, out = new Set<string>()): Set<string> => {
    if (value === null || typeof value !== 'object') return out;
    for (const [k, v] of Object.entries(value)) {
      if (!Array.isArray(value)) out.add(k);
      keys(v, out);
    }
    return out;
  };

  const protocolDist = join(__dirname, '..', '..', 'protocol', 'dist');
  // The browser's and the language's own APIs too: a call such as `controller.abort()` in the
  // client would be renamed with the internal name and fail only at run time.
  const tsLib = dirname(require.resolve('typescript'));
  it.each([
    join(dist, 'livebus.d.ts'),
    ...['lib.dom.d.ts', 'lib.webworker.d.ts', 'lib.es5.d.ts'].map((f) => join(tsLib, f)),
    ...readdirSync(protocolDist)
      .filter((f) => f.endsWith('.d.ts'))
      .map((f) => join(protocolDist, f)),
  ])('are no member named in %s', (file) => {
    const names = memberNames(file);
    expect(INTERNAL_NAMES.filter((n) => names.has(n))).toEqual([]);
  });

  it('are no field of any frame or RPC result (the wire schemas)', () => {
    const fields = keys(schemas);
    expect(INTERNAL_NAMES.filter((n) => fields.has(n))).toEqual([]);
  });

  it('are gone from the build', () => {
    const text = code('livebus.js');
    expect(INTERNAL_NAMES.filter((n) => text.includes(`.${n}(`) || text.includes(`.${n}=`))).toEqual([]);
  });
});
