import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type AppEvent, type Cursor, type ListenerChange, parseCursor } from '@livebus/protocol';
import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { Redis } from 'ioredis';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';
import { RedisLease } from '../src/fleet/lease/redis-lease';
import { type GatewayHookEvents, Hooks } from '../src/hooks';
import { FirestoreListenerSource } from '../src/listeners/firestore/firestore-listener-source';
import { RedisWatermarkStore } from '../src/listeners/redis-watermark-store';
import type { WatermarkStore } from '../src/listeners/watermark-store';
import type { Logger } from '../src/logger';
import { connectAs } from './helpers';
import { startListenersChild, testFirestore, useEmulator, warmUp, write } from './listeners-helpers';

let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let client: Redis;
let db: Firestore;
let closeDb: () => Promise<void>;

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const LISTENERS = [{ name: 'notifications', collection: 'users/{uid}/notifications' }];

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-listeners-resume'), startRedisServer()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'test-resume'));
  await warmUp(db);
  client = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

describe('a holder whose lease went to another instance', () => {
  it('is fenced at its next mark: the source tells the manager once, and leaves the hooks to it (it names the token)', async () => {
    const uid = `fenced-${Date.now()}`;
    const lease = new RedisLease(client);
    const store = new RedisWatermarkStore(client);
    const hooks = new Hooks<GatewayHookEvents>();
    const lost: GatewayHookEvents['lease.lost'][] = [];
    hooks.on('lease.lost', (e) => lost.push(e));
    let told = 0;
    const old = (await lease.acquire(uid, 'gw-old', 500))!.token;
    const sent: AppEvent[] = [];
    // The documents whose mark was tried (stored or fenced): the marker that a snapshot was done with.
    const tried = new Set<string>();
    const marks: WatermarkStore = {
      get: (userId) => store.get(userId),
      async set(...args) {
        const stored = await store.set(...args);
        for (const path of Object.keys(args[4]?.put ?? {})) tried.add(path.split('/').pop() as string);
        return stored;
      },
      forget: (userId, listener) => store.forget(userId, listener),
      clear: (userId) => store.clear(userId),
    };
    const source = new FirestoreListenerSource({ firestore: db, listeners: LISTENERS, marks, logger: silent });
    await write(db, `users/${uid}/notifications/first`, 'set', { n: 1 });
    const detach = await source.attach(uid, (event) => void sent.push(event), {
      fence: { owner: 'gw-old', token: old },
      onFenced: () => told++,
      hooks,
    });
    await waitFor(() => sent.length === 1, 'the initial snapshot', 10_000);
    // The old holder stops renewing; another instance takes the lease over.
    await waitFor(async () => (await lease.acquire(uid, 'gw-new', 60_000)) !== undefined, 'the takeover', 5_000, 100);
    await write(db, `users/${uid}/notifications/second`, 'set', { n: 2 });
    await write(db, `users/${uid}/notifications/third`, 'set', { n: 3 });
    await waitFor(() => told === 1, 'onFenced', 10_000);
    // A later write's mark, tried after the fenced ones: told once, not once per refused mark.
    await write(db, `users/${uid}/notifications/fourth`, 'set', { n: 4 });
    await waitFor(() => tried.has('third') && tried.has('fourth'), 'the marks of the later writes tried', 10_000);
    // The manager tells the hooks (listener_lease_lost, with the token): not twice.
    expect(lost).toEqual([]);
    expect(told).toBe(1);
    await detach({ handover: true });
  }, 60_000);
});

