import { protocolDefaults, registryLimits } from '@livebus/protocol';
import { connectAs, registryWith, startGateway, type TestClient, type TestGateway } from './helpers';

/** `n` services keys named `<prefix>0`..., each set to `value`. */
const keys = (prefix: string, n: number, value: string | number = 1): Record<string, string | number> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value]));

describe('the unified registry document is bounded', () => {
  let t: TestGateway;
  let store: ReturnType<typeof registryWith>['store'];
  let client: TestClient;
  let n = 0;
  let uid: string;
  beforeAll(async () => {
    const registry = registryWith({});
    store = registry.store;
    t = await startGateway({ unifiedRegistryEnabled: true }, registry.deps);
  });
  beforeEach(async () => {
    uid = `bounded-${n++}`;
    ({ client } = await connectAs(t.url, uid));
  });
  afterEach(() => client.close());
  afterAll(() => t.close());

  const update = (patch: unknown) => client.call('UNIFIED_REGISTRY.update_user_registry', [uid, patch]);
  const services = async () => (await store.getUnified(uid))?.services ?? {};

  it('refuses, storing nothing, a patch that takes services past its key count, however many calls it took', async () => {
    const max = registryLimits.maxServiceKeys;
    expect(await update({ services: keys('a', max + 1) })).toMatchObject({
      type: 'rpc_error',
      error: { code: 'invalid_params', data: { issues: [{ path: '1.services' }] } },
    });
    expect(await services()).toEqual({});
    // Filled in two calls: each patch is small, the merged document is what counts.
    expect(await update({ services: keys('a', max - 1) })).toMatchObject({ type: 'rpc_result' });
    expect(await update({ services: keys('b', 1) })).toMatchObject({ type: 'rpc_result' });
    expect(await update({ services: keys('c', 1) })).toMatchObject({
      type: 'rpc_error',
      error: { code: 'invalid_params' },
    });
    expect(Object.keys(await services())).toHaveLength(max);
    expect((await services()).c0).toBeUndefined();
    // At the bound: an existing key may change, a removal makes room for a new key.
    expect(await update({ services: { a0: 2 } })).toMatchObject({
      type: 'rpc_result',
      result: { services: { a0: 2 } },
    });
    expect(await update({ services: { a1: null, c0: 1 } })).toMatchObject({ type: 'rpc_result' });
    expect(Object.keys(await services())).toHaveLength(max);
  });

  it('refuses a patch that takes services past its bytes, and a key longer than allowed', async () => {
    const half = 'x'.repeat(Math.ceil(registryLimits.maxServicesBytes / 2));
    expect(await update({ services: { one: half } })).toMatchObject({ type: 'rpc_result' });
    const refused = await update({ services: { two: half } });
    expect(refused).toMatchObject({ type: 'rpc_error', error: { code: 'invalid_params' } });
    expect(Object.keys(await services())).toEqual(['one']);
    // Replacing the large value with one as large does not grow it.
    expect(await update({ services: { one: half.replace('x', 'y') } })).toMatchObject({ type: 'rpc_result' });

    const long = 'k'.repeat(registryLimits.maxServiceKeyChars + 1);
    expect(await update({ services: { [long]: 1 } })).toMatchObject({
      type: 'rpc_error',
      error: { code: 'invalid_params' },
    });
    expect(Object.keys(await services())).toEqual(['one']);
  });

  it('refuses a current_company_id that is too long or not one path segment', async () => {
    for (const bad of ['c'.repeat(129), 'a/b', '..', '__x__']) {
      expect(await update({ companies: { current_company_id: bad } })).toMatchObject({
        type: 'rpc_error',
        error: { code: 'invalid_params', data: { issues: [{ path: '1.companies.current_company_id' }] } },
      });
    }
    expect(await store.getUnified(uid)).toBeUndefined();
    expect(await update({ companies: { current_company_id: 'c'.repeat(128) } })).toMatchObject({
      type: 'rpc_result',
    });
  });

  it('never stores an update whose registry.updated event is too large for a frame; a document stored before the bounds may shrink', async () => {
    // Stored before the bounds existed: larger than a frame, so no event could carry it.
    const chunk = 'z'.repeat(4_096);
    const oversized = keys('old', Math.ceil(protocolDefaults.maxFrameBytes / chunk.length) + 8, chunk);
    const legacy = {
      user_info: { user_id: uid, status: 'online' as const },
      companies: { current_company_id: null },
      services: oversized,
    };
    await store.putUnified(uid, legacy, 3_600);
    // Grows nothing, but the event carrying the document would be refused: refused before the write.
    expect(await update({ user_info: { status: 'away' } })).toMatchObject({
      type: 'rpc_error',
      error: { code: 'invalid_params' },
    });
    expect(await store.getUnified(uid)).toEqual(legacy);
    // Removing keys until the document fits in an event is stored and announced, though it is
    // still past both bounds (it does not grow).
    const removals = Object.fromEntries(
      Object.keys(oversized)
        .slice(0, 40)
        .map((k) => [k, null]),
    );
    const shrunk = await update({ services: removals });
    expect(shrunk).toMatchObject({ type: 'rpc_result' });
    expect(Object.keys(await services())).toHaveLength(Object.keys(oversized).length - 40);
    await client.next('event', (e) => e.event === 'registry.updated' && e.data.reason === 'registry_updated');
  });
});

describe('REGISTRY.register_user keeps a bounded number of sessions per user', () => {
  let t: TestGateway;
  let client: TestClient;
  beforeAll(async () => {
    t = await startGateway({ maxSessionsPerUser: 2 });
    ({ client } = await connectAs(t.url, 'many'));
  });
  afterAll(async () => {
    await client.close();
    await t.close();
  });

  it('refuses a new session id past REGISTRY_MAX_SESSIONS_PER_USER, storing nothing; an id already registered always registers again', async () => {
    expect(t.gw.config.registryMaxSessionsPerUser).toBe(10);
    const register = (id: string, route = '/r') => client.call('REGISTRY.register_user', ['many', id, route]);
    const ids = Array.from({ length: 10 }, (_, i) => `made-up-${i}`);
    for (const answer of await Promise.all(ids.map((id) => register(id)))) {
      expect(answer).toMatchObject({ type: 'rpc_result' });
    }
    // A count the user reached, not a bad argument: rate_limited with the counts, no issues.
    const refused = await register('made-up-10');
    expect(refused).toMatchObject({
      type: 'rpc_error',
      error: {
        code: 'rate_limited',
        message: expect.stringMatching(/REGISTRY_MAX_SESSIONS_PER_USER.*unregister one/),
        data: { registered: 10, max_registered: 10 },
      },
    });
    expect(refused.type === 'rpc_error' && refused.error.data).not.toHaveProperty('issues');
    const sessions = async () => {
      const answer = await client.call('REGISTRY.get_sessions', ['many']);
      if (answer.type !== 'rpc_result') throw new Error(`get_sessions answered ${JSON.stringify(answer)}`);
      return (answer.result as { sessions: { session_id: string; route: string }[] }).sessions;
    };
    expect((await sessions()).map((s) => s.session_id).sort()).toEqual([...ids].sort());
    expect(await register('made-up-3', '/moved')).toMatchObject({ type: 'rpc_result', result: { route: '/moved' } });
    expect((await sessions()).find((s) => s.session_id === 'made-up-3')?.route).toBe('/moved');
    expect(await client.call('REGISTRY.unregister_session', ['many', 'made-up-0'])).toMatchObject({
      result: { removed: true },
    });
    expect(await register('made-up-10')).toMatchObject({ type: 'rpc_result' });
  });
});
