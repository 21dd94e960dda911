import { type EventFrame, parseCursor, type TaskProgressUpdate } from '@livebus/protocol';
import { createPublisher, PublishError, userKeys } from '@livebus/publisher';
import { type RedisClusterHandle, startRedisCluster, waitFor } from '@livebus/test-support';
import { Cluster } from 'ioredis';
import { BusConsumer } from '../src/index';
import { type GatewayProcess, getJson, startGatewayProcess, startWorkerProcess } from './gateway-process';

// A Redis Cluster with replicas (three masters, one replica each) loses a master:
// SIGKILL (its replica is promoted after the node timeout) and a planned
// CLUSTER FAILOVER. Two gateway processes on the cluster, a live session per
// user, and a backend publishing through @livebus/publisher all the while.
// LIVEBUS_FAILOVER_FULL=1 runs the size of the field report (30 users, about
// 150 events/s for 16 s, the kill at 5 s, node timeout 2 s).
const FULL = process.env.LIVEBUS_FAILOVER_FULL === '1';
const SIZE = FULL
  ? { users: 30, eventsPerTick: 3, publishMs: 16_000, faultAtMs: 5_000, nodeTimeoutMs: 2_000, flips: 20 }
  : { users: 12, eventsPerTick: 3, publishMs: 5_000, faultAtMs: 1_500, nodeTimeoutMs: 1_000, flips: 6 };
const TICK_MS = 20;

let cluster: RedisClusterHandle;
let admin: Cluster;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ replicas: 1, nodeTimeoutMs: SIZE.nodeTimeoutMs });
  admin = new Cluster(cluster.nodes);
  admin.on('error', () => {});
  for (const id of ['gw-failover-a', 'gw-failover-b']) {
    gateways.push(
      await startGatewayProcess(
        id,
        { REDIS_URL: cluster.url, REDIS_CLUSTER: 'true', UNIFIED_REGISTRY_ENABLED: 'true', LOG_LEVEL: 'warn' },
        undefined,
        30_000,
      ),
    );
  }
}, 120_000);
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
  admin?.disconnect();
  await cluster?.stop();
});

/** One user's live session: the numbers it was handed, with their cursors, and the gaps it was told. */
function follow(userId: string, gateway: GatewayProcess) {
  const client = new BusConsumer({
    url: `ws://127.0.0.1:${gateway.port}/ws`,
    userId,
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 500,
  });
  const seen: Array<{ n: number; cursor: string }> = [];
  let gaps = 0;
  client.onClient('error', () => {});
  client.onClient('gap', () => {
    gaps++;
  });
  client.onAny((frame: EventFrame) =>
    seen.push({ n: Number((frame.data as { message: string }).message), cursor: frame.cursor }),
  );
  return {
    userId,
    client,
    seen,
    gaps: () => gaps,
  };
}

/** What a user's stream holds now: offset -> number published, in stream order. */
async function streamOf(userId: string): Promise<Array<{ offset: number; n: number }>> {
  const entries = await admin.xrange(userKeys(userId).stream, '-', '+');
  return entries.map(([id, fields]) => {
    const frame = JSON.parse(fields[fields.indexOf('d') + 1] as string) as EventFrame;
    return { offset: Number(id.split('-')[0]), n: Number((frame.data as { message: string }).message) };
  });
}

const isIncreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > (xs[i - 1] as number));
/**
 * Publishes to `users` at a steady rate through a master's loss (`fault`, on the
 * master serving most of them) and checks every count: nothing rejected, lost or
 * doubled, order kept per user, and each session handed every acknowledged
 * event or told `gap`, never an event under a cursor that names another, and an
 * event twice only after `gap`, one the promoted replica lost.
 */
