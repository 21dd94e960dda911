import { CloseCode } from '@livebus/protocol';
import { fleetUserKeys, userKeys } from '@livebus/publisher/redis';
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
