import { join } from 'node:path';
import {
  type RedisClusterHandle,
  type RedisServerHandle,
  runCli,
  startRedisCluster,
  startRedisServer,
} from '@livebus/test-support';
import { Redis } from 'ioredis';
import { RedisStreamReader } from '../src';
import { userKeys } from '../src/redis';

const cli = join(__dirname, '..', 'dist', 'cli.js');

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(() => server.stop());

const livebusPublish = (...args: string[]) =>
  runCli('livebus-publish', process.execPath, [cli, ...args], { env: process.env });

describe('livebus-publish', () => {
  it('prints its usage with --help and its version with --version, and exits 0', async () => {
    const help = await livebusPublish('--help');
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain(
      'livebus-publish --redis-url URL [--cluster] [--retries N] USER_ID EVENT_TYPE JSON_DATA',
    );
    // Exit codes as they are: 1 for an event or a Redis that said no, 2 for a wrong command line.
    expect(help.stdout).toMatch(/explains why not and exits 1/);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(
      'A wrong command line (a missing or unknown option, a bad --retries or --redis-url) exits 2',
    );
    const version = await livebusPublish('--version');
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it('prints the cursor of the stored event and exits 0', async () => {
    const data = '{"task_id":"t1","status":"running","progress":40}';
    const res = await livebusPublish('--redis-url', server.url, 'cli-pub', 'task.progress_update', data);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    const cursor = res.stdout.trim();
    expect(cursor).toMatch(/^[\w-]+:1$/);
    const redis = new Redis(server.url);
    try {
      const read = await new RedisStreamReader(redis).readSince('cli-pub', cursor.replace(/:1$/, ':0'));
      expect(read).toMatchObject({ status: 'resumed', events: [{ cursor, data: JSON.parse(data) }] });
    } finally {
      redis.disconnect();
    }
  });

  it('explains a bad event type, bad JSON or invalid data, and exits 1', async () => {
    const type = await livebusPublish('--redis-url', server.url, 'u', 'task.nope', '{}');
    expect(type).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown event type task.nope') });
    const json = await livebusPublish('--redis-url', server.url, 'u', 'session.notice', '{level:');
    expect(json).toMatchObject({ code: 1, stderr: expect.stringContaining('JSON_DATA is not JSON') });
    const invalid = await livebusPublish('--redis-url', server.url, 'u', 'session.notice', '{"level":"loud"}');
    expect(invalid).toMatchObject({ code: 1, stderr: expect.stringContaining('invalid event') });
    const usage = await livebusPublish('u', 'session.notice', '{}');
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringContaining('--redis-url') });
  });

  it('says Redis is unreachable after the retries (--retries 0: at once) and exits 1', async () => {
    const started = Date.now();
    const res = await livebusPublish(
      '--redis-url',
      'redis://127.0.0.1:1',
      '--retries',
      '0',
      'u',
      'session.notice',
      '{"level":"info","message":"hi"}',
    );
    expect(res).toMatchObject({ code: 1, stderr: expect.stringContaining('redis_unavailable') });
    process.stdout.write(
      `cli publish unavailable figures: ${JSON.stringify({ exitedAfterMs: Date.now() - started })}\n`,
    );
  });

  it('says which Redis it cannot reach and why, naming --redis-url, never the password', async () => {
    const down = await startRedisServer();
    await down.kill();
    try {
      const data = '{"level":"info","message":"hi"}';
      const url = `redis://app:hunter2@127.0.0.1:${down.port}`;
      const refused = await livebusPublish('--redis-url', url, '--retries', '0', 'u', 'session.notice', data);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(
        `livebus-publish: redis_unavailable: cannot reach Redis at 127.0.0.1:${down.port} (ECONNREFUSED) after 1 attempt(s); check --redis-url\n`,
      );
      const unknown = 'redis://:hunter2@no-such-host.invalid:1';
      const host = await livebusPublish('--redis-url', unknown, '--retries', '0', 'u', 'session.notice', data);
      expect(host).toMatchObject({ code: 1 });
      expect(host.stderr).toMatch(/cannot reach Redis at no-such-host\.invalid:1 \((ENOTFOUND|EAI_AGAIN)\)/);
      expect(refused.stderr + host.stderr).not.toContain('hunter2');
      expect(host.stderr).not.toContain('max retries');
    } finally {
      await down.stop();
    }
  });

  it('refuses a --retries that is empty, not a whole number, or past 30 (exit 2) before it builds its delays', async () => {
    const data = '{"level":"info","message":"hi"}';
    for (const retries of ['', ' ', '1.5', '1e3', '0x10']) {
      const res = await livebusPublish('--redis-url', server.url, '--retries', retries, 'u', 'session.notice', data);
      expect({ retries, ...res }).toMatchObject({
        retries,
        code: 2,
        stderr: expect.stringContaining(
          `--retries must be a whole number from 0 to 30, got ${JSON.stringify(retries)}`,
        ),
      });
    }
    // A hundred million retries would be an array of as many delays, waited for months.
    const many = await livebusPublish('--redis-url', server.url, '--retries', '100000000', 'u', 'session.notice', data);
    expect(many).toMatchObject({ code: 2, stderr: expect.stringContaining('got "100000000"') });
    const ok = await livebusPublish(
      '--redis-url',
      server.url,
      '--retries',
      '30',
      'cli-retries',
      'session.notice',
      data,
    );
    expect(ok).toMatchObject({ code: 0, stderr: '' });
  });

  it('refuses a --redis-url that is not a redis:// URL (exit 2) instead of publishing to localhost', async () => {
    const res = await livebusPublish('--redis-url', 'localhost:6379', 'u', 'session.notice', '{}');
    expect(res).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--redis-url must be a redis:// or rediss:// URL'),
    });
  });
});

describe('livebus-publish --cluster with one master down', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    // A node timeout longer than the test: the slot map still names the killed master.
    cluster = await startRedisCluster({ nodeTimeoutMs: 120_000 });
  }, 60_000);
  afterAll(() => cluster.stop());

  it('names that master, not the seed, and says to check it rather than --redis-url (exit 1)', async () => {
    const seed = cluster.nodes[0]?.port as number;
    let userId = '';
    let port = seed;
    for (let i = 0; port === seed; i++) {
      userId = `cli-shard-${i}`;
      port = (await cluster.masterOf(userKeys(userId).stream)).port;
    }
    await cluster.kill(port);
    const data = '{"level":"info","message":"hi"}';
    const res = await livebusPublish(
      '--redis-url',
      cluster.url,
      '--cluster',
      '--retries',
      '0',
      userId,
      'session.notice',
      data,
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `redis_unavailable: cannot reach Redis Cluster node 127.0.0.1:${port} (seed 127.0.0.1:${seed})`,
    );
    expect(res.stderr).toContain('check that node (--redis-url names the seed only)');
    expect(res.stderr).not.toContain('check --redis-url');
  }, 30_000);
});
