import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port';
import { sleep } from './wait';

/** A real three-master Redis Cluster owned by a test, nothing persisted. */
export interface RedisClusterHandle {
  /** The masters, as `{ host, port }` for ioredis `Cluster` seeds. */
  readonly nodes: Array<{ host: string; port: number }>;
  /** `redis://127.0.0.1:<port>` of the first node, a seed for clients that take a URL. */
  readonly url: string;
  /** Kills every node and removes their cluster config files. */
  stop(): Promise<void>;
}

const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const cli = process.env.REDIS_CLI_BIN ?? 'redis-cli';

function redisCli(args: string[]): string {
  const res = spawnSync(cli, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${res.stderr || res.stdout}`);
  return res.stdout;
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free ports, joins them
 * with `redis-cli --cluster create` (no replicas) and waits until every node
 * reports `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  if (spawnSync(bin, ['--version']).status !== 0 || spawnSync(cli, ['--version']).status !== 0) {
    throw new Error(
      `redis-server / redis-cli not found (looked for "${bin}", "${cli}"); install the Debian package redis-server`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'livebus-cluster-'));
  // Six distinct ports: each node's client port and its cluster bus port (set
  // explicitly: the default, port + 10000, may not exist for a high free port).
  const taken: number[] = [];
  while (taken.length < 6) {
    const p = await freePort();
    if (!taken.includes(p)) taken.push(p);
  }
  const ports = taken.slice(0, 3);
  const children: ChildProcess[] = ports.map((port, i) =>
    spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(taken[3 + i]),
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 15_000;
    for (const port of ports) {
      while (spawnSync(cli, ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`cluster node on port ${port} did not answer`);
        await sleep(20);
      }
    }
    redisCli([
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const port of ports) {
      while (!redisCli(['-p', String(port), 'cluster', 'info']).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error(`cluster node on port ${port} never reported cluster_state:ok`);
        await sleep(50);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    url: `redis://127.0.0.1:${ports[0]}`,
    stop,
  };
}
