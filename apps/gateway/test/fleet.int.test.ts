import { CloseCode } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
import { instanceKeys } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, startTcpProxy, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { composePorts } from '../src/compose';
import type { GatewayConfig } from '../src/config';
import { connectAs, httpJson, startGateway, TestClient, type TestGateway } from './helpers';
import { startGatewayProcess } from './task-processes';

// Three gateways on one real Redis, as ECS tasks behind an ALB would be.
let redis: RedisServerHandle;
let admin: Redis;
const fleet: TestGateway[] = [];
const start = (id: string, overrides: Partial<GatewayConfig> = {}) =>
  startGateway(
    {
      instanceId: id,
      redisUrl: redis.url,
      detachDelayMs: 400,
      // Three gateways' heartbeats share this worker's event loop: a TTL of several beats' slack
      // (nothing here waits for these instances' entries to expire).
      instanceTtlMs: 3_000,
      maxSessionsPerUser: 2,
      ...overrides,
    },
    composePorts,
  );

beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  fleet.push(await start('gw-a'), await start('gw-b'), await start('gw-c'));
});
afterAll(async () => {
  await Promise.all(fleet.map((t) => t.close()));
  admin.disconnect();
  await redis.stop();
});
const nth = (i: number) => fleet[i] as TestGateway;
const a = () => nth(0);
const b = () => nth(1);
const c = () => nth(2);
const note = (m: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message: m } });
const messages = (events: { data: unknown }[]) => events.map((e) => (e.data as { message: string }).message);

