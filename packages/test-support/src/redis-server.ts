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
  /**
   * A single-node Redis Cluster: `--cluster-enabled yes`, every slot assigned to this node
   * (`CLUSTER ADDSLOTSRANGE 0 16383`), ready once it reports `cluster_state:ok`. Reached
   * through a plain (non-Cluster) client it models a single-shard cluster or a proxy /
   * managed endpoint: keys of one command must share a slot (`CROSSSLOT` otherwise), and
   * no key is ever MOVED. Its cluster config (in a folder of its own) survives `kill` and
   * `restart`, `empty` or not. Needs Redis 7.0 or later. @default false
   */
  clusterEnabled?: boolean;
}

const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const SLOTS = 16_384;

/** Sends one command (inline) and reads one reply: the first line, or a bulk string's text. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let buf = '';
    sock.setTimeout(2_000);
    sock.on('connect', () => sock.write(`${line}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n');
      if (end < 0) return;
      if (buf.startsWith('$')) {
        const length = Number(buf.slice(1, end));
        if (buf.length < end + 2 + length) return;
        sock.destroy();
        resolve(buf.slice(end + 2, end + 2 + length));
        return;
      }
      sock.destroy();
      resolve(buf.slice(0, end));
    });
    sock.on('error', reject);
    sock.on('timeout', () => {
      sock.destroy();
      reject(new Error(`redis-server on port ${port} did not answer ${line}`));
    });
  });
}

/** Assigns every slot to the single cluster-enabled node on `port` (unless it has them) and waits for `cluster_state:ok`. */
async function assignAllSlots(port: number): Promise<void> {
  const info = await command(port, 'CLUSTER INFO');
  if (!info.includes(`cluster_slots_assigned:${SLOTS}`)) {
    const answer = await command(port, `CLUSTER ADDSLOTSRANGE 0 ${SLOTS - 1}`);
    if (answer !== '+OK') throw new Error(`CLUSTER ADDSLOTSRANGE on port ${port}: ${answer}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(await command(port, 'CLUSTER INFO')).includes('cluster_state:ok')) {
    if (Date.now() > deadline)
      throw new Error(`the single-node cluster on port ${port} did not reach cluster_state:ok`);
    await sleep(20);
  }
}

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

/** Our redis-server did not answer PING on its port within the start's deadline (it was killed). */
class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
  constructor(readonly port: number) {
    super(`redis-server did not answer on port ${port} within 10 s`);
  }
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
  // Without persistence, a replica loads its master's data from the socket (`swapdb`): written to
  // disk by default, as dump.rdb in the working directory (a test's package folder).
  const persistence = dir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]
    : ['--appendonly', 'no', '--repl-diskless-load', 'swapdb'];
  // The cluster config (nodes.conf) in a folder of its own, kept across restarts; the bus port
  // set explicitly (the default, port + 10000, may not exist for a high free port).
  const clusterDir = options.clusterEnabled ? mkdtempSync(join(tmpdir(), 'livebus-redis-cluster-')) : undefined;
  let busPort = clusterDir ? await freePort() : 0;
  const clusterArgs = () =>
    clusterDir
      ? [
          ...['--cluster-enabled', 'yes', '--cluster-port', String(busPort)],
          ...['--cluster-config-file', join(clusterDir, 'nodes.conf')],
        ]
      : [];
  let child: ChildProcess | undefined;

  /** One start on `port`: ready, or PortBusyError when the bind failed or another server answers. */
  const launchOnce = async () => {
    const c = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, ...clusterArgs()],
      {
        stdio: 'ignore',
      },
    );
    child = c;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const pid = await readyPid(port);
      if (pid === c.pid) {
        if (clusterDir) await assignAllSlots(port);
        return;
      }
      // Our server exited (its bind failed) or someone else's answers: the port is not ours.
      if (c.exitCode !== null || c.signalCode !== null || pid !== undefined) {
        await kill();
        throw new PortBusyError(port);
      }
      if (Date.now() > deadline) {
        // Not left running: the test that gets this error cannot stop a server it never got.
        await kill();
        throw new NoAnswerError(port);
      }
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

  // The first start may move to another free port; restarts must keep theirs. A server that
  // never answered (a port something else accepts on without speaking Redis, or a machine too
  // busy for 10 s) is tried again on another port, twice at most.
  await retryBind(async (attempt) => {
    if (attempt > 1) {
      port = await freePort();
      if (clusterDir) busPort = await freePort();
    }
    try {
      await launchOnce();
    } catch (error) {
      if (error instanceof NoAnswerError && attempt < 3) throw new PortBusyError(port, { cause: error });
      throw error;
    }
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
      if (clusterDir) rmSync(clusterDir, { recursive: true, force: true });
    },
  };
}
