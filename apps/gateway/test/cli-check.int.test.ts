import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '@livebus/test-support';
import { connectAs } from './helpers';

// The built CLI against a real gateway process: what an operator runs after a deploy.
const main = join(__dirname, '..', 'dist', 'main.js');
const run = promisify(execFile);
const ADMIN = 'check-test-admin-token-0123';

async function cli(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? '' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const line = (out: string, name: string) => out.split('\n').find((l) => l.includes(` ${name} `)) ?? '';

describe('livebus-gateway --help, --version', () => {
  it('--help prints the usage and exits 0 without starting a server', async () => {
    const res = await cli('--help');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('livebus-gateway check --url URL');
    const version = await cli('--version');
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown option or command is a usage error', async () => {
    expect((await cli('--nope')).code).toBe(64);
    const res = await cli('nope');
    expect(res.code).toBe(64);
    expect(res.stderr).toContain('unknown command nope');
  });

  it('check without --url is a usage error', async () => {
    const res = await cli('check');
    expect(res.code).toBe(64);
    expect(res.stderr).toContain('--url is required');
  });
});

describe('livebus-gateway check against a running gateway', () => {
  let port: number;
  let child: ReturnType<typeof spawn>;
  let base: string;

  beforeAll(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        ADMIN_TOKEN: ADMIN,
        DETACH_DELAY_MS: '300',
        LOG_LEVEL: 'error',
      },
      stdio: 'ignore',
    });
    await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok, 'the gateway', 15_000);
  }, 20_000);

  afterAll(async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });

  it('passes on a healthy gateway with the traffic of returning users', async () => {
    // Two users close normally and come back within the detach delay: cancelled detaches, no 1006.
    for (const uid of ['u1', 'u2', 'u3']) {
      const a = await connectAs(`ws://127.0.0.1:${port}/ws`, uid);
      await a.client.close(1000);
      const b = await connectAs(`ws://127.0.0.1:${port}/ws`, uid);
      await b.client.close(1000);
    }
    await new Promise((r) => setTimeout(r, 600));
    const res = await cli('check', '--url', `ws://127.0.0.1:${port}/ws`, '--admin-token', ADMIN);
    expect(res.stdout).toMatch(/^PASS {2}\/healthz /m);
    expect(line(res.stdout, '/ws-metrics')).toMatch(/^PASS/);
    expect(line(res.stdout, '1006 closes')).toMatch(/^PASS .*0\.0 % \(0 of 6 disconnects\).*threshold: < 10\.0 %/);
    expect(line(res.stdout, 'detach cancel ratio')).toMatch(/^PASS .*3 cancelled, 3 executed/);
    expect(line(res.stdout, 'registry cleanup errors')).toMatch(/^PASS/);
    expect(line(res.stdout, 'readiness')).toMatch(/^PASS/);
    expect(line(res.stdout, 'Redis')).toMatch(/^PASS .*disabled/);
    expect(line(res.stdout, 'Firestore')).toMatch(/^SKIP/);
    expect(line(res.stdout, 'versions')).toMatch(/^PASS/);
    expect(res.code).toBe(0);
  });

  it('fails when 1006 closes are 10 % of disconnects or more', async () => {
    // Sockets dropped without a close frame: the gateway sees 1006, as behind a failing network or ALB.
    for (const uid of ['drop1', 'drop2']) {
      const { client } = await connectAs(`ws://127.0.0.1:${port}/ws`, uid);
      client.ws.terminate();
      await client.closed;
    }
    await new Promise((r) => setTimeout(r, 200));
    const res = await cli('check', '--url', base, '--admin-token', ADMIN);
    expect(line(res.stdout, '1006 closes')).toMatch(/^FAIL .*25\.0 % \(2 of 8 disconnects\)/);
    expect(res.code).toBe(1);
  });

  it('fails with a hint when the admin token is missing', async () => {
    const res = await cli('check', '--url', base);
    expect(line(res.stdout, '/ws-metrics')).toMatch(/^FAIL .*admin token/);
    expect(res.stderr).toContain('--admin-token');
    expect(res.code).toBe(1);
  });

  it('fails when nothing answers', async () => {
    const res = await cli('check', '--url', `http://127.0.0.1:${await freePort()}`, '--admin-token', ADMIN);
    expect(line(res.stdout, '/healthz')).toMatch(/^FAIL .*unreachable \(ECONNREFUSED\)/);
    expect(res.code).toBe(1);
  });
});
