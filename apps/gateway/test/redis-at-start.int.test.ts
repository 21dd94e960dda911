import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';

// The built CLI as ECS runs it: `node dist/main.js` (a gateway) and `node dist/main.js worker`.
const main = join(__dirname, '..', 'dist', 'main.js');

function startCli(args: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [main, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', WORKER_HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a log line.
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(() => redis.stop());

describe('a gateway or worker whose Redis does not answer at start', () => {
  it.each([
    ['gateway', [], 'livebus-gateway'],
    ['worker', ['worker'], 'livebus-gateway worker'],
  ])(
    '%s: exits 69 after REDIS_START_TIMEOUT_MS with "cannot reach Redis at HOST:PORT (ECONNREFUSED); check REDIS_URL", no password',
    async (_, args, prefix) => {
      const down = await startRedisServer();
      await down.kill();
      try {
        const cli = startCli(args, {
          REDIS_URL: `redis://app:hunter2@127.0.0.1:${down.port}`,
          REDIS_START_TIMEOUT_MS: '500',
          UNIFIED_REGISTRY_ENABLED: 'true',
        });
        expect(await cli.exited).toBe(69);
        expect(cli.stderr()).toBe(
          `${prefix}: cannot reach Redis at 127.0.0.1:${down.port} (ECONNREFUSED); check REDIS_URL (gave up after REDIS_START_TIMEOUT_MS=500)\n`,
        );
        expect(JSON.stringify(cli.lines)).not.toContain('hunter2');
      } finally {
        await down.stop();
      }
    },
  );

  it('names a wrong password (WRONGPASS) rather than a timeout', async () => {
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 'right-one');
    try {
      const cli = startCli([], {
        REDIS_URL: `redis://:wrong-one@127.0.0.1:${redis.port}`,
        REDIS_START_TIMEOUT_MS: '500',
      });
      expect(await cli.exited).toBe(69);
      expect(cli.stderr()).toContain(`cannot reach Redis at 127.0.0.1:${redis.port} (WRONGPASS); check REDIS_URL`);
      expect(cli.stderr()).not.toContain('wrong-one');
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });

  it('starts once Redis answers within the wait (a Redis starting alongside the gateway)', async () => {
    const late = await startRedisServer();
    await late.kill();
    const cli = startCli([], { REDIS_URL: late.url, REDIS_START_TIMEOUT_MS: '20000' });
    try {
      // It has seen Redis away (its first failed attempt) before Redis starts.
      await waitFor(() => cli.lines.find((l) => l.event === 'redis_status' && l.status === 'down'), 'a failed attempt');
      await late.restart();
      const listening = await waitFor(
        () => cli.lines.find((l) => l.event === 'gateway_listening'),
        'gateway listening',
        20_000,
      );
      const http = `http://127.0.0.1:${listening.port as number}`;
      await waitFor(async () => (await fetch(`${http}/health/readiness`).catch(() => undefined))?.ok, 'ready');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toBe('');
    } finally {
      cli.child.kill('SIGKILL');
      await late.stop();
    }
  }, 30_000);
});
