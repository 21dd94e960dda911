import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The built files of the package at `root`: only the command's (cli.js, cli.cjs) start with
 * `#!/usr/bin/env node`; the library's files, which apps import and bundle, carry none; and each
 * `bin` runs as a command (`--help` prints `<name>: ...`). Call it at a test file's top level.
 */
export function describeBinFiles(root: string): void {
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
}
