import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, PortBusyError, retryBind } from './free-port';
import { sleep } from './wait';

/** A real `redis-server` owned by a test: on its own free port, nothing persisted unless asked. */
export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  /**
   * Kills the server (SIGKILL, like a crash). Nothing holds its port while it is down: another
   * process may take it, which {@link restart} waits out (a bounded number of attempts).
   */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port: empty, or with every acknowledged write when `persist`
   * is set, unless `empty` (a persisted server that comes back without its data: a node
   * replaced, a failover to a replica that had not synced). If another process holds the port
   * it retries the bind, then fails with a {@link PortBusyError} rather than hand the test
   * someone else's server.
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

/**
 * The pid of the redis-server answering PING on `port` once it is ready (not loading), or
 * undefined. The pid tells our server from another process's on a port that was taken.
 */
function readyPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let buf = '';
    sock.setTimeout(500);
    sock.on('connect', () => sock.write('PING\r\nINFO server\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.startsWith('-')) {
        sock.destroy();
        resolve(undefined);
        return;
      }
      const pid = /process_id:(\d+)\r\n/.exec(buf);
      if (buf.startsWith('+PONG') && pid) {
        sock.destroy();
        resolve(Number(pid[1]));
      }
    });
    sock.on('error', () => resolve(undefined));
    sock.on('timeout', () => {
      sock.destroy();
      resolve(undefined);
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
  let port = await freePort();
  const dir = options.persist ? mkdtempSync(join(tmpdir(), 'livebus-redis-')) : undefined;
  // `always`: a write Redis acknowledged is on disk before the SIGKILL that may follow it.
  const persistence = dir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;

  /** One start on `port`: ready, or PortBusyError when the bind failed or another server answers. */
  const launchOnce = async () => {
    const c = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
      stdio: 'ignore',
    });
    child = c;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const pid = await readyPid(port);
      if (pid === c.pid) return;
      // Our server exited (its bind failed) or someone else's answers: the port is not ours.
      if (c.exitCode !== null || c.signalCode !== null || pid !== undefined) {
        await kill();
        throw new PortBusyError(port);
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await sleep(20);
    }
  };
  const launch = () => retryBind(launchOnce);
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };

  // The first start may move to another free port; restarts must keep theirs.
  await retryBind(async (attempt) => {
    if (attempt > 1) port = await freePort();
    await launchOnce();
  });
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