/** A child gateway process (dist/main.js) holding `uid`'s listeners, told to hold before the mark of `holdPath`. */
async function childHolding(uid: string, holdPath: string) {
  const { handle, port } = await startListenersChild({
    instanceId: 'gw-dead',
    redisUrl: redis.url,
    emulator,
    listeners: { user: LISTENERS },
    // Short, so the takeover after the kill does not wait long for the dead holder's lease (10 s
    // allowed); not so short that a child starved for a moment loses it before the kill.
    env: { LISTENER_LEASE_TTL_MS: '3000', LIVEBUS_TEST_HOLD_BEFORE_MARK: holdPath },
  });
  const child: ChildProcess = handle.child;
  const held: Array<{ userId: string; path: string }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{"livebus_test"')) return;
    const signal = JSON.parse(line) as { livebus_test: string; userId: string; path: string };
    if (signal.livebus_test === 'holding_before_mark') held.push(signal);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const tab = (await connectAs(`ws://127.0.0.1:${port}/ws`, uid)).client;
  return {
    held,
    tab,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

// A holder SIGKILLed for real between publishing a snapshot's events and storing its mark:
// the child gateway is held there by its test-only hook (LIVEBUS_TEST_HOLD_BEFORE_MARK), so
// its last events are in the user's stream (real Redis bus) and not in the stored state.
describe('takeover after a holder was SIGKILLed between publishing and storing its mark', () => {
  it('re-sends neither the change nor the deletion the dead holder published; a later write is delivered', async () => {
    const uid = `kim-${Date.now()}`;
    const path = (id: string) => `users/${uid}/notifications/${id}`;
    const bus = new RedisEventBus(client);
    const lease = new RedisLease(client);
    const store = new RedisWatermarkStore(client);
    const changes = (events: AppEvent[]) =>
      events.map((e) => {
        const d = e.data as ListenerChange;
        return `${d.change} ${d.path.split('/').pop()}`;
      });
    const streamChanges = async () => {
      // A cursor of another epoch reads as a gap: read the current epoch from its start.
      const epoch = parseCursor((await bus.readSince(uid, '0:0' as Cursor)).cursor)?.epoch;
      const read = await bus.readSince(uid, `${epoch}:0` as Cursor);
      return changes(read.events.filter((e) => e.event === 'listener.change'));
    };

    await write(db, path('kept'), 'set', { n: 0 });
    await write(db, path('doomed'), 'set', { n: -1 });
    const dead = await childHolding(uid, path('published'));
    try {
      await waitFor(
        async () => (await store.get(uid)).cursors['notifications'] !== undefined,
        'its first mark',
        20_000,
      );
      // One commit, so one snapshot: its change and its deletion are published, then the mark is held.
      await db
        .batch()
        .set(db.doc(path('published')), { n: 1 })
        .delete(db.doc(path('doomed')))
        .commit();
      await waitFor(() => dead.held[0], 'the child holding before the mark', 10_000);
      await dead.kill();
    } finally {
      dead.stop();
    }
    // What the kill left: both events in the stream, the stored mark still before them.
    expect((await streamChanges()).sort()).toEqual(['added doomed', 'added kept', 'added published', 'removed doomed']);
    expect(Object.keys((await store.get(uid)).docs['notifications'] ?? {}).sort()).toEqual([
      path('doomed'),
      path('kept'),
    ]);
    // A write from another source in between: not this listener's, skipped by the replay.
    await bus.publish(uid, {
      event: 'listener.change',
      data: {
        source: 'firestore',
        listener: 'other',
        path: 'x/y',
        change: 'added',
        update_time: '2030-01-01T00:00:00.000000Z',
      },
    });

    // The new owner, once the dead holder's lease ran out.
    const token = await waitFor(
      async () => (await lease.acquire(uid, 'gw-new', 60_000))?.token,
      "the dead holder's lease expired",
      10_000,
      100,
    );
    const sent: AppEvent[] = [];
    const source = new FirestoreListenerSource({ firestore: db, listeners: LISTENERS, marks: store, logger: silent });
    const detach = await source.attach(
      uid,
      (event) => {
        sent.push(event);
        return bus.publish(uid, event);
      },
      { fence: { owner: 'gw-new', token }, readSince: (cursor) => bus.readSince(uid, cursor) },
    );
    // Written once the first snapshot is published: the emulator may hold back a write that
    // lands while a listener loads (docs/listeners.md), and nothing here would re-open it.
    await detach.ready;
    await write(db, path('after'), 'set', { n: 2 });
    // The later write is the marker: its snapshot's mark is stored once every event of that
    // snapshot and of the ones before it was published, so a re-sent change is in `sent` by then.
    await waitFor(
      async () => (await store.get(uid)).docs['notifications']?.[path('after')] !== undefined,
      'the new owner stored the mark of the write after the takeover',
      10_000,
    );
    // Before the fix: `added published` and `removed doomed` were sent again here.
    expect(changes(sent)).toEqual(['added after']);
    expect(sent[0]!.data).toMatchObject({ initial: false });
    const stored = await store.get(uid);
    expect(Object.keys(stored.docs['notifications'] ?? {}).sort()).toEqual([
      path('after'),
      path('kept'),
      path('published'),
    ]);
    expect(stored.cursors['notifications']).toBe(await bus.head(uid));
    await detach({ handover: true });
    await lease.release(uid, 'gw-new', token);
    await bus.close();
  }, 60_000);
});
