import { CloseCode } from '@livebus/protocol';
import { fleetUserKeys, instanceKeys, userKeys, userSlot } from '@livebus/publisher/redis';
import {
  type FrozenRedis,
  freezeRedis,
  type RedisClusterHandle,
  startRedisCluster,
  waitFor,
} from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, TestClient, type TestGateway } from './helpers';

// A gateway on a real 3-master Redis Cluster whose one master stops answering (SIGSTOP: its
// connections stay open, nothing comes back; no failover, the node timeout is longer than the
// test). Users whose keys live on the other masters connect and get their events meanwhile; a
// hello of a user of the frozen master is closed 1013 (try again later) at the handshake timeout,
// not 4002 (auth timeout: its token was fine), and leaves no presence entry once the node
// answers again; that user's publish waits in the outbox and is delivered once. With a replica,
// the frozen master is failed over (its connections never close: no reset tells the gateway):
// its users' sessions resume on the promoted replica and hear `gap`, new ones are welcomed there.
// With the master holding the fleet's instance list (`lb:instances`, one slot for the whole
// fleet) frozen, the heartbeat still refreshes the users on the other masters beat after beat
// (its announce times out instead of holding every later beat), and announces again once it answers.
// The probe's view of the same (readiness, /healthz) is redis-probe-cluster.int.test.ts.
let cluster: RedisClusterHandle;
let t: TestGateway;
let frozen: FrozenRedis | undefined;

beforeAll(async () => {
  cluster = await startRedisCluster({ nodeTimeoutMs: 120_000 });
  t = await startGateway(
    {
      instanceId: 'gw-frozen-shard',
      redisUrl: cluster.url,
      redisCluster: true,
      logLevel: 'warn',
      handshakeTimeoutMs: 3_000,
      // A publish that outlives these retries answers 202 queued (after their sum and 250 ms).
      publishRetryDelaysMs: [100, 200],
    },
    composePorts,
  );
}, 60_000);

afterAll(async () => {
  // Continued first: a stopped node must not hold the gateway's shutdown.
  frozen?.thaw();
  try {
    await t?.close();
  } finally {
    await cluster?.stop();
  }
}, 60_000);

const progress = (n: number) => ({
  event: 'task.progress_update',
  data: { task_id: 't', status: 'running', progress: n },
});
const publish = (uid: string, n: number) =>
  httpJson(`${t.http}/publish`, { method: 'POST', body: JSON.stringify({ user_id: uid, event: progress(n) }) });

it("one frozen master: other shards' users connect and get events; its users' hellos close 1013 and leave nothing; their publishes arrive once it answers", async () => {
  const masters = (await cluster.topology()).filter((n) => n.role === 'master' && n.slots.length > 0);
  expect(masters).toHaveLength(3);
  // Not the seed the gateway was given, nor the one holding the instance list: a users' shard.
  const fleetPort = (await cluster.masterOf('lb:instances')).port;
  const victim = masters.find((n) => n.port !== cluster.nodes[0]?.port && n.port !== fleetPort);
  if (!victim) throw new Error('no master holds only users here');
  /** The first `prefix-<i>` user whose keys are (or are not) on the frozen master. */
  const userOn = async (prefix: string, frozen: boolean) => {
    for (let i = 0; ; i++) {
      const uid = `${prefix}-${i}`;
      if (((await cluster.masterOf(userKeys(uid).stream)).port === victim.port) === frozen) return uid;
    }
  };
  const [live, liveLater, away, awayLater] = [
    await userOn('live', false),
    await userOn('live-later', false),
    await userOn('away', true),
    await userOn('away-later', true),
  ];
  const liveClient = (await connectAs(t.url, live)).client;
  const awayClient = (await connectAs(t.url, away)).client;

  frozen = await freezeRedis(victim.port);
  try {
    // Another shard's user: published to and delivered at once; a new hello is welcomed.
    const stored = await publish(live, 1);
    expect(stored).toMatchObject({ status: 202, body: { accepted: true } });
    expect((await liveClient.next('event')).cursor).toBe(stored.body.cursor);
    const welcomed = await connectAs(t.url, liveLater);
    expect(welcomed.welcome.user_id).toBe(liveLater);

    // The frozen shard's user: the publish waits in the outbox (202 queued) ...
    expect(await publish(away, 2)).toEqual({ status: 202, body: { accepted: true, queued: true } });
    // ... and a hello is closed 1013 at the handshake timeout: the gateway's side, not the token.
    const stalled = new TestClient(t.url);
    await stalled.opened;
    stalled.send({ type: 'hello', v: 1, user_id: awayLater, session_id: 'stalled' });
    expect(await stalled.closed).toEqual({ code: CloseCode.TryAgainLater, reason: 'try again later' });
    expect(stalled.frames).toEqual([]);
    await t.hooks.waitFor('session.close', undefined, (e) => e.code === CloseCode.TryAgainLater);
    expect(t.hooks.of('session.close', undefined, (e) => e.code === CloseCode.TryAgainLater)).toEqual([
      {
        name: 'session.close',
        code: CloseCode.TryAgainLater,
        reason: 'try again later',
        type: 'try_again_later',
        authenticated: false,
      },
    ]);
    // Logged with the user, whose keys name the node that did not answer.
    expect(t.logs.of('handshake_stalled')).toMatchObject([
      { uid: awayLater, session_id: 'stalled', waiting_for: 'presence' },
    ]);
    // The sessions open before the freeze stay open.
    expect(liveClient.ws.readyState).toBe(liveClient.ws.OPEN);
    expect(awayClient.ws.readyState).toBe(awayClient.ws.OPEN);
  } finally {
    frozen.thaw();
  }

  // Answering again: the queued event reaches its user once, the stalled hello's entry is taken
  // back, and the same user connects.
  const delivered = await awayClient.next('event', undefined, 30_000);
  expect(delivered).toMatchObject(progress(2));
  const node = new Redis({ port: victim.port, host: '127.0.0.1' });
  try {
    const presence = fleetUserKeys(awayLater).presence;
    await waitFor(async () => (await node.hlen(presence)) === 0, "the stalled hello's entry taken back", 20_000);
    const again = await connectAs(t.url, awayLater, { session_id: 'stalled' });
    expect(again.welcome.user_id).toBe(awayLater);
    expect(await node.hkeys(presence)).toEqual(['stalled']);
  } finally {
    node.disconnect();
  }
  expect(awayClient.events().map((e) => e.data)).toEqual([progress(2).data]);
}, 120_000);

