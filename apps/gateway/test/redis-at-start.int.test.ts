import { type RedisServerHandle, startRedisCluster, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { startCli as startCliProcess } from './task-processes';

/** The CLI with the ports it opens on 0 (free); `exits`: the run must end on its own. */
function startCli(args: string[], env: Record<string, string>, exits = false) {
  return startCliProcess(args, { PORT: '0', WORKER_HTTP_PORT: '0', ...env }, { exits });
}

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(() => redis.stop());

/** The two commands that wait for Redis at start: the arguments and their stderr prefix. */
const COMMANDS: Array<[string, string[], string]> = [
  ['gateway', [], 'livebus-gateway'],
  ['worker', ['worker'], 'livebus-gateway worker'],
];

/** Runs `fn` with the port of a redis-server that was started and killed: nothing answers there. */
async function withRedisDown(fn: (port: number) => Promise<void>): Promise<void> {
  const down = await startRedisServer();
  await down.kill();
  try {
    await fn(down.port);
  } finally {
    await down.stop();
  }
}

describe('a gateway or worker whose Redis does not answer at start', () => {
  it.each(COMMANDS)(
    '%s: exits 69 after REDIS_START_TIMEOUT_MS with "cannot reach Redis at HOST:PORT (ECONNREFUSED); check REDIS_URL", no password',
    (_, args, prefix) =>
      withRedisDown(async (port) => {
        const cli = startCli(
          args,
          {
            REDIS_URL: `redis://app:hunter2@127.0.0.1:${port}`,
            REDIS_START_TIMEOUT_MS: '500',
            UNIFIED_REGISTRY_ENABLED: 'true',
          },
          true,
        );
        expect(await cli.exited).toBe(69);
        expect(cli.stderr()).toBe(
          `${prefix}: cannot reach Redis at 127.0.0.1:${port} (ECONNREFUSED); check REDIS_URL (gave up after REDIS_START_TIMEOUT_MS=500)\n`,
        );
        expect(JSON.stringify(cli.lines)).not.toContain('hunter2');
      }),
  );

  it.each(COMMANDS)(
    '%s: SIGTERM while it waits for Redis ends it at once (143; as PID 1 in a container an unhandled signal is ignored)',
    (_, args, prefix) =>
      withRedisDown(async (port) => {
        // A wait far longer than the test: only the signal can end it.
        const cli = startCli(
          args,
          {
            REDIS_URL: `redis://127.0.0.1:${port}`,
            REDIS_START_TIMEOUT_MS: '600000',
            UNIFIED_REGISTRY_ENABLED: 'true',
          },
          true,
        );
        await cli.waitForLine((l) => l.event === 'redis_status' && l.status === 'down', 'the wait for Redis');
        cli.child.kill('SIGTERM');
        expect(await cli.exited).toBe(143);
        expect(cli.stderr()).toBe(`${prefix}: SIGTERM while starting: stopped before serving\n`);
      }),
  );

  it('worker: starts in production without token settings (it checks no tokens), as docker/ecs/worker-task-definition.json runs it', async () => {
    const cli = startCli(['worker'], {
      NODE_ENV: 'production',
      ADMIN_TOKEN: 'redis-at-start-admin-0001',
      REDIS_URL: redis.url,
      UNIFIED_REGISTRY_ENABLED: 'true',
    });
    try {
      await cli.waitForLine((l) => l.event === 'task_worker_listening', 'worker listening', 20_000);
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });

  it('names a wrong password (WRONGPASS) rather than a timeout', async () => {
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 'right-one');
    try {
      const cli = startCli(
        [],
        {
          REDIS_URL: `redis://:wrong-one@127.0.0.1:${redis.port}`,
          REDIS_START_TIMEOUT_MS: '500',
        },
        true,
      );
      expect(await cli.exited).toBe(69);
      expect(cli.stderr()).toContain(`cannot reach Redis at 127.0.0.1:${redis.port} (WRONGPASS); check REDIS_URL`);
      expect(cli.stderr()).not.toContain('wrong-one');
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });

  it.each(COMMANDS)(
    '%s: REDIS_CLUSTER=true on a Redis that is not a cluster exits 78 naming both, not a process that is never ready',
    async (_, args, prefix) => {
      const cli = startCli(
        args,
        { REDIS_URL: redis.url, REDIS_CLUSTER: 'true', UNIFIED_REGISTRY_ENABLED: 'true' },
        true,
      );
      expect(await cli.exited).toBe(78);
      expect(cli.stderr()).toBe(
        `${prefix}: REDIS_CLUSTER=true, but the Redis at 127.0.0.1:${redis.port} is not a cluster (its cluster support is disabled); unset REDIS_CLUSTER, or point REDIS_URL at a node of a Redis Cluster\n`,
      );
    },
  );

  it.each(COMMANDS)(
    '%s: a node of a Redis Cluster of three shards without REDIS_CLUSTER exits 78 saying so, not a process refusing most users MOVED',
    async (_, args, prefix) => {
      const cluster = await startRedisCluster();
      try {
        const cli = startCli(args, { REDIS_URL: cluster.url, UNIFIED_REGISTRY_ENABLED: 'true' }, true);
        expect(await cli.exited).toBe(78);
        expect(cli.stderr()).toBe(
          `${prefix}: the Redis at 127.0.0.1:${new URL(cluster.url).port} is a node of a Redis Cluster of 3 shards; set REDIS_CLUSTER=true (on ElastiCache, with its configuration endpoint)\n`,
        );
      } finally {
        await cluster.stop();
      }
    },
    60_000,
  );

  it.each(COMMANDS)(
    '%s: a REDIS_URL that reaches a replica exits 78 naming it and its primary, not a process whose every write fails',
    async (_, args, prefix) => {
      const replica = await startRedisServer();
      const admin = new Redis(replica.url);
      try {
        await admin.replicaof('127.0.0.1', redis.port);
        const cli = startCli(args, { REDIS_URL: replica.url, UNIFIED_REGISTRY_ENABLED: 'true' }, true);
        expect(await cli.exited).toBe(78);
        expect(cli.stderr()).toBe(
          `${prefix}: the Redis at 127.0.0.1:${replica.port} is a read-only replica (of 127.0.0.1:${redis.port}); point REDIS_URL at the primary (on ElastiCache, the primary endpoint, not the reader endpoint)\n`,
        );
      } finally {
        admin.disconnect();
        await replica.stop();
      }
    },
  );

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
      void cli.stop('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toBe('');
    } finally {
      void cli.stop('SIGKILL');
      await late.stop();
    }
  }, 30_000);
});
