import { type ChildHandle, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { addMembers, companyChanges, companyListeners, follow } from './company-helpers';
import { connectAs, httpJson, type TestClient } from './helpers';
import {
  createWhenReachable,
  type HolderFailureRig,
  listenerChangesInStream,
  startHolderFailureRig,
  startListenersChild,
} from './listeners-helpers';

// listeners-fence.int.test.ts for a company: a holder of a company's listeners whose lease ran
// out while it was paused (SIGSTOP: a frozen VM, a long GC) must not append the changes it reads
// when it wakes up to the followers' streams, after another instance took the company over: the
// fan-out is fenced by the company's lease (checked in the script that appends), so each
// follower's stream holds each change once.
let rig: HolderFailureRig;
let paused: ChildHandle | undefined;
const LEASE_TTL_MS = 2_000;
const COMPANY = 'fence-co';
const clients: TestClient[] = [];

beforeAll(async () => {
  rig = await startHolderFailureRig('company-fence', {
    listeners: companyListeners,
    unifiedRegistryEnabled: true,
    listenerLeaseTtlMs: LEASE_TTL_MS,
    detachDelayMs: 100,
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  if (paused) {
    paused.child.kill('SIGCONT');
    await paused.stop();
  }
  await rig?.stop();
});

/** The company listeners' counters of a gateway (its /ws-metrics `companies`). */
async function companiesOf(port: number): Promise<{ held: number }> {
  const { body } = await httpJson(`http://127.0.0.1:${port}/ws-metrics`);
  return (body as unknown as { metrics: { companies: { held: number } } }).metrics.companies;
}

/** Connects `uid` to `url` and follows the company. */
async function member(url: string, uid: string): Promise<TestClient> {
  const { client } = await connectAs(url, uid);
  clients.push(client);
  const answer = await follow(client, uid, COMPANY);
  if (answer.type !== 'rpc_result') throw new Error(JSON.stringify(answer));
  return client;
}

describe('company events fenced by the company lease', () => {
  it('a holder paused past its lease while another takes over, then resumed: each change once in a follower stream', async () => {
    const { db, redis, survivor } = rig;
    const path = (name: string) => `companies/${COMPANY}/jobs/${name}`;
    await addMembers(db, COMPANY, ['fence-holder-side', 'fence-survivor-side']);
    const holder = await startListenersChild({
      instanceId: 'gw-co-fence-holder',
      redisUrl: redis.url,
      emulator: rig.emulator,
      listeners: { company: companyListeners.company },
      env: { UNIFIED_REGISTRY_ENABLED: 'true', LISTENER_LEASE_TTL_MS: String(LEASE_TTL_MS), DETACH_DELAY_MS: '100' },
    });
    paused = holder.handle;
    const admin = new Redis(redis.url);
    try {
      // The holder's member first: the child takes the company's lease.
      await member(holder.url, 'fence-holder-side');
      await waitFor(
        async () => (await admin.get(`lb:co:{${COMPANY}}:l`))?.startsWith('gw-co-fence-holder|'),
        'the child holds the company',
        15_000,
      );
      const tab = await member(survivor.url, 'fence-survivor-side');
      await createWhenReachable(db, path('before'), { n: 1 });
      await waitFor(() => companyChanges(tab, path('before'))[0], 'a change before the pause', 15_000);
      expect((await companiesOf(survivor.port)).held).toBe(0);

      const attached = new Promise<void>((resolve) => {
        const off = survivor.gw.hooks.on('company.attached', (e) => {
          if (e.company_id !== COMPANY) return;
          off();
          resolve();
        });
      });
      holder.handle.child.kill('SIGSTOP');
      // The survivor takes the company over once the paused holder's lease runs out (or its proof lapses).
      await createWhenReachable(db, path('during-1'), { n: 2 });
      await attached;
      await waitFor(
        () => companyChanges(tab, path('during-1'))[0],
        'the change from the pause, from the survivor',
        15_000,
      );
      // The paused holder's Firestore stream has both waiting for it when it wakes.
      await createWhenReachable(db, path('during-2'), { n: 3 });
      await waitFor(() => companyChanges(tab, path('during-2'))[0], 'the next change, from the survivor', 15_000);

      holder.handle.child.kill('SIGCONT');
      // Awake, it learns it lost the lease (a refused renewal, a refused append or mark) and lets go.
      await waitFor(
        async () => (await companiesOf(holder.port)).held === 0,
        'the woken holder releases the company',
        20_000,
        100,
      );
      await createWhenReachable(db, path('after'), { n: 4 });
      await createWhenReachable(db, path('zz-sentinel'), { n: 5 });
      await waitFor(() => companyChanges(tab, path('zz-sentinel'))[0], 'the sentinel, from the survivor', 15_000);
      const counts = await listenerChangesInStream(redis.url, 'fence-survivor-side');
      for (const name of ['before', 'during-1', 'during-2', 'after'])
        expect([name, counts.get(path(name))]).toEqual([name, 1]);
      expect(companyChanges(tab, path('during-1'))).toHaveLength(1);
      expect(companyChanges(tab, path('during-2'))).toHaveLength(1);
      expect((await companiesOf(survivor.port)).held).toBe(1);
    } finally {
      admin.disconnect();
    }
  }, 90_000);
});