describe('a frozen master failed over to its replica', () => {
  let withReplicas: RedisClusterHandle;
  let gw: TestGateway;
  let stopped: FrozenRedis | undefined;
  beforeAll(async () => {
    withReplicas = await startRedisCluster({ replicas: 1, nodeTimeoutMs: 1_000 });
    gw = await startGateway(
      { instanceId: 'gw-frozen-failover', redisUrl: withReplicas.url, redisCluster: true, logLevel: 'warn' },
      composePorts,
    );
  }, 60_000);
  afterAll(async () => {
    stopped?.thaw();
    try {
      await gw?.close();
    } finally {
      await withReplicas?.stop();
    }
  }, 60_000);

  it("its users' sessions resume on the promoted replica and hear gap with what was published there; new hellos are welcomed", async () => {
    const masters = (await withReplicas.topology()).filter((n) => n.role === 'master' && n.slots.length > 0);
    const fleetPort = (await withReplicas.masterOf('lb:instances')).port;
    const victim = masters.find((n) => n.port !== withReplicas.nodes[0]?.port && n.port !== fleetPort);
    if (!victim) throw new Error('no master holds only users here');
    const users: string[] = [];
    for (let i = 0; users.length < 2; i++) {
      if ((await withReplicas.masterOf(userKeys(`fo-${i}`).stream)).port === victim.port) users.push(`fo-${i}`);
    }
    const [user, later] = users as [string, string];
    const send = (uid: string, n: number) =>
      httpJson(`${gw.http}/publish`, { method: 'POST', body: JSON.stringify({ user_id: uid, event: progress(n) }) });
    const first = await connectAs(gw.url, user);
    await send(user, 1);
    const before = await first.client.next('event');

    stopped = await freezeRedis(victim.port);
    await waitFor(
      async () => (await withReplicas.masterOf(userKeys(user).stream)).port !== victim.port,
      'the replica promoted',
      30_000,
      100,
    );
    // Stored on the promoted replica, past the offsets the frozen master may have handed out.
    // Accepted; with its cursor unless it waited past the retries (the first attempt may go to
    // the frozen master): then the event is read back where it lands.
    const stored = await send(user, 2);
    expect(stored).toMatchObject({ status: 202, body: { accepted: true } });
    // The open session cannot tell what the frozen master had: it is told to resume ...
    expect(await first.client.closed).toEqual({ code: CloseCode.ServiceRestart, reason: 'events missed: resume' });
    // ... and hears gap, with the event the promoted replica took.
    const resumed = await connectAs(gw.url, user, {
      session_id: first.welcome.session_id,
      last_cursor: before.cursor,
    });
    expect(resumed.welcome.resume).toMatchObject({ status: 'gap', replayed: 1 });
    const replayed = await resumed.client.next('event');
    expect(replayed.data).toEqual(progress(2).data);
    if (typeof stored.body.cursor === 'string') expect(replayed.cursor).toBe(stored.body.cursor);
    // Another user of that shard is welcomed on the promoted replica and gets its events.
    const fresh = await connectAs(gw.url, later);
    const next = await send(later, 3);
    expect((await fresh.client.next('event')).cursor).toBe(next.body.cursor);
    expect(resumed.client.events().map((e) => e.cursor)).toEqual([replayed.cursor]);
  }, 120_000);
});

