import { type RetentionOptions, userKeys } from '@livebus/publisher';
import { endSlotRefreshes } from '@livebus/publisher/redis';
import {
  type ClusterNodeView,
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisBackends,
  waitFor,
} from '@livebus/test-support';
import { Cluster, Redis } from 'ioredis';
import { contractRetention, eventBusContract } from '../src/fleet/bus/event-bus.contract';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';

let server: RedisServerHandle;
let cluster: RedisClusterHandle;
const admins: Array<Redis | Cluster> = [];
beforeAll(async () => {
  ({ server, cluster } = await startRedisBackends());
}, 60_000);
afterAll(async () => {
  for (const c of admins) {
    c.disconnect();
    endSlotRefreshes(c);
  }
  await Promise.all([server.stop(), cluster.stop()]);
});

// Each make() is a client of its own: two handles are two gateway instances.
eventBusContract('Redis (standalone)', {
  make: async () => new RedisEventBus(new Redis(server.url), { ...contractRetention, ownsClient: true }),
  reset: async () => {
    const admin = new Redis(server.url);
    admins.push(admin);
    await admin.flushall();
  },
});

eventBusContract('Redis Cluster (3 masters)', {
  make: async () => new RedisEventBus(new Cluster(cluster.nodes), { ...contractRetention, ownsClient: true }),
  reset: async () => {
    const admin = new Cluster(cluster.nodes);
    admins.push(admin);
    await admin.ping();
    await Promise.all(admin.nodes('master').map((n) => n.flushall()));
  },
});

const note = (message: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message } });

