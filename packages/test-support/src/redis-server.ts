import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port';
import { sleep } from './wait';

/** A real `redis-server` owned by a test: on its own free port, nothing persisted unless asked. */
export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL, like a crash). The port stays reserved for {@link restart}. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port: empty, or with every acknowledged write when `persist`
   * is set, unless `empty` (a persisted server that comes back without its data: a node
   * replaced, a failover to a replica that had not synced).
   */
  restart(options?: { empty?: boolean }): Promise<void>;
  /** Stops it for good (and removes its data directory). */
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Keep the data across {@link RedisServerHandle.kill} and `restart`: an append-only file,
   * fsynced on every write, in a temporary directory. Models a reboot or failover that
   * keeps the data (ElastiCache with persistence or a promoted replica) rather than a cache
   * that comes back empty. @default false
   */
  persist?: boolean;
}

const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let buf = '';
    sock.setTimeout(500);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        sock.destroy();
        resolve(buf.startsWith('+PONG'));
      }
    });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

/** Starts `redis-server` on a free port and waits until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  if (spawnSync(bin, ['--version']).status !== 0) {
    throw new Error(
      `redis-server not found (looked for "${bin}"); install the Debian package redis-server or set REDIS_SERVER_BIN`,
    );
  }
  const port = await freePort();
  const dir = options.persist ? mkdtempSync(join(tmpdir(), 'livebus-redis-')) : undefined;
  // `always`: a write Redis acknowledged is on disk before the SIGKILL that may follow it.
  const persistence = dir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await sleep(20);
    }
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: async ({ empty = false } = {}) => {
      await kill();
      if (dir && empty) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
      }
      await launch();
    },
    stop: async () => {
      await kill();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
