import { type RedisServerHandle, startRedisServer, startTcpProxy, type TcpProxy } from '@livebus/test-support';
import { createPublisher, type OutboxEvent } from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

// A Redis that keeps its connections and never answers (a frozen node, a blackholed failover
// address): the proxy stops forwarding both ways, as SIGSTOP would, without touching the server.
let server: RedisServerHandle;
let proxy: TcpProxy;
beforeAll(async () => {
  server = await startRedisServer();
});
beforeEach(async () => {
  proxy = await startTcpProxy(server.port);
});
afterEach(() => proxy.close());
afterAll(() => server.stop());

describe('a publisher whose Redis stops answering', () => {
  it('rejects a publish redis_unavailable (ETIMEDOUT) after its attempts with the outbox off, says Redis is down, and closes', async () => {
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: `redis://127.0.0.1:${proxy.port}` },
      { attemptTimeoutMs: 200, retryDelaysMs: [20], outboxMaxEvents: 0, onOutboxEvent: (e) => events.push(e) },
    );
    await p.publish('fr-1', notice(0));
    proxy.freeze();
    await expect(p.publish('fr-1', notice(1))).rejects.toMatchObject({ code: 'redis_unavailable', attempts: 2 });
    expect(p.stats()).toMatchObject({ redis: 'down', lastRedisFailure: { code: 'ETIMEDOUT' } });
    expect(events.map((e) => e.kind)).toContain('unreachable');
    // QUIT is never answered: close() gives up on it and ends the connection.
    await expect(p.close()).resolves.toBeUndefined();
  }, 20_000);

  it('close() settles while a publish waits for the frozen Redis', async () => {
    const p = createPublisher({ redisUrl: `redis://127.0.0.1:${proxy.port}` }, { attemptTimeoutMs: 200 });
    await p.publish('fr-2', notice(0));
    proxy.freeze();
    const stuck = p.publish('fr-2', notice(1));
    stuck.catch(() => {});
    await expect(p.close()).resolves.toBeUndefined();
    await expect(stuck).rejects.toMatchObject({ name: 'PublishError' });
  }, 20_000);
});
