import type { ChildProcess } from 'node:child_process';
import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { RedisWatermarkStore } from '../src/listeners/redis-watermark-store';
import { connectAs, startGateway, type TestGateway } from './helpers';
import {
  changesOf,
  sentinel,
  startListenersChild,
  testFirestore,
  testListeners,
  useEmulator,
  warmUp,
  write,
} from './listeners-helpers';

// Two or three gateways on one real Redis (bus, lease, resume marks; persisted, so a kill and
// restart keeps the data) and one Firestore emulator.
let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
const gateways: TestGateway[] = [];
const LEASE_TTL_MS = 3_000;

/** The next `name` hook of `uid` on `t` recorded after now. */
function nextHook<K extends 'lease.renewed' | 'lease.standby' | 'lease.lost'>(t: TestGateway, name: K, uid: string) {
  const seen = t.hooks.of(name, uid).length;
  return waitFor(() => t.hooks.of(name, uid)[seen], `the next ${name} of ${uid}`, 20_000);
}

async function gateway(instanceId: string): Promise<TestGateway> {
  const t = await startGateway(
    {
      instanceId,
      redisUrl: redis.url,
      listeners: testListeners,
      firestoreProjectId: emulator.projectId,
      listenerLeaseTtlMs: LEASE_TTL_MS,
      detachDelayMs: 100,
      // The emulator, loaded, may hold a write back from a listen stream (docs/listeners.md,
      // "Firestore restarted or unreachable"; once in about 15 full runs a change never came
      // here): the stall watchdog's re-open fetches it, as in the other listener suites.
      listenerStallMs: 1_000,
    },
    composePorts,
  );
  gateways.push(t);
  return t;
}

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-fleet'), startRedisServer({ persist: true })]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'fleet-writer'));
  await warmUp(db);
}, 60_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

