import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

// The client's files outside transport/ must work in a browser: `ws` (Node only) stays in here.
const src = join(__dirname, '..');
const importsWs = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]ws['"]/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name) ? [path] : [];
  });
}

describe('the ws package', () => {
  it('is imported only under src/transport/', () => {
    const outside = sourceFiles(src)
      .map((file) => relative(src, file))
      .filter((file) => !file.startsWith('transport/'))
      .filter((file) => importsWs.test(readFileSync(join(src, file), 'utf8')));
    expect(outside).toEqual([]);
  });

  it('is imported by transport/node.ts, the socket of the Node entry', () => {
    expect(readFileSync(join(__dirname, 'node.ts'), 'utf8')).toMatch(importsWs);
  });
});
