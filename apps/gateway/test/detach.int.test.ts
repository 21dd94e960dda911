import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import type { GatewayPorts } from '../src/compose';
import { MemoryDetachDecision } from '../src/fleet/detach/memory-detach-decision';
import { RedisDetachDecision } from '../src/fleet/detach/redis-detach-decision';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import { RedisPresence } from '../src/fleet/presence/redis-presence';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import type { RegistryStore } from '../src/fleet/registry/registry-store';
import { connectAs, registryWith, startGateway, type TestGateway } from './helpers';

let redisServer: RedisServerHandle;
let redis: Redis;

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = new Redis(redisServer.url);
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});

/** A registry with the presence and detach decision that go with it. */
type RegistryDeps = Pick<GatewayPorts, 'presence' | 'detachDecision'> & { registry: RegistryStore };
const stores: Array<[string, () => RegistryDeps]> = [
  [
    'embedded registry',
    () => {
      const [presence, registry] = [new MemoryPresence(), new MemoryRegistryStore()];
      return { registry, presence, detachDecision: new MemoryDetachDecision(presence, registry) };
    },
  ],
  [
    'Redis registry',
    () => ({
      registry: new RedisRegistryStore(redis),
      presence: new RedisPresence(redis),
      detachDecision: new RedisDetachDecision(redis),
    }),
  ],
];

describe.each(stores)('detach delay with the %s', (_name, makeStore) => {
  let t: TestGateway | undefined;
  let registry: RegistryStore;
  const startWithDelay = async (detachDelayMs: number) => {
    const deps = makeStore();
    registry = deps.registry;
    t = await startGateway({ detachDelayMs }, deps);
    return t;
  };
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('a client that reconnects within the delay cancels the cleanup', async () => {
    // A delay no reconnect can miss, however slow the machine: the cancel clears the timer, so
    // nothing waits it out.
    const t = await startWithDelay(30_000);
    const uid = `u-quick-${Date.now()}`;
    const first = await connectAs(t.url, uid, { session_id: 'tab-1' });
    const reg = await first.client.call('REGISTRY.register_user', [uid, 'tab-1', '/inbox']);
    expect(reg.type).toBe('rpc_result');
    await first.client.close();
    await t.hooks.waitFor('detach.delay_start', uid);

    const again = await connectAs(t.url, uid, { session_id: 'tab-1' });
    await t.hooks.waitFor('detach.cancelled', uid);
    await t.gw.idle();
    // Nothing left to run the cleanup later: the timer is gone, not merely not due yet.
    expect(t.gw.stats().pendingDetaches).toBe(0);
    expect(t.hooks.of('detach.executing', uid)).toHaveLength(0);
    expect(t.hooks.of('registry.cleanup', uid, (e) => e.phase === 'start')).toHaveLength(0);
    expect(await registry.getSessions(uid)).toHaveLength(1);
    expect(t.gw.stats().listeners).toBe(1);
    expect(t.gw.stats().detachCancelled).toBe(1);
    await again.client.close();
  });

  it('a client that stays away longer gets its listeners released and its registry entry cleaned', async () => {
    const t = await startWithDelay(300);
    const uid = `u-gone-${Date.now()}`;
    const { client } = await connectAs(t.url, uid, { session_id: 'tab-1' });
    await client.call('REGISTRY.register_user', [uid, 'tab-1', '/inbox']);
    expect(await registry.getSessions(uid)).toHaveLength(1);
    await client.close();

    const executing = await t.hooks.waitFor('detach.executing', uid);
    const success = await t.hooks.waitFor('registry.cleanup', uid, (e) => e.phase === 'success');
    const complete = await t.hooks.waitFor('detach.complete', uid);
    const start = t.hooks.of('registry.cleanup', uid, (e) => e.phase === 'start')[0];
    const order = [executing, start, success, complete].map((e) => t.hooks.entries.indexOf(e as never));
    expect(order).not.toContain(-1);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(await registry.getSessions(uid)).toEqual([]);
    expect(t.gw.stats().listeners).toBe(0);
    expect(t.gw.stats().pendingDetaches).toBe(0);
    const disconnect = t.logs.of('ws_disconnect', uid)[0];
    expect(disconnect).toMatchObject({ uid, session_id: 'tab-1', code: 1000, type: 'normal_closure' });
  });
});

describe('registry cleanup failures', () => {
  it('are logged with the error and retried until the cleanup succeeds', async () => {
    let failures = 2;
    const { deps } = registryWith({}, (real) => ({
      cleanupIfAbsent: async (uid) => {
        if (failures-- > 0) throw new Error('registry unreachable');
        return real.cleanupIfAbsent(uid);
      },
    }));
    const t = await startGateway({ detachDelayMs: 50 }, deps);
    try {
      const { client } = await connectAs(t.url, 'u-flaky');
      await client.close();
      await t.hooks.waitFor('registry.cleanup', 'u-flaky', (e) => e.phase === 'success', 5_000);
      const errors = t.hooks.of('registry.cleanup', 'u-flaky', (e) => e.phase === 'error');
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatchObject({ error: 'Error: registry unreachable', attempt: 1 });
      await t.hooks.waitFor('detach.complete', 'u-flaky');
      expect(t.hooks.of('detach.complete', 'u-flaky')).toHaveLength(1);
    } finally {
      await t.close();
    }
  });
});

describe('a reconnect racing the registry cleanup', () => {
  it('keeps what the reconnect registered while the cleanup was running', async () => {
    const { store, deps } = registryWith({}, (real) => ({
      // A slow store: the cleanup's write lands well after the reconnect registered.
      cleanupIfAbsent: async (u) => {
        await new Promise((r) => setTimeout(r, 300));
        return real.cleanupIfAbsent(u);
      },
    }));
    const t = await startGateway({ detachDelayMs: 50 }, deps);
    try {
      const first = await connectAs(t.url, 'racer', { session_id: 'tab-1' });
      await first.client.call('REGISTRY.register_user', ['racer', 'tab-1', '/a']);
      await first.client.close();
      await t.hooks.waitFor('registry.cleanup', 'racer', (e) => e.phase === 'start');

      const again = await connectAs(t.url, 'racer', { session_id: 'tab-2' });
      await again.client.call('REGISTRY.register_user', ['racer', 'tab-2', '/b']);
      await t.hooks.waitFor('registry.cleanup', 'racer', (e) => e.phase === 'success');

      // The decision saw the reconnect's live session: it changed nothing (tab-1 goes with the next departure).
      expect((await store.getSessions('racer')).map((x) => x.session_id)).toContain('tab-2');
      await t.gw.idle();
      expect(t.gw.stats().listeners).toBe(1);
      await again.client.close();
    } finally {
      await t.close();
    }
  });
});
