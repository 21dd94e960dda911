import type { AppEvent } from '@livebus/protocol';
import { type RedisClusterHandle, startRedisCluster, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher, type Publisher } from '../src';
import { userKeys } from '../src/keys';

const progress = (percent: number): AppEvent => ({
  event: 'task.progress_update',
  data: { task_id: 't1', status: 'running', progress: percent },
});

/**
 * A shard whose master stops answering (a host gone without a reset, a process frozen): its
 * connection stays open and nothing comes back. The other shards' users must not wait for it.
 * No failover here (a node timeout longer than the test): the frozen master is woken at the end.
 */
describe('a publisher on a Redis Cluster with one master frozen', () => {
  let cluster: RedisClusterHandle;
  let frozen: { port: number; pid: number } | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 120_000 });
  }, 60_000);
  let publisher: Publisher | undefined;
  afterEach(async () => {
    if (frozen) process.kill(frozen.pid, 'SIGCONT');
    frozen = undefined;
    await publisher?.close();
    publisher = undefined;
  });
  afterAll(() => cluster.stop());

  /** Two users: `away` on the master that will be frozen, `other` on another one. */
  async function usersOnTwoShards(prefix: string): Promise<{ away: string; other: string; awayPort: number }> {
    const byPort = new Map<number, string>();
    for (let i = 0; byPort.size < 2; i++) {
      const user = `${prefix}-${i}`;
      const { port } = await cluster.masterOf(userKeys(user).stream);
      if (!byPort.has(port)) byPort.set(port, user);
    }
    const [[awayPort, away], [, other]] = [...byPort] as [[number, string], [number, string]];
    return { away, other, awayPort };
  }

  async function freeze(port: number): Promise<void> {
    const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    const info = await node.info('server');
    node.disconnect();
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    process.kill(pid, 'SIGSTOP');
    frozen = { port, pid };
  }

  async function streamLength(user: string): Promise<number> {
    const { port } = await cluster.masterOf(userKeys(user).stream);
    const node = new Redis({ port, host: '127.0.0.1' });
    try {
      return await node.xlen(userKeys(user).stream);
    } finally {
      node.disconnect();
    }
  }

  /** A promise's outcome as it happens, for reading while it is pending. */
  function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
    const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
    promise.then(
      (value) => Object.assign(state, { settled: true, value }),
      (error: unknown) => Object.assign(state, { settled: true, error }),
    );
    return state;
  }

  it("a user of another shard, published to after the frozen shard's, is stored while that one waits", async () => {
    const { away, other, awayPort } = await usersOnTwoShards('frozen-later');
    publisher = createPublisher({ redisUrl: cluster.url, cluster: true }, { attemptTimeoutMs: 60_000 });
    await publisher.publish(other, progress(1)); // connected, scripts loaded
    await freeze(awayPort);
    const first = track(publisher.publish(away, progress(2)));
    await new Promise((resolve) => setImmediate(resolve)); // the away user's call is out
    const later = track(publisher.publish(other, progress(3)));
    await waitFor(() => later.settled, 'the other shard’s publish to settle', 10_000);
    expect(later.error).toBeUndefined();
    expect(first.settled).toBe(false);
    process.kill((frozen as { pid: number }).pid, 'SIGCONT');
    frozen = undefined;
    await waitFor(() => first.settled, 'the frozen shard’s publish to settle once it answers', 10_000);
    expect(first.error).toBeUndefined();
    expect(await streamLength(away)).toBe(1);
    expect(await streamLength(other)).toBe(2);
  }, 30_000);

  it('an attempt that times out on the frozen shard fails its users only', async () => {
    const { away, other, awayPort } = await usersOnTwoShards('frozen-same');
    publisher = createPublisher(
      { redisUrl: cluster.url, cluster: true },
      { attemptTimeoutMs: 1_000, retryDelaysMs: [200] },
    );
    await publisher.publish(other, progress(1));
    await freeze(awayPort);
    // The same tick: one round.
    const first = track(publisher.publish(away, progress(2)));
    const beside = track(publisher.publish(other, progress(3)));
    await waitFor(() => beside.settled, 'the other shard’s publish to settle', 10_000);
    expect(beside.error).toBeUndefined();
    // Stored before the away user's attempt failed.
    expect(publisher.stats().retried).toBe(0);
    await waitFor(() => publisher?.stats().retried, 'the away user’s attempt to time out', 10_000);
    // Only the away user's event was retried; the other's, stored, was not sent again.
    expect(publisher.stats()).toMatchObject({ retried: 1, deduplicated: 0 });
    // The other shard is still served at once, on the same connections.
    const after = track(publisher.publish(other, progress(4)));
    await waitFor(() => after.settled, 'a later publish to the other shard', 10_000);
    expect(after.error).toBeUndefined();
    expect(first.settled).toBe(false);
    process.kill((frozen as { pid: number }).pid, 'SIGCONT');
    frozen = undefined;
    await waitFor(() => first.settled, 'the frozen shard’s publish to settle once it answers', 15_000);
    expect(first.error).toBeUndefined();
    expect(await streamLength(away)).toBe(1);
    expect(await streamLength(other)).toBe(3);
  }, 40_000);
  it("a frozen master's users fill at most 90 % of the outbox: the other shards' users still get in", async () => {
    const { away, other, awayPort } = await usersOnTwoShards('frozen-full');
    // A second user on the frozen master: its events count with the first's.
    let awayToo = '';
    for (let i = 0; !awayToo; i++) {
      const user = `frozen-full-too-${i}`;
      if ((await cluster.masterOf(userKeys(user).stream)).port === awayPort) awayToo = user;
    }
    publisher = createPublisher(
      { redisUrl: cluster.url, cluster: true },
      { attemptTimeoutMs: 60_000, outboxMaxEvents: 10 },
    );
    await publisher.publish(other, progress(1));
    await freeze(awayPort);
    // Nothing failed yet (the calls wait, up to a minute): the node's users still hold 9 of 10 places at most.
    const held = Array.from({ length: 9 }, (_, i) =>
      track(publisher?.publish(i % 2 ? awayToo : away, progress(2 + i)) as Promise<unknown>),
    );
    await expect(publisher.publish(awayToo, progress(20))).rejects.toMatchObject({ code: 'outbox_full' });
    await expect(publisher.publish(other, progress(21))).resolves.toMatchObject({ event: 'task.progress_update' });
    expect(publisher.stats()).toMatchObject({ waiting: 9, dropped: 1 });
    expect(held.filter((h) => h.settled)).toHaveLength(0);
    expect(await streamLength(other)).toBe(2);
    process.kill((frozen as { pid: number }).pid, 'SIGCONT');
    frozen = undefined;
    await waitFor(() => held.every((h) => h.settled), 'the frozen master’s users to be stored once it answers', 15_000);
    expect(held.filter((h) => h.error)).toHaveLength(0);
    expect((await streamLength(away)) + (await streamLength(awayToo))).toBe(9);
  }, 40_000);
});