async function throughFailover(
  name: string,
  fault: (victim: { id: string; port: number; key: string }) => Promise<void>,
) {
  const users = Array.from({ length: SIZE.users }, (_, i) => `${name}-${i}`);
  const followers = users.map((u, i) => follow(u, gateways[i % gateways.length] as GatewayProcess));
  for (const f of followers) await f.client.connect();

  // The master serving the most users.
  const byMaster = new Map<string, { id: string; port: number; key: string; users: number }>();
  for (const u of users) {
    const m = await cluster.masterOf(userKeys(u).stream);
    const entry = byMaster.get(m.id) ?? { id: m.id, port: m.port, key: userKeys(u).stream, users: 0 };
    entry.users++;
    byMaster.set(m.id, entry);
  }
  const victim = [...byMaster.values()].sort((a, b) => b.users - a.users)[0] as {
    id: string;
    port: number;
    key: string;
  };

  // A seed that is not the victim: the publisher starts on the cluster as it is.
  const seed = cluster.nodes.find((n) => n.port !== victim.port) as { port: number };
  const publisher = createPublisher({ redisUrl: `redis://127.0.0.1:${seed.port}`, cluster: true });
  const acked = new Map<string, number[]>(users.map((u) => [u, []]));
  const rejected: string[] = [];
  const sent = new Map<string, number>(users.map((u) => [u, 0]));
  const pending: Array<Promise<void>> = [];
  const started = Date.now();
  const delays: number[] = [];
  // Sent and acknowledged, per `user:n`, to set a lost event against the nodes' logs.
  const timeline = new Map<string, [string, string]>();
  let turn = 0;
  const timer = setInterval(() => {
    for (let k = 0; k < SIZE.eventsPerTick; k++) {
      const user = users[turn++ % users.length] as string;
      const n = (sent.get(user) ?? 0) + 1;
      sent.set(user, n);
      const at = Date.now();
      pending.push(
        publisher.publish(user, { event: 'session.notice', data: { level: 'info', message: String(n) } }).then(
          () => {
            acked.get(user)?.push(n);
            delays.push(Date.now() - at);
            timeline.set(`${user}:${n}`, [new Date(at).toISOString(), new Date().toISOString()]);
          },
          (error: unknown) => {
            rejected.push(error instanceof PublishError ? `${error.code}: ${error.message}` : String(error));
          },
        ),
      );
    }
  }, TICK_MS);
  await new Promise((r) => setTimeout(r, SIZE.faultAtMs));
  try {
    await fault(victim);
  } catch (error) {
    // Nothing left running to keep jest from exiting.
    clearInterval(timer);
    await publisher.close();
    for (const f of followers) f.client.close();
    throw error;
  }
  await new Promise((r) => setTimeout(r, Math.max(0, SIZE.publishMs - (Date.now() - started))));
  clearInterval(timer);
  await Promise.all(pending);
  expect(await publisher.flush(30_000)).toBe(true);
  const stats = publisher.stats();
  await publisher.close();

  // Publishing: 0 rejected, 0 lost, in order per user; repeats (at least once) counted.
  expect(rejected).toEqual([]);
  let lost = 0;
  let duplicated = 0;
  const streams = new Map<string, Array<{ offset: number; n: number }>>();
  for (const u of users) {
    const stream = await streamOf(u);
    streams.set(u, stream);
    const stored = stream.map((e) => e.n);
    // Each once, in order: a batch retried after its reply was lost with the dying
    // master is recognised by the append (docs/reliability.md, exactly once).
    expect(isIncreasing(stored)).toBe(true);
    duplicated += stored.length - new Set(stored).size;
    const missing = (acked.get(u) ?? []).filter((n) => !stored.includes(n));
    lost += missing.length;
    // An acknowledged publish the stream does not hold: which, and what the stream has around it.
    if (missing.length > 0) {
      const around = stream.filter((e) => Math.abs(e.n - (missing[0] as number)) <= 3);
      const when = missing.map((n) => timeline.get(`${u}:${n}`));
      process.stdout.write(
        `cluster failover lost: ${JSON.stringify({ user: u, missing, when, around, publisher: stats })}\n`,
      );
    }
  }
  if (lost > 0) process.stdout.write(`${cluster.logs(120)}\n`);
  expect(lost).toBe(0);
  expect(duplicated).toBe(0);

  // Sessions: every acknowledged event handed over, or the session told gap.
  for (const f of followers) {
    const want = acked.get(f.userId) ?? [];
    await waitFor(
      () => f.gaps() > 0 || want.every((n) => f.seen.some((s) => s.n === n)),
      `${f.userId}: every event or a gap`,
      20_000,
    ).catch((error: unknown) => {
      const numbers = f.seen.map((s) => s.n);
      const missing = want.filter((n) => !numbers.includes(n));
      throw new Error(
        `${String(error)}; ${want.length} acknowledged, ${numbers.length} handed, missing ${missing.slice(0, 5)}...${missing.at(-1)} (${missing.length}), last cursor ${f.client.lastCursor}, state ${f.client.state}, counters ${JSON.stringify(f.client.counters)} logs ${JSON.stringify(gateways.map((g) => g.logs.slice(-15)))}`,
      );
    });
  }
  let sessionsTold = 0;
  let eventsNotHanded = 0;
  let handedAgain = 0;
  for (const f of followers) {
    const stream = streams.get(f.userId) ?? [];
    // Handed live under an offset the stream no longer holds: an event the promoted replica lost
    // (the master sent it to subscribers, then died before its replica had it). Its publish got no
    // reply, so the publisher stored it again, after the offset skip; the session, told `gap`,
    // may be handed that second copy in the replay that follows (docs/reliability.md). Only then
    // is a number handed twice; every other copy is in order, each once.
    const held = new Set(stream.map((e) => e.offset));
    const lostByReplica = f.seen.filter((s) => !held.has(parseCursor(s.cursor)?.offset ?? -1));
    const numbers = f.seen.filter((s) => !lostByReplica.includes(s)).map((s) => s.n);
    if (lostByReplica.length > 0) expect(f.gaps()).toBeGreaterThan(0);
    handedAgain += lostByReplica.filter((s) => numbers.includes(s.n)).length;
    // What the session was handed around the first step back, and the gateways' last lines.
    if (!isIncreasing(numbers)) {
      const at = f.seen.findIndex((s, i) => i > 0 && s.n <= (f.seen[i - 1] as { n: number }).n);
      const around = f.seen.slice(Math.max(0, at - 3), at + 3);
      process.stdout.write(
        `cluster failover out of order: ${JSON.stringify({ user: f.userId, at, around, lostByReplica, gaps: f.gaps(), logs: gateways.map((g) => g.logs.slice(-30)) })}\n`,
      );
    }
    expect(isIncreasing(numbers)).toBe(true);
    // A cursor names the event the stream holds under it, never another.
    for (const s of f.seen) {
      const at = parseCursor(s.cursor);
      const stored = stream.find((e) => e.offset === at?.offset);
      if (stored) expect({ cursor: s.cursor, n: stored.n }).toEqual({ cursor: s.cursor, n: s.n });
    }
    const missing = (acked.get(f.userId) ?? []).filter((n) => !numbers.includes(n)).length;
    eventsNotHanded += missing;
    if (f.gaps() > 0) sessionsTold++;
    else expect(missing).toBe(0);
    f.client.close();
  }

  // Both gateways lived through it.
  for (const g of gateways) {
    expect(g.child.exitCode).toBeNull();
    expect((await getJson(`${g.http}/healthz`)).status).toBe(200);
  }
  const sorted = [...delays].sort((a, b) => a - b);
  const figures = {
    scenario: name,
    users: users.length,
    published: [...sent.values()].reduce((a, b) => a + b, 0),
    rejected: rejected.length,
    lost,
    duplicated,
    retriedAttempts: stats.retried,
    deduplicatedOnRetry: stats.deduplicated,
    queued: stats.queued,
    delayedOver1s: delays.filter((d) => d > 1_000).length,
    maxDelayMs: sorted.at(-1),
    p99DelayMs: sorted[Math.floor(sorted.length * 0.99)],
    sessionsToldGap: sessionsTold,
    eventsNotHandedToSessions: eventsNotHanded,
    handedAgainLostByReplica: handedAgain,
  };
  process.stdout.write(`cluster failover figures: ${JSON.stringify(figures)}\n`);
  return { victim, figures };
}

