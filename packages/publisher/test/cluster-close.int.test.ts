import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type RedisClusterHandle, startRedisCluster } from '@livebus/test-support';

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(() => cluster.stop());

/** How the fixture's process ended: its exit code, or `still running` once `patienceMs` passed (then killed). */
function runToEnd(patienceMs: number, ...args: string[]): Promise<{ end: number | 'still running'; stdout: string }> {
  const child = spawn(
    process.execPath,
    [join(__dirname, 'fixtures', 'close-cluster-while-refreshing.mjs'), cluster.url, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  return new Promise((resolve) => {
    const patience = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ end: 'still running', stdout });
    }, patienceMs);
    child.on('exit', (code) => {
      clearTimeout(patience);
      resolve({ end: code ?? -1, stdout });
    });
  });
}

it('a process that closes its Cluster client while a slots refresh is in flight exits on its own', async () => {
  // ioredis 5 re-arms its periodic refresh from the callback of one in flight, even after the
  // client ended: without closeRedis's guard the process stayed alive, refreshing every second.
  for (let run = 0; run < 3; run++) {
    expect(await runToEnd(20_000)).toEqual({ end: 0, stdout: 'closed\n' });
  }
}, 90_000);

it('a Cluster client closed that way connects again, serves commands, and closes again', async () => {
  expect(await runToEnd(30_000, 'again')).toEqual({ end: 0, stdout: 'v\nclosed\n' });
}, 60_000);