describe('the master holding the instance list frozen', () => {
  // Short, so that several TTLs pass while it is frozen: a beat every 500 ms.
  const ttlMs = 1_500;
  const instanceId = 'gw-frozen-fleet';
  let gw: TestGateway;
  let held: FrozenRedis | undefined;
  const nodes: Redis[] = [];
  beforeAll(async () => {
    gw = await startGateway(
      { instanceId, redisUrl: cluster.url, redisCluster: true, logLevel: 'warn', instanceTtlMs: ttlMs },
      composePorts,
    );
  }, 60_000);
  afterEach(() => {
    held?.thaw();
    for (const node of nodes.splice(0)) node.disconnect();
  });
  afterAll(async () => {
    held?.thaw();
    await gw?.close();
  }, 60_000);

  /** A connection to one node (not the cluster client: it reads that node only). */
  const nodeAt = (port: number) => {
    const node = new Redis({ port, host: '127.0.0.1' });
    nodes.push(node);
    return node;
  };
  /** Redis server time on `node`, ms: the clock presence and instance expiries are written in. */
  const nowOn = async (node: Redis) => {
    const [s, us] = await node.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  };

  it("other shards' users stay present while it answers nothing (the heartbeat goes on without its announce); the instance is announced again once it answers", async () => {
    const fleetNode = await cluster.masterOf(instanceKeys.list());
    const others = (await cluster.topology()).filter(
      (n) => n.role === 'master' && n.slots.length > 0 && n.port !== fleetNode.port,
    );
    expect(others).toHaveLength(2);
    // A user on each other master, by the slot of its keys.
    const users = others.map((master) => {
      for (let i = 0; ; i++) {
        const uid = `kept-${i}`;
        const slot = userSlot(uid);
        if (master.slots.some(([from, to]) => slot >= from && slot <= to)) {
          return { uid, node: nodeAt(master.port), keys: fleetUserKeys(uid), score: '', refreshes: 0 };
        }
      }
    });
    const sessions = await Promise.all(users.map((u) => connectAs(gw.url, u.uid)));
    const fleet = nodeAt(fleetNode.port);
    const listed = async () => Number((await fleet.zscore(instanceKeys.list(), instanceId)) ?? 0);
    await waitFor(async () => (await listed()) > (await nowOn(fleet)), 'the instance announced', 10_000);

    /**
     * Waits until every user's presence entry was refreshed `beats` times more, failing as soon
     * as one is found expired (gone, or its expiry behind its node's clock).
     */
    const refreshedLive = async (beats: number) => {
      const expired: string[] = [];
      for (const u of users) u.refreshes = 0;
      await waitFor(
        async () => {
          for (const [i, u] of users.entries()) {
            const sessionId = sessions[i]?.welcome.session_id as string;
            const [score, entry, now] = await Promise.all([
              u.node.zscore(u.keys.presenceExpiry, sessionId),
              u.node.hexists(u.keys.presence, sessionId),
              nowOn(u.node),
            ]);
            if (score === null || Number(score) <= now || entry !== 1) {
              expired.push(`${u.uid}: expiry ${score}, node time ${now}, entry ${entry}`);
              return true;
            }
            if (score !== u.score) {
              u.score = score;
              u.refreshes++;
            }
          }
          return users.every((u) => u.refreshes > beats);
        },
        `${beats} refreshes of each user's presence entry`,
        (beats + 2) * ttlMs,
        25,
      );
      expect(expired).toEqual([]);
    };
    await refreshedLive(1);

    held = await freezeRedis(fleetNode.port);
    try {
      // Twelve beats: four TTLs with the instance list's master answering nothing. While the
      // heartbeat's announce waited without a timeout, it held every later beat, and these expired.
      await refreshedLive(12);
    } finally {
      held.thaw();
    }

    // Answering again: the heartbeat announces the instance again, a beat (a third of the TTL)
    // or more after the thaw: later than any announce that waited in the node's queue.
    const thawed = await nowOn(fleet);
    await waitFor(
      async () => (await listed()) >= thawed + ttlMs + ttlMs / 3,
      'the instance announced again after the thaw',
      10_000,
    );
    const view = await httpJson(`${gw.http}/cluster`);
    expect(view.body.instances).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: instanceId, self: true, sessions: 2, users: 2 })]),
    );
    // Nothing lost: each session still open, present and refreshed, and gets its events.
    await refreshedLive(1);
    expect(gw.hooks.of('session.close')).toEqual([]);
    for (const [i, u] of users.entries()) {
      const { client, welcome } = sessions[i] as (typeof sessions)[number];
      expect(client.ws.readyState).toBe(client.ws.OPEN);
      expect(await u.node.hkeys(u.keys.presence)).toEqual([welcome.session_id]);
      const sent = await httpJson(`${gw.http}/publish`, {
        method: 'POST',
        body: JSON.stringify({ user_id: u.uid, event: progress(7) }),
      });
      expect((await client.next('event')).cursor).toBe(sent.body.cursor);
    }
  }, 120_000);
});