describe('a Redis Cluster with replicas losing a master', () => {
  it('SIGKILL: nothing rejected, lost or doubled; sessions get every event or gap; gateways healthy', async () => {
    const { victim } = await throughFailover('kill', async (master) => {
      await cluster.kill(master.port);
    });
    await cluster.waitStable();
    // The old master comes back as a replica of the promoted one: the next scenario has a replica to fail over to.
    await cluster.restart(victim.port);
    expect((await cluster.topology()).find((n) => n.id === victim.id)?.role).toBe('replica');
  }, 180_000);

  it('planned CLUSTER FAILOVER: the same, and the old master serves as a replica', async () => {
    const { victim } = await throughFailover('planned', async (master) => {
      const replica = (await cluster.topology()).find((n) => n.masterId === master.id);
      if (!replica) throw new Error(`no replica of ${master.port}`);
      await cluster.failover(replica.port);
    });
    expect((await cluster.topology()).find((n) => n.id === victim.id)?.role).toBe('replica');
  }, 180_000);

  // One planned failover crashed a gateway in about 1 run in 10 (an unhandled ioredis
  // 'error' for the SUNSUBSCRIBE pushes of the old master, see the bus's
  // sharded-subscriber-guard.ts): many of them, back and forth, under both gateways.
  it(`${SIZE.flips} planned failovers back and forth: the gateways stay up, nothing rejected, lost or doubled`, async () => {
    await throughFailover('flips', async (victim) => {
      for (let i = 0; i < SIZE.flips; i++) {
        // Whichever node serves the victim's slots now hands them to its replica (the
        // old master shows as the new one's replica once the gossip reached the node asked).
        const replica = await waitFor(
          async () => {
            const master = await cluster.masterOf(victim.key);
            return (await cluster.topology()).find((n) => n.masterId === master.id && !n.failing);
          },
          `a replica of the master of ${victim.key}`,
          20_000,
        );
        await cluster.failover(replica.port);
      }
    });
  }, 240_000);

  it('SIGKILL of the master holding the task queue: a running task finishes once', async () => {
    const worker = await startWorkerProcess('worker-failover', {
      REDIS_URL: cluster.url,
      REDIS_CLUSTER: 'true',
      TASK_STAGE_DELAY_MS: '400',
    });
    try {
      const user = 'task-failover';
      const client = new BusConsumer({
        url: `ws://127.0.0.1:${(gateways[0] as GatewayProcess).port}/ws`,
        userId: user,
        minReconnectDelayMs: 20,
        maxReconnectDelayMs: 500,
      });
      client.onClient('error', () => {});
      const updates: TaskProgressUpdate[] = [];
      client.onAny((frame: EventFrame) => {
        if (frame.event === 'task.progress_update') updates.push(frame.data as TaskProgressUpdate);
      });
      await client.connect();
      const content = Array.from({ length: 30 }, (_, i) => `Sentence ${i} is about queues.`).join('\n\n');
      const started = await client.rpc('TASK.start_document_analysis', user, { content }, 'failover-job');
      await waitFor(() => updates.some((u) => u.progress >= 15), 'the task mid-way', 20_000);

      const master = await cluster.masterOf(`{lbq}:task:${started.task_id}`);
      await cluster.kill(master.port);
      await cluster.waitStable();
      await waitFor(() => updates.some((u) => u.status === 'completed'), 'the task completed', 60_000);
      // A moment for a second run, were there one, to show itself.
      await new Promise((r) => setTimeout(r, 1_000));
      const finished = worker.logs.filter((l) => l.event === 'task_finished' && l.outcome === 'completed');
      expect(finished).toHaveLength(1);
      // Its one attempt waited for the promoted replica rather than failing and starting over.
      const retries = worker.logs.filter((l) => l.event === 'task_retry').map((l) => l.error);
      expect(retries).toEqual([]);
      expect(updates.filter((u) => u.status === 'completed')).toHaveLength(1);
      expect(await client.rpc('TASK.get_status', started.task_id)).toMatchObject({ status: 'completed' });
      process.stdout.write(
        `cluster failover figures: ${JSON.stringify({
          scenario: 'task',
          retries: retries.length,
          updates: updates.length,
        })}\n`,
      );
      client.close();
      await cluster.restart(master.port);
    } finally {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
  }, 180_000);
});
