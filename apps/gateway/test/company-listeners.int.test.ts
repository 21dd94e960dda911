import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { composePorts } from '../src/compose';
import { addMembers, companyChanges, companyListeners, follow } from './company-helpers';
import { connectAs, startGateway, type TestClient, type TestGateway } from './helpers';
import { testFirestore, useEmulator, warmUp } from './listeners-helpers';

// Company listeners in a fleet: two in-process gateways on one Redis and the Firestore
// emulator; members spread over both follow one company.
let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];

async function gateway(instanceId: string): Promise<TestGateway> {
  const t = await startGateway(
    {
      instanceId,
      redisUrl: redis.url,
      listeners: companyListeners,
      firestoreProjectId: emulator.projectId,
      listenerLeaseTtlMs: 3_000,
      unifiedRegistryEnabled: true,
      detachDelayMs: 100,
      logLevel: 'warn',
    },
    composePorts,
  );
  t.gw.hooks.on('company.attached', (e) =>
    moments.push({ instance: instanceId, what: 'attached', company: e.company_id }),
  );
  t.gw.hooks.on('company.detached', (e) =>
    moments.push({ instance: instanceId, what: 'detached', company: e.company_id }),
  );
  gateways.push(t);
  return t;
}

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-company'), startRedisServer()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'company-writer'));
  await warmUp(db);
  await Promise.all([gateway('gw-co-a'), gateway('gw-co-b')]);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(gateways.map((g) => g.close()));
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

/** Company listener attaches and releases, per instance, in order. */
const moments: Array<{ instance: string; what: 'attached' | 'detached'; company: string }> = [];
/** Companies held in the fleet now, by the attach and release moments. */
const heldNow = (company: string) =>
  moments.filter((m) => m.company === company).reduce((n, m) => n + (m.what === 'attached' ? 1 : -1), 0);

describe('company listeners in a fleet', () => {
  it('50 members over two instances: one listener in the fleet, each change once to each, initial state to each', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    const uids = Array.from({ length: 50 }, (_, i) => `acme-m${i}`);
    await addMembers(db, 'acme', uids);
    await db.doc('companies/acme/jobs/before').set({ title: 'there before anyone followed' });
    const members = await Promise.all(
      uids.map(async (uid, i) => {
        const { client } = await connectAs((i % 2 === 0 ? a : b).url, uid);
        clients.push(client);
        const answer = await follow(client, uid, 'acme');
        if (answer.type !== 'rpc_result') throw new Error(JSON.stringify(answer));
        return client;
      }),
    );
    // Everyone has the company's state: the document that was there, once, as initial.
    for (const m of members) {
      await waitFor(() => companyChanges(m, 'companies/acme/jobs/before')[0], 'initial state', 15_000);
    }
    for (let i = 0; i < 5; i++) await db.doc(`companies/acme/jobs/j${i}`).set({ n: i });
    await db.doc('companies/acme/jobs/zz-sentinel').set({ last: true });
    for (const m of members)
      await waitFor(() => companyChanges(m, 'companies/acme/jobs/zz-sentinel')[0], 'sentinel', 15_000);
    for (const m of members) {
      const paths = companyChanges(m).map((e) => (e.data as { path: string }).path);
      expect(paths.sort()).toEqual(
        ['before', 'j0', 'j1', 'j2', 'j3', 'j4', 'zz-sentinel'].map((p) => `companies/acme/jobs/${p}`),
      );
      const before = companyChanges(m, 'companies/acme/jobs/before')[0]?.data as { initial?: boolean };
      expect(before.initial).toBe(true);
    }
    // One listener in the fleet, attached once.
    expect(heldNow('acme')).toBe(1);
    expect(moments.filter((m) => m.company === 'acme')).toHaveLength(1);
  }, 60_000);
});
