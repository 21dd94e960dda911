import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli, startChild } from '../src/child-process';

const node = process.execPath;
const env = { PATH: process.env.PATH ?? '' };

describe('startChild', () => {
  it('parses JSON log lines from stdout, keeps other output and stderr, and reports the exit code', async () => {
    const c = startChild(
      'logger',
      node,
      ['-e', "console.log(JSON.stringify({event:'a'})); console.log('plain'); console.error('oops'); process.exit(3)"],
      { env, exits: true },
    );
    expect(await c.exited).toBe(3);
    expect(c.lines).toEqual([{ event: 'a' }]);
    expect(c.stdout()).toBe('{"event":"a"}\nplain\n');
    expect(c.stderr()).toBe('oops\n');
    expect(c.report()).toContain('exited with code 3');
  });

  it('keeps only the last keepBytes of a long stderr', async () => {
    const c = startChild('chatty', node, ['-e', "process.stderr.write('x'.repeat(300000) + 'END')"], {
      env,
      keepBytes: 1000,
    });
    await c.exited;
    expect(c.stderr().endsWith('END')).toBe(true);
    expect(c.stderr().length).toBeLessThanOrEqual(1001);
  });

  it('fails a wait as soon as the child dies, with its stderr in the error', async () => {
    const c = startChild('crasher', node, ['-e', "console.error('boom: no REDIS_URL'); process.exit(1)"], {
      env,
      exits: true,
    });
    await expect(c.waitForLine((l) => l.event === 'gateway_listening', 'listening', 60_000)).rejects.toThrow(
      /crasher exited with code 1 while waiting for listening[\s\S]*boom: no REDIS_URL/,
    );
  });

  it('attaches stderr to a timed-out wait', async () => {
    const c = startChild('slow', node, ['-e', "console.error('still loading'); setInterval(() => {}, 1000)"], { env });
    try {
      await c.waitUntil(() => c.stderr().includes('still loading'), 'stderr');
      await expect(c.waitForLine(() => true, 'a log line', 100)).rejects.toThrow(/timed out[\s\S]*still loading/);
    } finally {
      expect(await c.stop('SIGKILL')).toBeNull();
    }
  });

  it('runCli runs a program to its end and returns its exit code, stdout and stderr', async () => {
    expect(
      await runCli('cli', node, ['-e', "console.log('out'); console.error('err'); process.exitCode = 2"], { env }),
    ).toEqual({ code: 2, stdout: 'out\n', stderr: 'err\n' });
  });

  it("puts a running child's stderr into a failing test's report (the preset's environment)", async () => {
    const jest = require.resolve('jest/bin/jest');
    const run = promisify(execFile);
    const res = await run(
      node,
      [
        jest,
        '--rootDir',
        join(__dirname, '..'),
        '--roots',
        '<rootDir>/test/fixtures',
        '--testMatch',
        '**/child-fails.fixture.ts',
        '--ci',
      ],
      { cwd: join(__dirname, '..'), env: { ...process.env, FORCE_COLOR: '0' } },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('output of the child processes this test ran');
    expect(res.stderr).toMatch(/child noisy \(pid \d+, killed by SIGKILL\)\s+--- stderr:\s+stderr-marker-7f3a/);
  });
});
