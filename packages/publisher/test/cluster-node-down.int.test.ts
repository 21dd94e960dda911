import type { AppEvent } from '@livebus/protocol';
import { askRedis, type RedisClusterHandle, startRedisCluster } from '@livebus/test-support';
import { createPublisher, type OutboxEvent, type PublishError, type Publisher } from '../src';
import { userKeys } from '../src/keys';

const notice = (i: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(i) } });

/**
 * Masters that die (SIGKILL) on a Redis Cluster whose node timeout is longer than the test: the
 * slot map keeps naming them, and every call for their users fails on them. What the publisher
 * says then: whether Redis may have stored the event, which node failed, and why.
 */
describe('a publisher on a Redis Cluster with masters down', () => {
  let cluster: RedisClusterHandle;
  const killed: number[] = [];
  let publisher: Publisher | undefined;
  const events: OutboxEvent[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 120_000 });
  }, 60_000);
  const frozen: number[] = [];
  afterEach(async () => {
    for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
    await publisher?.close();
    publisher = undefined;
    events.length = 0;
    for (const port of killed.splice(0)) await cluster.restart(port);
    await cluster.waitStable();
  }, 30_000);
  afterAll(() => cluster.stop());

  /** One user on each master, by the master's port; the seed is the first node. */
  async function usersByMaster(prefix: string): Promise<Map<number, string>> {
    const masters = (await cluster.topology()).filter((n) => n.role === 'master').length;
    const byPort = new Map<number, string>();
    for (let i = 0; byPort.size < masters; i++) {
      const user = `${prefix}-${i}`;
      const { port } = await cluster.masterOf(userKeys(user).stream);
      if (!byPort.has(port)) byPort.set(port, user);
    }
    return byPort;
  }

  /** A connected publisher (each master has taken a call), outbox off: each failure rejects. */
  async function connectedPublisher(users: Map<number, string>, attemptTimeoutMs = 60_000): Promise<Publisher> {
    const p = createPublisher(
      { redisUrl: cluster.url, cluster: true },
      { outboxMaxEvents: 0, retryDelaysMs: [50], attemptTimeoutMs, onOutboxEvent: (e) => events.push(e) },
    );
    publisher = p;
    for (const user of users.values()) await p.publish(user, notice(0));
    return p;
  }

  /** SIGSTOPs a node (woken after the test): its connections stay open, nothing answers. */
  async function freeze(port: number): Promise<void> {
    const pid = Number(/process_id:(\d+)/.exec(await askRedis(port, 'INFO', 'server'))?.[1]);
    process.kill(pid, 'SIGSTOP');
    frozen.push(pid);
  }

  async function kill(port: number): Promise<void> {
    killed.push(port);
    await cluster.kill(port);
  }

  const seedPort = () => cluster.nodes[0]?.port as number;
  /** Two masters other than the seed. */
  const notSeed = (users: Map<number, string>) => [...users.keys()].filter((port) => port !== seedPort());

  it('a publish for a master that is down was never sent: maybeStored false, and the message names the node and why', async () => {
    const users = await usersByMaster('down-once');
    const p = await connectedPublisher(users);
    const [port] = notSeed(users) as [number];
    await kill(port);
    const error = (await p.publish(users.get(port) as string, notice(1)).catch((e: unknown) => e)) as PublishError;
    const why = `cannot reach Redis Cluster node 127.0.0.1:${port} (seed 127.0.0.1:${seedPort()}) (ECONNREFUSED)`;
    expect(error).toMatchObject({
      name: 'PublishError',
      code: 'redis_unavailable',
      attempts: 2,
      maybeStored: false,
      message: `${why} after 2 attempt(s)`,
    });
    // The node's own error: the call's says only "Too many Cluster redirections" (it was "(unknown)").
    expect(p.stats().lastRedisFailure).toMatchObject({ code: 'ECONNREFUSED', message: why });
  }, 30_000);

  it('a call written to a master that dies before it answers may be stored: maybeStored true', async () => {
    const users = await usersByMaster('down-written');
    const p = await connectedPublisher(users);
    const [port] = notSeed(users) as [number];
    const pid = Number(/process_id:(\d+)/.exec(await askRedis(port, 'INFO', 'server'))?.[1]);
    // Frozen: the call is written to its connection and no answer comes; then the node dies.
    process.kill(pid, 'SIGSTOP');
    const sent = p.publish(users.get(port) as string, notice(1)).catch((e: unknown) => e);
    await new Promise((resolve) => setImmediate(resolve)); // the call is out
    await kill(port);
    const error = (await sent) as PublishError;
    expect(error).toMatchObject({ code: 'redis_unavailable', maybeStored: true });
    expect(error.message).toMatch(/\(the event may be stored\)$/);
  }, 30_000);

  it('lastRedisFailure and unreachable follow the last node that failed, not the first', async () => {
    const users = await usersByMaster('down-twice');
    // Attempts that time out: two masters frozen fail the same way (ETIMEDOUT), one after the other.
    const p = await connectedPublisher(users, 1_000);
    const [first, second] = notSeed(users) as [number, number];
    const why = (port: number) =>
      `cannot reach Redis Cluster node 127.0.0.1:${port} (seed 127.0.0.1:${seedPort()}) (ETIMEDOUT)`;
    await freeze(first);
    await expect(p.publish(users.get(first) as string, notice(1))).rejects.toMatchObject({ code: 'redis_unavailable' });
    expect(p.stats().lastRedisFailure?.message).toBe(why(first));
    // Nothing stored in between: Redis stays down, and a second master fails with the same code.
    await freeze(second);
    await expect(p.publish(users.get(second) as string, notice(2))).rejects.toMatchObject({
      code: 'redis_unavailable',
    });
    expect(p.stats()).toMatchObject({ redis: 'down', lastRedisFailure: { code: 'ETIMEDOUT', message: why(second) } });
    // Once per node and cause, not once per attempt (four failed).
    const told = events.flatMap((e) => (e.kind === 'unreachable' ? [e.failure.message] : []));
    expect(told).toEqual([why(first), why(second)]);
  }, 30_000);
});
