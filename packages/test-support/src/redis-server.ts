import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './free-port';
import { sleep } from './wait';

/** A real `redis-server` owned by a test: on its own free port, nothing persisted. */
export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL, like a crash). The port stays reserved for {@link restart}. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
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
export async function startRedisServer(): Promise<RedisServerHandle> {
  if (spawnSync(bin, ['--version']).status !== 0) {
    throw new Error(
      `redis-server not found (looked for "${bin}"); install the Debian package redis-server or set REDIS_SERVER_BIN`,
    );
  }
  const port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
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
    restart: async () => {
      await kill();
      await launch();
    },
    stop: kill,
  };
}