describe('a fleet of three gateways on one Redis', () => {
  it('delivers an event published anywhere to every session of the user on every instance, once, in order', async () => {
    const onA = await connectAs(a().url, 'fan');
    const onB = await connectAs(b().url, 'fan');
    const publisher = createPublisher({ redisUrl: redis.url });
    try {
      await httpJson(`${c().http}/publish`, {
        method: 'POST',
        body: JSON.stringify({ user_id: 'fan', event: note('1') }),
      });
      await publisher.publish('fan', note('2'));
      await publisher.publishMany([
        { userId: 'fan', event: note('3') },
        { userId: 'someone-else', event: note('x') },
      ]);
      await c().gw.publish('fan', note('4'));
      for (const s of [onA, onB]) {
        await waitFor(() => s.client.events().length === 4, 'four events');
        expect(messages(s.client.events())).toEqual(['1', '2', '3', '4']);
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(onA.client.events()).toHaveLength(4); // nothing misrouted or repeated
    } finally {
      await publisher.close();
      await Promise.all([onA.client.close(), onB.client.close()]);
    }
  });

  it('sends live events as text frames (the bytes from Redis as they are), non-ASCII intact', async () => {
    const { client } = await connectAs(a().url, 'text-frames');
    const frames: { binary: boolean; text: string }[] = [];
    client.ws.on('message', (data: Buffer, isBinary: boolean) => frames.push({ binary: isBinary, text: String(data) }));
    const publisher = createPublisher({ redisUrl: redis.url });
    try {
      const sent = ['1', 'caf\u00e9 \u2713', '\ud83d\ude80 3'];
      for (const m of sent) await publisher.publish('text-frames', note(m));
      await waitFor(() => client.events().length === 3, 'three events');
      expect(messages(client.events())).toEqual(sent);
      expect(frames.map((f) => [f.binary, (JSON.parse(f.text) as { type: string }).type])).toEqual([
        [false, 'event'],
        [false, 'event'],
        [false, 'event'],
      ]);
    } finally {
      await publisher.close();
      await client.close();
    }
  });

  it('resumes on another instance with exactly what was missed, no gap', async () => {
    const first = await connectAs(a().url, 'mover');
    await a().gw.publish('mover', note('seen'));
    const seen = await first.client.next('event');
    await first.client.close();
    for (const m of ['m1', 'm2', 'm3']) await c().gw.publish('mover', note(m));
    const again = await connectAs(b().url, 'mover', { last_cursor: seen.cursor });
    expect(again.welcome.resume).toMatchObject({ status: 'resumed', replayed: 3 });
    await waitFor(() => again.client.events().length === 3, 'the replay');
    expect(messages(again.client.events())).toEqual(['m1', 'm2', 'm3']);
    await again.client.close();
  });

  it('a reconnect on another instance within the delay cancels the cleanup; the registry is cleaned once, when the user is gone everywhere', async () => {
    // The first instance's timer must run out (it finds the user elsewhere then), but only once
    // the reconnect is surely in: a delay of its own, longer than any reconnect however busy the
    // machine (the shared 400 ms left a reconnect little room).
    const first = await start('gw-hop', { detachDelayMs: 3_000 });
    try {
      const s1 = await connectAs(first.url, 'hopper', { session_id: 'tab' });
      expect((await s1.client.call('REGISTRY.register_user', ['hopper', 'tab', '/x'])).type).toBe('rpc_result');
      await s1.client.close();
      await first.hooks.waitFor('detach.delay_start', 'hopper');
      const s2 = await connectAs(b().url, 'hopper', { session_id: 'tab' });
      // The timer runs out while the user is on B: cancelled there, nothing cleaned.
      const cancelled = await first.hooks.waitFor('detach.cancelled', 'hopper', undefined, 10_000);
      expect(cancelled.elsewhere).toBe(true);
      expect(first.hooks.of('registry.cleanup', 'hopper', (e) => e.phase === 'start')).toEqual([]);
      expect(await admin.hkeys('registry:user:{hopper}')).toEqual(['tab']);
      await s2.client.close();
      const done = await b().hooks.waitFor('registry.cleanup', 'hopper', (e) => e.phase === 'success');
      expect(done.outcome).toBe('cleaned');
      expect(await admin.exists('registry:user:{hopper}')).toBe(0);
      const cleanups = [first, ...fleet].flatMap((t) =>
        t.hooks.of('registry.cleanup', 'hopper', (e) => e.phase === 'start'),
      );
      expect(cleanups).toHaveLength(1);
    } finally {
      await first.close();
    }
  });

  it('a user who leaves two instances at once is cleaned up once, by the instance whose claim won', async () => {
    const cleanups = async (t: TestGateway) => {
      const m = (await httpJson(`${t.http}/ws-metrics`)).body.metrics as Record<string, number>;
      return { run: m.registry_cleanups ?? 0, skipped: m.registry_cleanups_skipped ?? 0 };
    };
    const before = await Promise.all([a(), b()].map(cleanups));
    const onA = await connectAs(a().url, 'leaver', { session_id: 'tab-a' });
    const onB = await connectAs(b().url, 'leaver', { session_id: 'tab-b' });
    await onA.client.call('REGISTRY.register_user', ['leaver', 'tab-a', '/a']);
    await onB.client.call('REGISTRY.register_user', ['leaver', 'tab-b', '/b']);
    await Promise.all([onA.client.close(), onB.client.close()]);
    const decided = async () => {
      const now = await Promise.all([a(), b()].map(cleanups));
      const delta = now.map((n, i) => ({
        run: n.run - (before[i]?.run ?? 0),
        skipped: n.skipped - (before[i]?.skipped ?? 0),
      }));
      return delta.every((d) => d.run + d.skipped === 1) ? delta : undefined;
    };
    const delta = await waitFor(decided, 'both instances to decide', 5_000);
    expect(delta.map((d) => d.run).sort()).toEqual([0, 1]);
    expect(delta.map((d) => d.skipped).sort()).toEqual([0, 1]);
    expect(await admin.exists('registry:user:{leaver}')).toBe(0);
    // The claim fences the departure for a while, and goes with the user's next session.
    expect(await admin.pttl('lb:{leaver}:dc')).toBeGreaterThan(0);
    const back = await connectAs(c().url, 'leaver', { session_id: 'tab-c' });
    expect(await admin.exists('lb:{leaver}:dc')).toBe(0);
    await back.client.close();
  });

  it('holds MAX_SESSIONS_PER_USER and session replacement across instances', async () => {
    const one = await connectAs(a().url, 'limited', { session_id: 's1' });
    const two = await connectAs(b().url, 'limited', { session_id: 's2' });
    const third = new TestClient(c().url);
    await third.opened;
    third.send({ type: 'hello', v: 1, user_id: 'limited', session_id: 's3' });
    expect((await third.closed).code).toBe(CloseCode.TooManySessions);
    // The same session id on another instance replaces the old socket there (4008), within the limit.
    // gw-a hears of it once, on its control channel (the presence script sends it; the hello does not again).
    const told: unknown[] = [];
    const listener = admin.duplicate();
    await listener.subscribe(instanceKeys.channel('gw-a'));
    listener.on('message', (_channel: string, text: string) => told.push(JSON.parse(text)));
    try {
      const moved = await connectAs(c().url, 'limited', { session_id: 's1' });
      expect((await one.client.closed).code).toBe(CloseCode.Replaced);
      expect(moved.welcome.session_id).toBe('s1');
      // A round trip on the listener's connection: anything published before it has arrived.
      await listener.ping();
      expect(told).toEqual([{ type: 'replace', uid: 'limited', session_id: 's1' }]);
      await Promise.all([two.client.close(), moved.client.close()]);
    } finally {
      listener.disconnect();
    }
  });

  it("a stale socket's instance re-announcing it never takes the session back from the instance it moved to", async () => {
    // gw-r1 holds the tab's socket through a proxy that then freezes: half-open, so its close
    // (4008, when the tab moves) waits for a close frame that never comes, and the session stays
    // in gw-r1's hub, and its fleet heartbeat finds the entry gone from gw-r1 (it is gw-r2's now).
    const reannounced: string[] = [];
    let refreshes = 0;
    const r1 = await startGateway(
      { instanceId: 'gw-r1', redisUrl: redis.url, detachDelayMs: 400, instanceTtlMs: 900 },
      async (config, logger) => {
        const ports = await composePorts(config, logger);
        const presence = ports.presence;
        if (!presence) throw new Error('no presence');
        const add = presence.add.bind(presence);
        const refresh = presence.refresh.bind(presence);
        presence.refresh = async (instanceId, held) => {
          const lost = await refresh(instanceId, held);
          refreshes++;
          return lost;
        };
        presence.add = async (uid, entry, options) => {
          const added = await add(uid, entry, options);
          if (options?.reannounce)
            reannounced.push(added.refused && added.heldElsewhere ? 'held elsewhere' : 'written');
          return added;
        };
        return ports;
      },
    );
    const r2 = await start('gw-r2');
    const proxy = await startTcpProxy(Number(new URL(r1.url).port));
    const told: unknown[] = [];
    const listener = admin.duplicate();
    await listener.subscribe(instanceKeys.channel('gw-r2'));
    listener.on('message', (_channel: string, text: string) => told.push(JSON.parse(text)));
    try {
      const old = await connectAs(`ws://127.0.0.1:${proxy.port}/ws`, 'moving', { session_id: 'tab' });
      proxy.freeze();
      const moved = await connectAs(r2.url, 'moving', { session_id: 'tab' });
      // Three heartbeats of gw-r1 (one every 300 ms) after the move.
      const from = refreshes;
      await waitFor(() => refreshes >= from + 3, "gw-r1's heartbeats", 10_000);
      // The stale socket (closing) is not re-announced; one that was would find the entry held elsewhere.
      expect(reannounced.filter((r) => r === 'written')).toEqual([]);
      await listener.ping();
      expect(told).toEqual([]);
      expect(moved.client.ws.readyState).toBe(WebSocket.OPEN);
      expect(Object.keys(await admin.hgetall('lb:{moving}:p'))).toEqual(['tab']);
      expect(JSON.parse((await admin.hget('lb:{moving}:p', 'tab')) as string).instanceId).toBe('gw-r2');
      proxy.thaw();
      await Promise.all([moved.client.close(), old.client.close()]);
    } finally {
      listener.disconnect();
      proxy.thaw();
      await proxy.close();
      await Promise.all([r1.close(), r2.close()]);
    }
  });

  it('a user connected to one instance is online in the registry read through another', async () => {
    const x = await start('gw-u1', { unifiedRegistryEnabled: true });
    const y = await start('gw-u2', { unifiedRegistryEnabled: true });
    try {
      const on = await connectAs(x.url, 'onliner');
      const reader = await connectAs(y.url, 'onliner-reader');
      const svc = await httpJson(`${y.http}/rpc`, {
        method: 'POST',
        token: 'service:app',
        body: JSON.stringify({ method: 'UNIFIED_REGISTRY.get_user_registry', args: ['onliner'] }),
      });
      expect(svc.body.result).toMatchObject({ user_info: { user_id: 'onliner', status: 'online' } });
      await Promise.all([on.client.close(), reader.client.close()]);
    } finally {
      await Promise.all([x.close(), y.close()]);
    }
  });

  it('lists live instances on GET /cluster', async () => {
    await waitFor(async () => {
      const res = await httpJson(`${a().http}/cluster`);
      return (res.body.instances as unknown[]).length === 3 ? res : undefined;
    }, 'three instances');
    const res = await httpJson(`${b().http}/cluster`);
    const ids = (res.body.instances as { id: string }[]).map((i) => i.id).sort();
    expect(ids).toEqual(['gw-a', 'gw-b', 'gw-c']);
    expect((res.body.instances as { self: boolean; id: string }[]).find((i) => i.self)?.id).toBe('gw-b');
  });

  it("a SIGKILLed instance's sessions and its users' registry sessions expire within INSTANCE_TTL_MS", async () => {
    // PORT=0: the port it bound is read from its gateway_listening line (a port probed free
    // beforehand could be taken by another worker before the child binds it).
    const doomed = await startGatewayProcess(redis.url, {
      INSTANCE_ID: 'gw-doomed',
      INSTANCE_TTL_MS: '900',
      UNIFIED_REGISTRY_ENABLED: 'false',
    });
    const { port } = doomed;
    try {
      const ghost = await connectAs(`ws://127.0.0.1:${port}/ws`, 'ghost', { session_id: 'g1' });
      await ghost.client.call('REGISTRY.register_user', ['ghost', 'g1', '/']);
      expect(await admin.hkeys('registry:user:{ghost}')).toEqual(['g1']);
      // Within INSTANCE_TTL_MS: no key of the ghost outlives the child's last heartbeat by more.
      for (const key of ['registry:user:{ghost}', 'lb:{ghost}:p']) {
        const left = await admin.pttl(key);
        expect([key, left > 0 && left <= 900]).toEqual([key, true]);
      }
      await doomed.stop('SIGKILL');
      await waitFor(
        async () => (await admin.exists('registry:user:{ghost}', 'lb:{ghost}:p')) === 0,
        'the ghost to expire',
        10_000,
        50,
      );
      // The fleet no longer counts it: the user may open their full quota elsewhere.
      const s1 = await connectAs(a().url, 'ghost', { session_id: 'n1' });
      const s2 = await connectAs(b().url, 'ghost', { session_id: 'n2' });
      await Promise.all([s1.client.close(), s2.client.close()]);
    } finally {
      await doomed.stop('SIGKILL');
    }
  });
});
