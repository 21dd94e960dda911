import { VERSION } from '../version';
import { type CommandIo, HELP, runCommand } from './commands';

function io(): CommandIo & { stdout: string; stderr: string } {
  const captured = {
    stdout: '',
    stderr: '',
    env: {},
    out: (t: string) => {
      captured.stdout += t;
    },
    err: (t: string) => {
      captured.stderr += t;
    },
  };
  return captured;
}

describe('livebus-gateway command line', () => {
  it.each([
    [['--help'], HELP],
    [['-h'], HELP],
    [['--version'], `${VERSION}\n`],
    [['worker', '--help'], HELP],
    [['worker', '-h'], HELP],
    [['worker', '--version'], `${VERSION}\n`],
    [['worker', '-v'], `${VERSION}\n`],
    [['check', '--help'], HELP],
    [['check', '--version'], `${VERSION}\n`],
  ])('%j prints and exits 0, starting nothing', async (argv, expected) => {
    const out = io();
    expect(await runCommand(argv, out)).toEqual({ kind: 'exit', code: 0 });
    expect(out.stdout).toBe(expected);
    expect(out.stderr).toBe('');
  });

  it('only a bare worker starts the worker; worker with anything else is a usage error', async () => {
    expect(await runCommand(['worker'], io())).toEqual({ kind: 'worker' });
    const out = io();
    expect(await runCommand(['worker', '--bogus'], out)).toEqual({ kind: 'exit', code: 64 });
    expect(out.stderr).toContain("Unknown option '--bogus'");
    expect(await runCommand(['worker', 'extra'], io())).toEqual({ kind: 'exit', code: 64 });
  });

  it.each(['abc', '0', '1.5'])('check --timeout %s is a usage error (64) naming the flag', async (bad) => {
    const out = io();
    expect(await runCommand(['check', '--url', 'http://127.0.0.1:1', '--timeout', bad], out)).toEqual({
      kind: 'exit',
      code: 64,
    });
    expect(out.stderr).toBe(`livebus-gateway check: --timeout must be a positive number of milliseconds, got ${bad}\n`);
  });

  it('check against a gateway that cannot be reached gives no admin-token hint', async () => {
    const out = io();
    expect(await runCommand(['check', '--url', 'http://127.0.0.1:1', '--timeout', '2000'], out)).toEqual({
      kind: 'exit',
      code: 1,
    });
    expect(out.stdout).toContain('/ws-metrics');
    expect(out.stderr).not.toContain('hint');
  });

  it('no arguments serve; an unknown option is a usage error', async () => {
    expect(await runCommand([], io())).toEqual({ kind: 'serve' });
    expect(await runCommand(['--bogus'], io())).toEqual({ kind: 'exit', code: 64 });
  });
});
