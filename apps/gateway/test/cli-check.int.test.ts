import { join } from 'node:path';
import { freePort, type RedisServerHandle, runCli, startRedisServer, waitFor } from '@livebus/test-support';
import { connectAs } from './helpers';
import { type CliProcess, startGatewayProcess, startWorker } from './task-processes';

// The built CLI against a real gateway process: what an operator runs after a deploy.
const main = join(__dirname, '..', 'dist', 'main.js');
const ADMIN = 'check-test-admin-token-0123';

const cli = (...args: string[]) =>
  runCli('livebus-gateway', process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? '' } });

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
  let child: CliProcess;
  let base: string;

  beforeAll(async () => {
    // Without Redis or tasks; on PORT=0, its port read from its gateway_listening line.
    child = await startGatewayProcess(undefined, {
      UNIFIED_REGISTRY_ENABLED: 'false',
      ADMIN_TOKEN: ADMIN,
      DETACH_DELAY_MS: '300',
    });
    port = child.port;
    base = child.http;
  }, 30_000);

  afterAll(async () => {
    await child.stop('SIGTERM');
  });

  const metrics = async () =>
    (await (await fetch(`${base}/ws-metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      metrics: { reasons_total: Record<string, number>; detach: { cancelled: number; executed: number } };
    };
  const disconnects = async () => Object.values((await metrics()).metrics.reasons_total).reduce((a, b) => a + b, 0);

  it('does not judge ratios on fewer than 20 disconnects or detaches: one 1006 in five is SKIP with the count, exit 0', async () => {
    for (const uid of ['few1', 'few2', 'few3', 'few4']) {
      const { client } = await connectAs(`ws://127.0.0.1:${port}/ws`, uid);
      await client.close(1000);
    }
    const { client } = await connectAs(`ws://127.0.0.1:${port}/ws`, 'few5');
    client.ws.terminate();
    await client.closed;
    await waitFor(async () => (await metrics()).metrics.detach.executed === 5, 'five detaches');
    const res = await cli('check', '--url', base, '--admin-token', ADMIN);
    expect(line(res.stdout, '1006 closes')).toMatch(/^SKIP .*5 disconnects, fewer than 20: not judged yet/);
    expect(line(res.stdout, 'detach cancel ratio')).toMatch(/^SKIP .*5 detaches, fewer than 20/);
    expect(res.code).toBe(0);
  });

  it('passes on a healthy gateway with the traffic of returning users', async () => {
    // Users close normally and come back within the detach delay: cancelled detaches, no new 1006.
    for (let i = 0; i < 10; i++) {
      const a = await connectAs(`ws://127.0.0.1:${port}/ws`, `back${i}`);
      await a.client.close(1000);
      const b = await connectAs(`ws://127.0.0.1:${port}/ws`, `back${i}`);
      await b.client.close(1000);
    }
    await waitFor(async () => (await metrics()).metrics.detach.executed === 15, 'the detaches to run');
    const res = await cli('check', '--url', `ws://127.0.0.1:${port}/ws`, '--admin-token', ADMIN);
    expect(res.stdout).toMatch(/^PASS {2}\/healthz /m);
    expect(line(res.stdout, '/ws-metrics')).toMatch(/^PASS/);
    expect(line(res.stdout, '1006 closes')).toMatch(
      /^PASS .*4\.0 % \(1 of 25 disconnects\).*threshold: < 10\.0 % \(of 20\+ disconnects\)/,
    );
    expect(line(res.stdout, 'detach cancel ratio')).toMatch(/^PASS .*10 cancelled, 15 executed/);
    expect(line(res.stdout, 'registry cleanup errors')).toMatch(/^PASS/);
    // No listener configured, no RPC, no reconnect with a cursor: nothing to judge yet.
    expect(line(res.stdout, 'listener delivery p99')).toMatch(/^SKIP .*0 listener events, fewer than 100/);
    expect(line(res.stdout, 'RPC error rate')).toMatch(/^SKIP .*0 calls, fewer than 20/);
    expect(line(res.stdout, 'reconnects')).toMatch(/^SKIP .*0 reconnects, fewer than 20/);
    expect(line(res.stdout, 'readiness')).toMatch(/^PASS/);
    expect(line(res.stdout, 'Redis')).toMatch(/^PASS .*disabled/);
    expect(line(res.stdout, 'Firestore')).toMatch(/^PASS .*disabled/);
    expect(line(res.stdout, 'task workers')).toMatch(/^SKIP .*tasks off/);
    expect(line(res.stdout, 'versions')).toMatch(/^PASS/);
    expect(res.code).toBe(0);
  });

  it('fails when 1006 closes are 10 % of disconnects or more', async () => {
    // Sockets dropped without a close frame: the gateway sees 1006, as behind a failing network or ALB.
    for (const uid of ['drop1', 'drop2', 'drop3']) {
      const { client } = await connectAs(`ws://127.0.0.1:${port}/ws`, uid);
      client.ws.terminate();
      await client.closed;
    }
    await waitFor(async () => (await disconnects()) === 28, 'the drops counted');
    const res = await cli('check', '--url', base, '--admin-token', ADMIN);
    expect(line(res.stdout, '1006 closes')).toMatch(/^FAIL .*14\.3 % \(4 of 28 disconnects\)/);
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

describe('livebus-gateway check with tasks on', () => {
  let redis: RedisServerHandle;
  let gateway: CliProcess;
  const workers: CliProcess[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    gateway = await startGatewayProcess(redis.url, { ADMIN_TOKEN: ADMIN });
  }, 30_000);

  afterAll(async () => {
    for (const p of [gateway, ...workers]) {
      if (p && p.child.exitCode === null) {
        void p.stop('SIGTERM');
        await p.exited;
      }
    }
    await redis?.stop();
  });

  it('fails when no worker is seen within the wait: queued jobs would never run', async () => {
    const res = await cli('check', '--url', gateway.http, '--admin-token', ADMIN, '--worker-wait', '500');
    expect(line(res.stdout, 'task workers')).toMatch(/^FAIL .*0 for 0\.5 s: queued jobs never run/);
    expect(res.code).toBe(1);
  });

  it('passes once a worker runs', async () => {
    workers.push(await startWorker(redis.url));
    const res = await cli('check', '--url', gateway.http, '--admin-token', ADMIN, '--worker-wait', '10000');
    expect(line(res.stdout, 'task workers')).toMatch(/^PASS .*1 \(bullmq\)/);
    expect(res.code).toBe(0);
  }, 30_000);
});