async function waitForCount(seen: () => number, n: number, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (seen() < n) {
    if (Date.now() > end) throw new Error(`saw ${seen()} of ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Kills every subscriber connection from the server side (CLIENT KILL), as a network blip would. */
async function killSubscribers(url: string): Promise<void> {
  const admin = new Redis(url);
  admins.push(admin);
  const list = (await admin.client('LIST')) as string;
  const subIds = list
    .split('\n')
    .filter((l) => l.includes('cmd=ssubscribe') || /sub=\d+ psub=\d+ ssub=[1-9]/.test(l))
    .map((l) => /id=(\d+)/.exec(l)?.[1])
    .filter(Boolean) as string[];
  expect(subIds.length).toBeGreaterThan(0);
  for (const id of subIds) await admin.client('KILL', 'ID', id);
}

describe('RedisEventBus on Redis', () => {
  const make = (retention: RetentionOptions = contractRetention) =>
    new RedisEventBus(new Redis(server.url), { ...retention, ownsClient: true });

  it('keeps delivering live events after the subscriber reconnects, the missed ones included, in order', async () => {
    const [bus, other] = [make(), make()];
    const uid = `reconnect-${Date.now()}`;
    const seen: string[] = [];
    const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
    const first = await other.publish(uid, note('1'));
    await waitForCount(() => seen.length, 1);
    // Kill the subscriber's connection from the server side, publish while it is away.
    await killSubscribers(server.url);
    const during = await other.publish(uid, note('2'));
    await waitForCount(() => seen.length, 2);
    const after = await other.publish(uid, note('3'));
    await waitForCount(() => seen.length, 3);
    expect(seen).toEqual([first.cursor, during.cursor, after.cursor]);
    await off();
    await Promise.all([bus.close(), other.close()]);
  });

  it('a stream that keeps no events (retention 0): after the subscriber was away, the live events go on (the missed one is gone)', async () => {
    const live = { ...contractRetention, retentionEvents: 0 };
    const [bus, other] = [make(live), make(live)];
    const uid = `keeps-none-${Date.now()}`;
    try {
      const seen: string[] = [];
      const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
      const first = await other.publish(uid, note('1'));
      await waitForCount(() => seen.length, 1);
      await killSubscribers(server.url);
      // Published while the subscriber is away: the stream keeps none, so no read can find it.
      await other.publish(uid, note('2'));
      // Once the subscriber is back (an event reaches the listener), the events after it come
      // live, past the hole their offsets leave.
      const probes: string[] = [];
      for (let n = 3; seen.length < 2; n++) {
        probes.push((await other.publish(uid, note(String(n)))).cursor);
        await new Promise((r) => setTimeout(r, 50));
        if (n > 100) throw new Error('nothing handed on after the subscriber came back');
      }
      const later: string[] = [];
      for (let n = 0; n < 3; n++) later.push((await other.publish(uid, note(`later ${n}`))).cursor);
      await waitForCount(() => (seen.at(-1) === later.at(-1) ? 1 : 0), 1);
      expect(seen[0]).toBe(first.cursor);
      expect(seen.slice(-3)).toEqual(later);
      // Between them, only events published after the subscriber was away (the probes), each once, in order.
      const between = seen.slice(1, -3);
      expect(between.length).toBeGreaterThan(0);
      expect(between).toEqual(probes.filter((c) => between.includes(c)));
      await off();
    } finally {
      await Promise.all([bus.close(), other.close()]);
    }
  });

  it('tells of a stream made anew while the subscriber was away, once, before the new epoch reaches the listener', async () => {
    const [bus, other] = [make(), make()];
    const uid = `made-anew-${Date.now()}`;
    try {
      const seen: string[] = [];
      bus.onStreamLost((user, epoch) => seen.push(`lost ${user} ${epoch}`));
      const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
      const first = await other.publish(uid, note('1'));
      await waitForCount(() => seen.length, 1);
      // Away and back, the stream as it was: nothing to tell.
      await killSubscribers(server.url);
      const second = await other.publish(uid, note('2'));
      await waitForCount(() => seen.length, 2);
      // The user's keys lost (as in a Redis restarted empty), then away and back.
      const admin = new Redis(server.url);
      admins.push(admin);
      const keys = userKeys(uid);
      await admin.del(keys.stream, keys.meta);
      await killSubscribers(server.url);
      // Published while the subscriber comes back, or just after: told of the loss first either way.
      const fresh = await other.publish(uid, note('3'));
      await waitForCount(() => seen.length, 4);
      const oldEpoch = first.cursor.slice(0, first.cursor.lastIndexOf(':'));
      expect(seen).toEqual([first.cursor, second.cursor, `lost ${uid} ${oldEpoch}`, fresh.cursor]);
      expect(fresh.cursor.startsWith(`${oldEpoch}:`)).toBe(false);
      await off();
    } finally {
      await Promise.all([bus.close(), other.close()]);
    }
  });

  it('tells nothing of a stream made anew whose last event is older than its key expiry (an idle user: it may just have expired)', async () => {
    let now = 0;
    const bus = new RedisEventBus(new Redis(server.url), { ...contractRetention, ownsClient: true, clock: () => now });
    const other = make();
    const uid = `expired-${Date.now()}`;
    try {
      const seen: string[] = [];
      bus.onStreamLost((user) => seen.push(`lost ${user}`));
      const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
      const first = await other.publish(uid, note('1'));
      await waitForCount(() => seen.length, 1);
      // A day later (the epoch's 24 h expiry), the keys gone, the subscriber away and back.
      now += 24 * 3_600_000;
      const admin = new Redis(server.url);
      admins.push(admin);
      const keys = userKeys(uid);
      await admin.del(keys.stream, keys.meta);
      await killSubscribers(server.url);
      // The catch-up's read found no stream and made the new epoch (its meta) before this publish.
      const made = async () => {
        for (const end = Date.now() + 5_000; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
          if ((await admin.exists(keys.meta)) === 1) return true;
        }
        return false;
      };
      expect(await made()).toBe(true);
      const fresh = await other.publish(uid, note('2'));
      await waitForCount(() => seen.length, 2);
      expect(seen).toEqual([first.cursor, fresh.cursor]);
      await off();
    } finally {
      await Promise.all([bus.close(), other.close()]);
    }
  });

  it('a user who has had no event yet still gets the ones published while the subscriber was away', async () => {
    const [bus, other] = [make(), make()];
    const uid = `reconnect-none-${Date.now()}`;
    const seen: string[] = [];
    const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
    await killSubscribers(server.url);
    const during = await other.publish(uid, note('while away'));
    await waitForCount(() => seen.length, 1);
    expect(seen).toEqual([during.cursor]);
    await off();
    await Promise.all([bus.close(), other.close()]);
  });

  it('a subscriber connection just opened: users who listen while it connects get every event published after', async () => {
    // As the gateway opens its client (with auto-pipelining); its subscriber opens at the first listen.
    const bus = new RedisEventBus(new Redis(server.url, { enableAutoPipelining: true }), {
      ...contractRetention,
      ownsClient: true,
    });
    const other = make();
    const users = Array.from({ length: 200 }, (_, i) => `opening-${Date.now()}-${i}`);
    const seen = new Map<string, string[]>(users.map((u) => [u, []]));
    const published = new Map<string, string>();
    try {
      // One listen per turn of the event loop while the connection opens (a hello storm on a
      // restarted instance), each user's event published once its listen is through.
      const done: Array<Promise<void>> = [];
      for (const u of users) {
        done.push(
          bus
            .listen(u, (e: { cursor: string }) => seen.get(u)?.push(e.cursor), undefined)
            .then(async () => {
              published.set(u, (await other.publish(u, note('1'))).cursor);
            }),
        );
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(done);
      await waitForCount(() => [...seen.values()].filter((c) => c.length > 0).length, users.length, 5_000).catch(
        () => {},
      );
      const missed = users.filter((u) => (seen.get(u) ?? []).length === 0);
      expect(missed).toEqual([]);
      for (const u of users) expect(seen.get(u)).toEqual([published.get(u)]);
    } finally {
      await Promise.all([bus.close(), other.close()]);
    }
  });

  it('users who listen in one turn are subscribed each by a command of its own (their writes joined), and leave the same way', async () => {
    const [bus, other] = [make(), make()];
    const admin = new Redis(server.url);
    admins.push(admin);
    const users = Array.from({ length: 50 }, (_, i) => `one-turn-${Date.now()}-${i}`);
    const channels = users.map((u) => userKeys(u).channel);
    const seen = new Map<string, string[]>(users.map((u) => [u, []]));
    const calls = async (command: string) => {
      const stats = (await admin.info('commandstats')) as string;
      return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    };
    const [subscribesBefore, unsubscribesBefore] = [await calls('ssubscribe'), await calls('sunsubscribe')];
    // All in one turn: the subscriber's socket is corked for it.
    const offs = await Promise.all(users.map((u) => bus.subscribe(u, (e) => seen.get(u)?.push(e.cursor))));
    expect((await calls('ssubscribe')) - subscribesBefore).toBe(users.length);
    const published = await Promise.all(users.map((u) => other.publish(u, note('1'))));
    await waitForCount(() => [...seen.values()].filter((c) => c.length > 0).length, users.length);
    for (const [i, u] of users.entries()) expect(seen.get(u)).toEqual([published[i]?.cursor]);
    await Promise.all(offs.map((off) => off()));
    expect((await calls('sunsubscribe')) - unsubscribesBefore).toBe(users.length);
    const counts = (await admin.call('PUBSUB', 'SHARDNUMSUB', ...channels)) as Array<string | number>;
    expect(counts.filter((_, i) => i % 2 === 1).map(Number)).toEqual(users.map(() => 0));
    await Promise.all([bus.close(), other.close()]);
  });

  it('loses nothing published in a burst while the subscriber comes back (many users, several reconnects)', async () => {
    // The burst an outbox sends when Redis returns races the subscriber's SSUBSCRIBEs:
    // the catch-up read must come after them, or what falls in between is lost.
    // Default retention: the contract's five events would make the catch-up an honest gap.
    const [bus, other] = [make({}), make({})];
    const users = Array.from({ length: 20 }, (_, i) => `burst-${Date.now()}-${i}`);
    const seen = new Map<string, string[]>(users.map((u) => [u, []]));
    const offs = await Promise.all(users.map((u) => bus.subscribe(u, (e) => seen.get(u)?.push(e.cursor))));
    const published = new Map<string, string[]>(users.map((u) => [u, []]));
    let n = 0;
    for (let round = 0; round < 5; round++) {
      await killSubscribers(server.url);
      const end = Date.now() + 150;
      while (Date.now() < end) {
        const stored = await other.publishMany(users.map((userId) => ({ userId, event: note(String(n++)) })));
        for (const [i, e] of stored.entries()) published.get(users[i] as string)?.push(e.cursor);
      }
    }
    const total = [...published.values()].reduce((a, c) => a + c.length, 0);
    await waitForCount(() => [...seen.values()].reduce((a, c) => a + c.length, 0), total, 10_000);
    for (const u of users) expect(seen.get(u)).toEqual(published.get(u));
    await Promise.all(offs.map((off) => off()));
    await Promise.all([bus.close(), other.close()]);
  });
});

describe('RedisEventBus on a Redis Cluster whose slots move (a resharding)', () => {
  it('an SSUBSCRIBE answered MOVED holds up no other user of that node, and goes again to the new master once the slot map says so', async () => {
    const admin = new Cluster(cluster.nodes);
    admins.push(admin);
    await admin.ping();
    const masters = (await cluster.topology()).filter((n) => n.role === 'master');
    const slotOf = async (uid: string) => Number(await admin.cluster('KEYSLOT', userKeys(uid).channel));
    const ownerOf = (slot: number) => masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
    // Three users whose channels live on the first master: one to open the subscriber's
    // connection to it, one whose slot moves away, one whose slot stays.
    const [home, away] = masters as [ClusterNodeView, ClusterNodeView];
    const onHome: Array<{ uid: string; slot: number }> = [];
    const seenSlots = new Set<number>();
    for (let i = 0; onHome.length < 3; i++) {
      const uid = `reshard-${Date.now()}-${i}`;
      const slot = await slotOf(uid);
      if (ownerOf(slot)?.id === home.id && !seenSlots.has(slot)) {
        seenSlots.add(slot);
        onHome.push({ uid, slot });
      }
    }
    const [first, moved, stays] = onHome as [
      { uid: string; slot: number },
      { uid: string; slot: number },
      { uid: string; slot: number },
    ];
    // As the gateway opens its client (`openRedis`, role gateway): with auto-pipelining.
    // Steps of a minute: the moved user's SSUBSCRIBE is sent again once the subscriber reads the
    // new slot map (after the MOVED, or within a second), not when its step runs out.
    const bus = new RedisEventBus(new Cluster(cluster.nodes, { enableAutoPipelining: true }), {
      ...contractRetention,
      ownsClient: true,
      stepTimeoutMs: 60_000,
    });
    const node = (port: number) => {
      const r = new Redis(port);
      admins.push(r);
      return r;
    };
    try {
      await bus.listen(first.uid, () => {}, undefined);
      // The slot moves to another master (it holds no key: nothing to migrate), and the
      // subscriber's slot map still names the first one: its SSUBSCRIBE is answered MOVED.
      await node(away.port).cluster('SETSLOT', moved.slot, 'IMPORTING', home.id);
      await node(home.port).cluster('SETSLOT', moved.slot, 'MIGRATING', away.id);
      for (const m of masters) await node(m.port).cluster('SETSLOT', moved.slot, 'NODE', away.id);
      const movedListen = bus.listen(moved.uid, () => {}, undefined);
      movedListen.catch(() => {});
      // A user whose slot stayed: its subscription does not wait behind the unanswered one.
      await bus.listen(stays.uid, () => {}, undefined);
      // Bounded here (not by the step of a minute) so that the slot is moved back below either way.
      let listened = false;
      movedListen.then(
        () => {
          listened = true;
        },
        () => {},
      );
      await waitFor(() => listened, "the moved user's subscription, sent again to the new master", 20_000);
      await movedListen;
      expect(bus.stats().streams).toBe(3);
      // Live delivery works for both after the move.
      const seen: string[] = [];
      await bus.listen(moved.uid, (e) => seen.push(e.cursor), undefined);
      await bus.listen(stays.uid, (e) => seen.push(e.cursor), undefined);
      const a = await bus.publish(moved.uid, note('moved'));
      const b = await bus.publish(stays.uid, note('stays'));
      await waitForCount(() => seen.length, 2);
      expect(new Set(seen)).toEqual(new Set([a.cursor, b.cursor]));
    } finally {
      await bus.close();
      // The slot back where it was, emptied (its keys are this test's), for the tests after this one.
      const keys = (await node(away.port).cluster('GETKEYSINSLOT', moved.slot, 100)) as string[];
      if (keys.length > 0) await node(away.port).del(...keys);
      for (const m of masters) await node(m.port).cluster('SETSLOT', moved.slot, 'NODE', home.id);
    }
  }, 45_000);
});
