import {
  type FirestoreEmulatorHandle,
  type RedisClusterHandle,
  startFirestoreEmulator,
  startRedisCluster,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { composePorts } from '../src/compose';
import { addMembers, companyChanges, companyListeners, follow } from './company-helpers';
import { connectAs, startGateway, type TestClient, type TestGateway } from './helpers';
import { testFirestore, useEmulator, warmUp, write } from './listeners-helpers';

// Company listeners on a 3-master Redis Cluster: the followers' streams spread over the slots,
// the fan-out makes one call per slot batch and the journal's last; each member still gets each
// change once from one listener in the fleet.
let emulator: FirestoreEmulatorHandle;
let cluster: RedisClusterHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];
let attached = 0;

beforeAll(async () => {
  [emulator, cluster] = await Promise.all([startFirestoreEmulator('livebus-company-cluster'), startRedisCluster()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'company-cluster-writer'));
  await warmUp(db);
  for (const instanceId of ['gw-cc-a', 'gw-cc-b']) {
    const t = await startGateway(
      {
        instanceId,
        redisUrl: cluster.url,
        redisCluster: true,
        listeners: companyListeners,
        firestoreProjectId: emulator.projectId,
        unifiedRegistryEnabled: true,
        logLevel: 'warn',
      },
      composePorts,
    );
    t.gw.hooks.on('company.attached', () => attached++);
    gateways.push(t);
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(gateways.map((g) => g.close()));
  await closeDb?.();
  await Promise.all([emulator?.stop(), cluster?.stop()]);
});

it('members over two instances on a Redis Cluster get the initial state and each change once', async () => {
  const uids = Array.from({ length: 12 }, (_, i) => `cc-member-${i}`);
  await addMembers(db, 'cyberdyne', uids);
  await write(db, 'companies/cyberdyne/jobs/t800', 'set', { n: 0 });
  const members = await Promise.all(
    uids.map(async (uid, i) => {
      const { client } = await connectAs((gateways[i % 2] as TestGateway).url, uid);
      clients.push(client);
      expect(await follow(client, uid, 'cyberdyne')).toMatchObject({ type: 'rpc_result' });
      return client;
    }),
  );
  for (const m of members)
    await waitFor(() => companyChanges(m, 'companies/cyberdyne/jobs/t800')[0], 'initial', 15_000);
  for (let i = 0; i < 3; i++) await write(db, `companies/cyberdyne/jobs/t${i}`, 'set', { n: i });
  await write(db, 'companies/cyberdyne/jobs/zz', 'set', { last: true });
  for (const m of members) await waitFor(() => companyChanges(m, 'companies/cyberdyne/jobs/zz')[0], 'last', 15_000);
  for (const m of members) {
    const ids = companyChanges(m).map((e) => (e.data as { path: string }).path.split('/').pop());
    expect(ids.sort()).toEqual(['t0', 't1', 't2', 't800', 'zz']);
  }
  expect(attached).toBe(1);
}, 60_000);