describe('Firestore listeners in a fleet', () => {
  it('two tabs on two instances: one listener in the fleet, one event per tab', async () => {
    const [a, b] = await Promise.all([gateway('gw-fleet-a'), gateway('gw-fleet-b')]);
    const tab1 = (await connectAs(a.url, 'grace')).client;
    await waitFor(() => a.gw.stats().listeners === 1, 'the first instance holds the listeners');
    const tab2 = (await connectAs(b.url, 'grace')).client;
    await write(db, 'users/grace/notifications/live', 'set', { n: 1 });
    await waitFor(() => changesOf(tab1, 'users/grace/notifications/live')[0], 'tab 1', 10_000);
    await waitFor(() => changesOf(tab2, 'users/grace/notifications/live')[0], 'tab 2');
    // Past a renewal by the holder and a poll by the standby: still one holder, nothing delivered twice.
    await Promise.all([nextHook(a, 'lease.renewed', 'grace'), nextHook(b, 'lease.standby', 'grace')]);
    await sentinel(db, tab1, 'users/grace/notifications/sentinel');
    await waitFor(() => changesOf(tab2, 'users/grace/notifications/sentinel')[0], 'the sentinel on tab 2');
    expect(a.gw.stats().listeners + b.gw.stats().listeners).toBe(1);
    expect(changesOf(tab1, 'users/grace/notifications/live')).toHaveLength(1);
    expect(changesOf(tab2, 'users/grace/notifications/live')).toHaveLength(1);
    await Promise.all([tab1.close(), tab2.close()]);
    await waitFor(() => a.gw.stats().listeners + b.gw.stats().listeners === 0, 'released everywhere');
  }, 40_000);

  it('WORKFLOW.watch of one job from two tabs on two instances: one workflow listener in the fleet, each change once per tab', async () => {
    const [a, b] = [gateways[0] ?? (await gateway('gw-fleet-a')), gateways[1] ?? (await gateway('gw-fleet-b'))];
    await write(db, 'jobs/wf-ivan', 'set', { owner_id: 'ivan', status: 'queued' });
    const tab1 = (await connectAs(a.url, 'ivan')).client;
    await waitFor(() => a.gw.stats().listeners === 1, 'the first instance holds the listeners');
    const tab2 = (await connectAs(b.url, 'ivan')).client;
    const workflowListeners = () => a.gw.stats().workflowListeners + b.gw.stats().workflowListeners;
    const workflowEvents = (tab: typeof tab1) =>
      changesOf(tab, 'jobs/wf-ivan').filter((e) => (e.data as { source: string }).source === 'workflow');
    expect(await tab1.call('WORKFLOW.watch', ['wf-ivan'])).toMatchObject({ result: { watching: true } });
    // The second watch lands on the instance without the lease: it only joins the fleet's watch set.
    expect(await tab2.call('WORKFLOW.watch', ['wf-ivan'])).toMatchObject({ result: { watching: true } });
    await waitFor(() => workflowEvents(tab1)[0] && workflowEvents(tab2)[0], 'the initial event on both tabs', 10_000);
    await write(db, 'jobs/wf-ivan', 'update', { status: 'running' });
    await waitFor(() => workflowEvents(tab1)[1] && workflowEvents(tab2)[1], 'the change on both tabs', 10_000);
    // Past a lease renewal (when the holder re-reads the watch set): still one listener, one event each.
    await nextHook(a, 'lease.renewed', 'ivan');
    await sentinel(db, tab1, 'users/ivan/notifications/wf-sentinel');
    await waitFor(() => changesOf(tab2, 'users/ivan/notifications/wf-sentinel')[0], 'the sentinel on tab 2');
    expect(workflowListeners()).toBe(1);
    expect(a.gw.stats().workflowListeners).toBe(1);
    for (const tab of [tab1, tab2]) {
      expect(workflowEvents(tab).map((e) => (e.data as { change: string }).change)).toEqual(['added', 'modified']);
    }
    // Unwatched from the instance that does not hold it: the holder closes it at its next renewal.
    await tab2.call('WORKFLOW.unwatch', ['wf-ivan']);
    await waitFor(() => workflowListeners() === 0, 'the watch released in the fleet', 5_000);
    await Promise.all([tab1.close(), tab2.close()]);
    await waitFor(() => a.gw.stats().listeners + b.gw.stats().listeners === 0, 'released everywhere');
  }, 40_000);

  it('SIGKILL of the owner: a survivor takes over, a write made right after is delivered once, a deletion once, nothing re-delivered', async () => {
    const survivor = gateways[1] ?? (await gateway('gw-fleet-b'));
    await write(db, 'users/heidi/notifications/old', 'set', { n: 0 });
    // PORT=0, its port read from its gateway_listening line; a child that exits fails the start.
    const { handle, port } = await startListenersChild({
      instanceId: 'gw-fleet-owner',
      redisUrl: redis.url,
      emulator,
      listeners: testListeners,
      env: { LISTENER_LEASE_TTL_MS: String(LEASE_TTL_MS) },
    });
    const owner = handle.child;
    try {
      const ownerTab = (await connectAs(`ws://127.0.0.1:${port}/ws`, 'heidi')).client;
      // The child holds the listeners once its initial snapshot reached the user's stream.
      await waitFor(() => changesOf(ownerTab, 'users/heidi/notifications/old')[0], 'initial on the owner', 20_000);
      const tab = (await connectAs(survivor.url, 'heidi')).client;
      await write(db, 'users/heidi/notifications/before', 'set', { n: 1 });
      await write(db, 'users/heidi/notifications/doomed', 'set', { n: -1 });
      await waitFor(() => changesOf(tab, 'users/heidi/notifications/before')[0], 'a change before the kill', 10_000);
      await waitFor(() => changesOf(tab, 'users/heidi/notifications/doomed')[0], 'another one', 10_000);
      expect(survivor.gw.stats().listeners).toBe(0);

      owner.kill('SIGKILL');
      await handle.exited;
      await write(db, 'users/heidi/notifications/during', 'set', { n: 2 });
      // Deleted while no instance listens: only the delivered set in Redis remembers it.
      await write(db, 'users/heidi/notifications/doomed', 'delete');
      await waitFor(() => survivor.gw.stats().listeners === 1, 'the survivor takes over', 10_000);
      const during = await waitFor(
        () => changesOf(tab, 'users/heidi/notifications/during')[0],
        'the write made during the takeover',
        10_000,
      );
      expect(during.data).toMatchObject({ change: 'added', initial: false });
      const removed = await waitFor(
        () => changesOf(tab, 'users/heidi/notifications/doomed')[1],
        'the deletion made during the takeover',
      );
      expect(removed.data).toMatchObject({ change: 'removed', initial: false });
      await write(db, 'users/heidi/notifications/after', 'set', { n: 3 });
      await waitFor(() => changesOf(tab, 'users/heidi/notifications/after')[0], 'a write after the takeover');
      await sentinel(db, tab, 'users/heidi/notifications/sentinel');
      expect(changesOf(tab, 'users/heidi/notifications/after')).toHaveLength(1);
      expect(changesOf(tab, 'users/heidi/notifications/during')).toHaveLength(1);
      expect(changesOf(tab, 'users/heidi/notifications/before')).toHaveLength(1);
      expect(changesOf(tab, 'users/heidi/notifications/doomed')).toHaveLength(2);
      // Delivered before the kill (the tab joined after it, so it never saw it): not re-sent.
      expect(changesOf(tab, 'users/heidi/notifications/old')).toHaveLength(0);
      await tab.close();
      await waitFor(() => survivor.gw.stats().listeners === 0, 'released');
    } finally {
      if (owner.exitCode === null && owner.signalCode === null) owner.kill('SIGKILL');
    }
  }, 60_000);

  it('SIGKILL and restart under the same INSTANCE_ID: the new process takes the lease with a new fencing token', async () => {
    const admin = new Redis(redis.url);
    const children: ChildProcess[] = [];
    const start = async () => {
      // PORT=0, its port read from its gateway_listening line; a child that exits fails the start.
      const { handle, port } = await startListenersChild({
        instanceId: 'gw-same',
        redisUrl: redis.url,
        emulator,
        listeners: testListeners,
        // Long enough that the dead process's lease is still live when its successor asks for it.
        env: { LISTENER_LEASE_TTL_MS: '60000' },
      });
      const { child } = handle;
      children.push(child);
      const healthz = async () =>
        (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.json() as Promise<
          { listeners_count: number } | undefined
        >;
      const tab = (await connectAs(`ws://127.0.0.1:${port}/ws`, 'judy')).client;
      await waitFor(async () => (await healthz())?.listeners_count === 1, 'the child holds the listeners', 15_000, 100);
      return { child, tab };
    };
    const holder = async () => {
      const [owner, token] = ((await admin.get('lb:{judy}:l')) ?? '').split('|');
      return { owner, token: Number(token) };
    };
    try {
      const first = await start();
      const before = await holder();
      expect(before.owner).toBe('gw-same');
      const exited = new Promise((resolve) => first.child.once('exit', resolve));
      first.child.kill('SIGKILL');
      await exited;
      await start();
      const after = await holder();
      expect(after.owner).toBe('gw-same');
      expect(after.token).toBeGreaterThan(before.token);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      admin.disconnect();
    }
  }, 60_000);

  it('Redis away longer than the lease TTL: a write made meanwhile is delivered once, nothing re-delivered', async () => {
    const g = await gateway('gw-fleet-c');
    // Written before the tab connects, so it comes with the listener's first snapshot: a write
    // landing while the listener loads may be held back by the emulator (docs/listeners.md,
    // "Deletions during a takeover"), which a busy machine turned into a timeout here.
    await write(db, 'users/ivan/notifications/before', 'set', { n: 1 });
    const tab = (await connectAs(g.url, 'ivan')).client;
    await waitFor(() => changesOf(tab, 'users/ivan/notifications/before')[0], 'a change before the outage', 10_000);
    // Settled before the outage: a kill between the append and its reply or its mark would
    // send it again (at least once, docs/reliability.md), which is not what this test is about.
    const marks = new Redis(redis.url);
    try {
      await waitFor(
        async () =>
          (await new RedisWatermarkStore(marks).get('ivan')).docs['notifications']?.[
            'users/ivan/notifications/before'
          ] !== undefined,
        'the mark of the change before the outage',
        10_000,
      );
    } finally {
      marks.disconnect();
    }
    const lost = nextHook(g, 'lease.lost', 'ivan');
    await redis.kill();
    // Seen by the listener at once; its publish waits for Redis while the lease runs out.
    await write(db, 'users/ivan/notifications/during', 'set', { n: 2 });
    // The holder gives the listeners up once it has not renewed for a whole TTL.
    expect(await lost).toMatchObject({ reason: 'renew_failed' });
    await redis.restart();
    await waitFor(
      () => changesOf(tab, 'users/ivan/notifications/during')[0],
      'the write made during the outage',
      15_000,
    );
    // The listeners were released when the lease ran out: re-attached (from the carried-over mark).
    await waitFor(() => g.gw.stats().listeners === 1, 're-attached', 10_000);
    await write(db, 'users/ivan/notifications/after', 'set', { n: 3 });
    await waitFor(() => changesOf(tab, 'users/ivan/notifications/after')[0], 'a write after the outage', 10_000);
    await sentinel(db, tab, 'users/ivan/notifications/sentinel');
    expect(changesOf(tab, 'users/ivan/notifications/before')).toHaveLength(1);
    expect(changesOf(tab, 'users/ivan/notifications/during')).toHaveLength(1);
    expect(changesOf(tab, 'users/ivan/notifications/after')).toHaveLength(1);
    await tab.close();
  }, 40_000);
});
