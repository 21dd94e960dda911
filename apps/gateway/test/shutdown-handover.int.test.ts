import { CloseCode } from '@livebus/protocol';
import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { connectAs, startGateway, type TestGateway } from './helpers';

// A deploy or a scale-in: the instance shutting down tells its clients to come back within a
// spread, and they do, on another instance. Their detaches on the old one wait for that, so
// their listeners are handed over (resume marks and workflow watches kept, the registry not
// cleaned) rather than treated as users who left the fleet. A user who does not come back is
// cleaned up as before.
let redis: RedisServerHandle;
let a: TestGateway;
let b: TestGateway;
beforeAll(async () => {
  redis = await startRedisServer();
  const config = { redisUrl: redis.url, detachDelayMs: 60_000, shutdownGraceMs: 4_000, instanceTtlMs: 2_000 };
  a = await startGateway({ ...config, instanceId: 'gw-old' }, composePorts);
  b = await startGateway({ ...config, instanceId: 'gw-new' }, composePorts);
});
afterAll(async () => {
  await b?.close();
  await redis?.stop();
});

describe('a gateway shutting down in a fleet', () => {
  it('hands over the users who came back elsewhere within the reconnect window, and cleans up the one who did not', async () => {
    const back = await connectAs(a.url, 'comes-back');
    const gone = await connectAs(a.url, 'leaves');
    await back.client.call('REGISTRY.register_user', ['comes-back', back.welcome.session_id, '/inbox']);
    await gone.client.call('REGISTRY.register_user', ['leaves', gone.welcome.session_id, '/inbox']);
    const shutdown = a.close();
    expect((await back.client.closed).code).toBe(CloseCode.ServiceRestart);
    // The client does what it was told: it waits (up to the spread, 2 s here) and reconnects,
    // here to the other instance.
    const hint = back.client.frames.find((f) => f.type === 'notice');
    expect(hint).toMatchObject({ kind: 'shutting_down', reconnect_after_ms: expect.any(Number) });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const again = await connectAs(b.url, 'comes-back', { session_id: back.welcome.session_id });
    await shutdown;

    expect(a.hooks.of('detach.cancelled', 'comes-back', (e) => e.elsewhere === true)).toHaveLength(1);
    expect(a.hooks.of('detach.executing', 'comes-back')).toEqual([]);
    expect(a.hooks.of('registry.cleanup', 'comes-back')).toEqual([]);
    const sessions = await again.client.call('REGISTRY.get_sessions', ['comes-back']);
    expect(sessions).toMatchObject({ type: 'rpc_result' });

    expect(a.hooks.of('detach.executing', 'leaves')).toHaveLength(1);
    expect(a.hooks.of('registry.cleanup', 'leaves', (e) => e.phase === 'success')).toHaveLength(1);
    await again.client.close();
  }, 20_000);
});
