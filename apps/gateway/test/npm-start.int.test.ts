import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startChild, waitFor } from '@livebus/test-support';
import { type CliProcess, gatewayListening } from './task-processes';

// `npm start` runs `node scripts/pnpm.mjs bootstrap start`: install, build, then the gateway as a
// child of the script. A stop sent to that chain (a supervisor's SIGTERM, Ctrl-C) must stop the
// gateway too, or it keeps the port and the next `npm start` exits 78. --no-build skips the
// install and the build (the workspace is built before the tests run): only the start is tested.
const workspace = join(__dirname, '..', '..', '..');
const script = join(workspace, 'scripts', 'pnpm.mjs');

function npmStart(env: Record<string, string> = {}): Promise<CliProcess> {
  const p = startChild('npm-start', process.execPath, [script, 'bootstrap', 'start', '--no-build'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', SHUTDOWN_GRACE_MS: '2000', ...env },
  });
  return gatewayListening(p);
}

/** Every gateway started, so that one the script left behind (a failed test) does not outlive the test. */
const gateways: number[] = [];

/** The gateway: the end of the chain of only children under `top` (npm -> sh -> the script -> the gateway). */
function gatewayPid(top: CliProcess): number {
  let pid = top.child.pid as number;
  for (;;) {
    const out = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.trim();
    if (!out) break;
    expect(out.split('\n')).toHaveLength(1);
    pid = Number(out);
  }
  gateways.push(pid);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('npm start (scripts/pnpm.mjs bootstrap start)', () => {
  afterEach(() => {
    for (const pid of gateways.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    '%s to the script stops the gateway and frees its port',
    async (signal) => {
      const wrapper = await npmStart();
      const gateway = gatewayPid(wrapper);
      expect(await portFree(wrapper.port)).toBe(false);
      wrapper.child.kill(signal);
      await waitFor(() => !alive(gateway), `gateway ${gateway} gone`);
      await waitFor(() => portFree(wrapper.port), `port ${wrapper.port} free`);
      expect(await wrapper.exited).toBe(0); // the gateway's exit code after its shutdown
    },
  );

  it('SIGTERM to npm start stops the gateway: sh dies of it without passing it on', async () => {
    const npm = await gatewayListening(
      startChild('npm', 'npm', ['start', '--silent', '--', '--no-build'], {
        cwd: workspace,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', SHUTDOWN_GRACE_MS: '2000' },
      }),
    );
    const gateway = gatewayPid(npm);
    npm.child.kill('SIGTERM');
    await waitFor(() => !alive(gateway), `gateway ${gateway} gone`);
    await waitFor(() => portFree(npm.port), `port ${npm.port} free`);
  });

  it('listens on 127.0.0.1 unless HOST is set', async () => {
    const local = await npmStart();
    expect(local.lines.find((l) => l.event === 'gateway_listening')?.host).toBe('127.0.0.1');
    expect(await local.stop()).toBe(0);
    const any = await npmStart({ HOST: '0.0.0.0' });
    expect(any.lines.find((l) => l.event === 'gateway_listening')?.host).toBe('0.0.0.0');
    expect(await any.stop()).toBe(0);
  });

  it('exits when the gateway exits, with 128 + its signal', async () => {
    const wrapper = await npmStart();
    process.kill(gatewayPid(wrapper), 'SIGKILL');
    expect(await wrapper.exited).toBe(137);
  });
});
