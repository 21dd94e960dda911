import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from '@livebus/test-support';

/**
 * Private stand-in for `startRedisCluster` of @livebus/test-support (being added on
 * another branch, same interface): once it is merged, import it instead and
 * delete this file.
 */
export interface FleetRedisCluster {
  /** The masters, as seeds for ioredis `Cluster`. */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  /** Kills every node and removes their config files. */
  stop(): Promise<void>;
}

const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const cli = process.env.REDIS_CLI_BIN ?? 'redis-cli';

function redisCli(args: string[]): string {
  const res = spawnSync(cli, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${res.stderr || res.stdout}`);
  return res.stdout;
}

/** Three masters, no replicas, joined with `redis-cli --cluster create`; resolves at `cluster_state:ok`. */
export async function startFleetRedisCluster(): Promise<FleetRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'livebus-fleet-cluster-'));
  // Client and bus port of each node chosen free: the default bus port (port + 10000) may not exist.
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
        ...['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'],
        ...['--cluster-port', String(taken[3 + i]), '--cluster-config-file', join(dir, `nodes-${port}.conf`)],
        ...['--save', '', '--appendonly', 'no', '--dir', dir],
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
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop };
}
