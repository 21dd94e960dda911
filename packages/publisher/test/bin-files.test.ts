import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Only the command's files start with `#!/usr/bin/env node` (and are executable); the library's
// files, which apps import and bundle, carry none.
const run = promisify(execFile);
const root = join(__dirname, '..');
const { bin } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };

describe('the built files', () => {
  it('start with a shebang only for the command (cli.js, cli.cjs)', () => {
    const files = readdirSync(join(root, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.c?js$/.test(f),
    );
    const withShebang = files.filter((f) => readFileSync(join(root, 'dist', f), 'utf8').startsWith('#!'));
    expect(withShebang.sort()).toEqual(['cli.cjs', 'cli.js']);
    expect(Object.values(bin).map((f) => f.replace(/^(\.\/)?dist\//, ''))).toEqual(['cli.js']);
  });

  it.each(Object.entries(bin))('%s (%s) runs as a command', async (name, file) => {
    const { stdout } = await run(join(root, file), ['--help']);
    expect(stdout.startsWith(`${name}: `)).toBe(true);
  });
});
