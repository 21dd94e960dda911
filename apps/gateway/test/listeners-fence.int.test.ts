import { type ChildHandle, waitFor } from '@livebus/test-support';
import { connectAs } from './helpers';
import {
  changesOf,
  createWhenReachable,
  type HolderFailureRig,
  listenerChangesInStream,
  sentinel,
  startHolderFailureRig,
  startListenersChild,
  testListeners,
} from './listeners-helpers';

// Issue 25: a holder whose lease ran out while it was paused (SIGSTOP: a frozen VM, a long GC,
// a stopped container) must not append the listener changes it reads when it wakes up, after
// another instance took the user's listeners over: each listener event is appended only while
// its holder's lease holds (checked in the script that appends it), so the stream holds each
// change once.
let rig: HolderFailureRig;
let paused: ChildHandle | undefined;
const LEASE_TTL_MS = 2_000;

beforeAll(async () => {
  rig = await startHolderFailureRig('fence', { listenerLeaseTtlMs: LEASE_TTL_MS, detachDelayMs: 100 });
}, 60_000);

afterAll(async () => {
  if (paused) {
    paused.child.kill('SIGCONT');
    await paused.stop();
  }
  await rig?.stop();
});

function startHolder(): Promise<{ handle: ChildHandle; port: number }> {
  return startListenersChild({
    instanceId: 'gw-fence-holder',
    redisUrl: rig.redis.url,
    emulator: rig.emulator,
    listeners: testListeners,
    env: { LISTENER_LEASE_TTL_MS: String(LEASE_TTL_MS) },
  });
}

describe('listener events fenced by the lease', () => {
  it('a holder paused past its lease while another takes over, then resumed: each change once in the stream', async () => {
    const { db, redis, survivor } = rig;
    const uid = 'fence-mallory';
    const path = (name: string) => `users/${uid}/notifications/${name}`;
    await createWhenReachable(db, path('old'), { n: 0 });
    const holder = await startHolder();
    paused = holder.handle;
    const holderTab = (await connectAs(`ws://127.0.0.1:${holder.port}/ws`, uid)).client;
    await waitFor(() => changesOf(holderTab, path('old'))[0], 'the initial state from the holder', 20_000);
    const tab = (await connectAs(survivor.url, uid)).client;
    await createWhenReachable(db, path('before'), { n: 1 });
    await waitFor(() => changesOf(tab, path('before'))[0], 'a change before the pause', 10_000);
    expect(survivor.gw.stats().listeners).toBe(0);

    holder.handle.child.kill('SIGSTOP');
    // The survivor takes the user's listeners once the paused holder's lease runs out.
    const acquired = survivor.hooks.waitFor('lease.acquired', uid, () => true, 20_000);
    await createWhenReachable(db, path('during-1'), { n: 2 });
    await acquired;
    await waitFor(() => changesOf(tab, path('during-1'))[0], 'the change from the pause, from the survivor', 10_000);
    // The paused holder's Firestore stream has both waiting for it when it wakes.
    await createWhenReachable(db, path('during-2'), { n: 3 });
    await waitFor(() => changesOf(tab, path('during-2'))[0], 'the next change, from the survivor', 10_000);

    holder.handle.child.kill('SIGCONT');
    // Awake, it learns it lost the lease (a refused renewal or a refused append) and lets go.
    await waitFor(
      async () => {
        const body = (await fetch(`http://127.0.0.1:${holder.port}/healthz`).then((r) => r.json())) as {
          listeners_count: number;
        };
        return body.listeners_count === 0;
      },
      'the woken holder releases the listeners',
      20_000,
      100,
    );
    await createWhenReachable(db, path('after'), { n: 4 });
    await sentinel(db, tab, path('sentinel'));
    const counts = await listenerChangesInStream(redis.url, uid);
    for (const name of ['before', 'during-1', 'during-2', 'after'])
      expect([name, counts.get(path(name))]).toEqual([name, 1]);
    expect(changesOf(tab, path('during-1'))).toHaveLength(1);
    expect(changesOf(tab, path('during-2'))).toHaveLength(1);
    expect(survivor.gw.stats().listeners).toBe(1);
    await Promise.all([tab.close(), holderTab.close()]);
  }, 90_000);
});
