import type { AppEvent } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import type { StoredEvent } from '../fleet/bus/event-bus';
import type { Lease } from '../fleet/lease/lease';
import { MemoryLease } from '../fleet/lease/memory-lease';
import type { Logger } from '../logger';
import {
  addToUnsaved,
  CarryOver,
  carriedFromStream,
  carryOptions,
  laterCursor,
  mergeCarried,
  replayCarried,
  replayListener,
  toldFromStream,
} from './carry-over';
import { FirestoreListenerSource } from './firestore/firestore-listener-source';
import { ListenersManager } from './listeners-manager';
import { MemoryWatermarkStore } from './memory-watermark-store';
import type { WatermarkStore } from './watermark-store';
import { MemoryWorkflowWatchStore } from './workflow-watch-store';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };

interface FakeDoc {
  updateTime: { seconds: number; nanoseconds: number };
  createTime: { seconds: number; nanoseconds: number };
  data: Record<string, unknown>;
}

/**
 * One Firestore collection as the listener source sees it: a new listener first gets
 * every document as `added`, then each write as one change; read times and update
 * times come from one clock, like Firestore's commit times.
 */
function fakeFirestore() {
  const docs = new Map<string, FakeDoc>();
  const listeners = new Set<(changes: [string, 'added' | 'modified' | 'removed'][]) => void>();
  let clock = 1;
  const now = () => ({ seconds: clock, nanoseconds: 0 });
  const snapshot = (changes: [string, 'added' | 'modified' | 'removed'][]) => ({
    size: docs.size,
    readTime: now(),
    docChanges: () =>
      changes.map(([path, type]) => {
        const d = docs.get(path) as FakeDoc;
        return {
          type,
          doc: { ref: { path }, updateTime: d.updateTime, createTime: d.createTime, data: () => d.data },
        };
      }),
  });
  const query = {
    where: () => query,
    onSnapshot(next: (s: unknown) => void) {
      const deliver = (changes: [string, 'added' | 'modified' | 'removed'][]) => next(snapshot(changes));
      listeners.add(deliver);
      setImmediate(() => listeners.has(deliver) && deliver([...docs.keys()].map((p) => [p, 'added'])));
      return () => listeners.delete(deliver);
    },
  };
  return {
    firestore: { collection: () => query } as unknown as Firestore,
    write(path: string, data: Record<string, unknown>) {
      clock++;
      const before = docs.get(path);
      docs.set(path, { updateTime: now(), createTime: before?.createTime ?? now(), data });
      for (const l of listeners) l([[path, before ? 'modified' : 'added']]);
    },
    get open() {
      return listeners.size;
    },
  };
}

/** Redis as the lease and the mark store see it: `down` makes every call fail, data kept. */
function redisLike() {
  const outage = { down: false };
  const guard =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (outage.down) throw new Error('connect ECONNREFUSED');
      return call(...args);
    };
  const memory = new MemoryLease();
  const lease: Lease = {
    acquire: guard((...a: Parameters<Lease['acquire']>) => memory.acquire(...a)),
    takeOver: guard((...a: Parameters<Lease['takeOver']>) => memory.takeOver(...a)),
    renew: guard((...a: Parameters<Lease['renew']>) => memory.renew(...a)),
    release: guard((...a: Parameters<Lease['release']>) => memory.release(...a)),
    holder: guard((...a: Parameters<Lease['holder']>) => memory.holder(...a)),
  };
  const stored = new MemoryWatermarkStore(memory);
  const marks: WatermarkStore = {
    get: guard((...a: Parameters<WatermarkStore['get']>) => stored.get(...a)),
    set: guard((...a: Parameters<WatermarkStore['set']>) => stored.set(...a)),
    forget: guard((...a: Parameters<WatermarkStore['forget']>) => stored.forget(...a)),
    clear: guard((...a: Parameters<WatermarkStore['clear']>) => stored.clear(...a)),
  };
  return { outage, lease, marks, stored };
}

function setup(options: { blockEmitsWhileDown: boolean; leaseTtlMs: number }) {
  const fs = fakeFirestore();
  const redis = redisLike();
  const delivered: string[] = [];
  let backUp: () => void = () => {};
  let isBack = Promise.resolve();
  const down = (value: boolean) => {
    redis.outage.down = value;
    if (value) isBack = new Promise((resolve) => (backUp = resolve));
    else backUp();
  };
  const source = new FirestoreListenerSource({
    firestore: fs.firestore,
    listeners: [{ name: 'docs', collection: 'users/{uid}/docs' }],
    marks: redis.marks,
    logger: silent,
    retryMinMs: 10,
  });
  const manager = new ListenersManager({
    workflowWatches: new MemoryWorkflowWatchStore(),
    sources: [source],
    detachDelayMs: 50,
    logger: silent,
    cleanupRegistry: async () => 'cleaned',
    lease: redis.lease,
    instanceId: 'a',
    leaseTtlMs: options.leaseTtlMs,
    emit: async (_uid: string, event: AppEvent) => {
      const data = event.data as { path: string; update_time: string; change: string };
      // The bus publish waits (retries, outbox) while Redis is away; it lands once it is back.
      if (options.blockEmitsWhileDown && redis.outage.down) await isBack;
      delivered.push(`${data.change} ${data.path} ${data.update_time}`);
    },
  });
  return { fs, redis, delivered, down, manager };
}

// On fake timers: the lease's clock (MemoryLease on Date.now) and the manager's renewals move
// only as the test says, so "away longer than the TTL" and "back within it" hold however slow
// the machine is. The fake Firestore delivers on setImmediate, left real.
const sleep = (ms: number) => jest.advanceTimersByTimeAsync(ms);
/** Moves the fake clock 10 ms at a time until `check` holds (at most `maxMs` of fake time). */
async function until<T>(check: () => T | Promise<T>, what: string, maxMs = 5_000): Promise<T> {
  for (let spent = 0; ; spent += 10) {
    const value = await check();
    if (value) return value;
    if (spent >= maxMs) throw new Error(`${what}: not within ${maxMs} ms (fake time)`);
    await jest.advanceTimersByTimeAsync(10);
  }
}
/** Waits for `promise`, moving the fake clock meanwhile. */
async function settled(promise: Promise<unknown>, what: string): Promise<void> {
  let done = false;
  void promise.finally(() => {
    done = true;
  });
  await until(() => done, what);
  await promise;
}

describe('carry-over across a Redis outage', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('delivers a change once when Redis is away longer than the lease TTL while its publish waits', async () => {
    const { fs, redis, delivered, down, manager } = setup({ blockEmitsWhileDown: true, leaseTtlMs: 240 });
    fs.write('users/u1/docs/a', { v: 1 });
    await settled(manager.sessionOpened('u1', 's1'), 'attached');
    await until(() => delivered.length === 1, 'initial event');
    await until(async () => (await redis.stored.get('u1')).marks.docs !== undefined, 'first mark');

    down(true);
    fs.write('users/u1/docs/a', { v: 2 }); // its publish waits for Redis
    await sleep(20);
    // The lease is not renewable for a whole TTL: the manager releases the listeners,
    // waiting for the publish in flight.
    await until(() => fs.open === 0, 'listener released', 3_000);
    fs.write('users/u1/docs/b', { v: 1 }); // written while no listener runs
    await sleep(100);
    down(false); // back with its data: the stale mark, the lease expired

    await until(() => manager.isAttached('u1') && fs.open === 1, 're-attached', 3_000);
    await until(() => delivered.length >= 3, 'b delivered', 3_000);
    await sleep(100);
    fs.write('users/u1/docs/a', { v: 3 });
    await until(() => delivered.length >= 4, 'a v3 delivered');
    await sleep(50);

    expect(delivered).toEqual([
      'added users/u1/docs/a 1970-01-01T00:00:02.000000Z',
      'modified users/u1/docs/a 1970-01-01T00:00:03.000000Z',
      'added users/u1/docs/b 1970-01-01T00:00:04.000000Z',
      'modified users/u1/docs/a 1970-01-01T00:00:05.000000Z',
    ]);
    // The published change reached the store under the new token.
    const resume = await redis.stored.get('u1');
    expect(resume.docs.docs).toEqual({ 'users/u1/docs/a': '5000000000', 'users/u1/docs/b': '4000000000' });
    expect(resume.marks.docs).toBe('5000000000');
    manager.sessionClosed('u1', 's1');
    await settled(manager.flush(), 'flushed');
  });

  it('stores a mark Redis refused while away at the next lease renewal, before any new snapshot', async () => {
    const { fs, redis, delivered, down, manager } = setup({ blockEmitsWhileDown: false, leaseTtlMs: 600 });
    fs.write('users/u1/docs/a', { v: 1 });
    await settled(manager.sessionOpened('u1', 's1'), 'attached');
    await until(() => delivered.length === 1, 'initial event');
    down(true);
    fs.write('users/u1/docs/a', { v: 2 }); // published, its mark not stored
    await until(() => delivered.length === 2, 'a v2 delivered');
    await sleep(50);
    // Back within the TTL: the lease is still held.
    expect(manager.isAttached('u1')).toBe(true);
    down(false);
    await until(async () => (await redis.stored.get('u1')).marks.docs === '3000000000', 'mark stored', 1_000);
    expect((await redis.stored.get('u1')).docs.docs).toEqual({ 'users/u1/docs/a': '3000000000' });
    expect(manager.isAttached('u1')).toBe(true);
    manager.sessionClosed('u1', 's1');
    await settled(manager.flush(), 'flushed');
  });
});

describe('mergeCarried', () => {
  const stored = { mark: '10', docs: { a: '5', b: '8', c: '9' }, overflowed: false };

  it('keeps the later event per path and the later mark', () => {
    const merged = mergeCarried(stored, {
      mark: '12',
      put: { a: '11', b: '7', d: '12' },
      del: { c: '12' },
      overflow: false,
    });
    expect(merged.mark).toBe('12');
    expect(merged.docs).toEqual({ a: '11', b: '8', d: '12' });
    expect(merged.unsaved).toEqual({ mark: '12', put: { a: '11', d: '12' }, del: { c: '12' }, overflow: false });
  });

  it('keeps a document delivered again after the carried removal, and never moves the mark back', () => {
    const merged = mergeCarried(stored, { mark: '6', put: {}, del: { b: '6' }, overflow: false });
    expect(merged.docs).toEqual(stored.docs);
    expect(merged.mark).toBe('10');
    expect(merged.unsaved?.mark).toBe('10');
  });

  it('replays a newer carried mark over an older one', () => {
    const carry = new CarryOver();
    carry.keep('l', { mark: '5', put: { a: '5' }, del: { b: '4' }, overflow: false });
    carry.keep('l', { mark: '7', put: { b: '7' }, del: { a: '6' }, overflow: false });
    expect(carry.take('l')).toEqual({ mark: '7', put: { b: '7' }, del: { a: '6' }, overflow: false });
    expect(carry.take('l')).toBeUndefined();
  });
});

describe('stream cursors', () => {
  it('orders cursors by offset within an epoch, and takes the newer one across epochs', () => {
    expect(laterCursor('e:9', 'e:10')).toBe('e:10');
    expect(laterCursor('e:10', 'e:9')).toBe('e:10');
    expect(laterCursor('old:50', 'new:1')).toBe('new:1');
    expect(laterCursor(undefined, 'e:1')).toBe('e:1');
    expect(laterCursor('e:1', undefined)).toBe('e:1');
  });

  it('moves an unsaved mark to the last published cursor, keeping it over a snapshot that published none', () => {
    let unsaved = addToUnsaved(undefined, '10', { put: { a: '9' }, del: [] }, '10', 'e:3');
    unsaved = addToUnsaved(unsaved, '11', { put: {}, del: [] }, '11');
    expect(unsaved).toMatchObject({ mark: '11', cursor: 'e:3' });
    expect(addToUnsaved(unsaved, '12', { put: {}, del: ['a'] }, '12', 'e:4').cursor).toBe('e:4');
  });

  it('carries the later cursor through a merge with the store and with an earlier carry', () => {
    const stored = { mark: '10', docs: {}, overflowed: false, cursor: 'e:7' };
    expect(mergeCarried(stored, { mark: '12', put: {}, del: {}, overflow: false, cursor: 'e:9' }).unsaved?.cursor).toBe(
      'e:9',
    );
    expect(mergeCarried(stored, { mark: '12', put: {}, del: {}, overflow: false, cursor: 'e:5' }).unsaved?.cursor).toBe(
      'e:7',
    );
    expect(mergeCarried(stored, { mark: '12', put: {}, del: {}, overflow: false, cursor: 'f:1' }).unsaved?.cursor).toBe(
      'f:1',
    );
    const carry = new CarryOver();
    carry.keep('l', { mark: '5', put: {}, del: {}, overflow: false, cursor: 'e:8' });
    carry.keep('l', { mark: '7', put: {}, del: {}, overflow: false, cursor: 'e:6' });
    expect(carry.take('l')?.cursor).toBe('e:8');
    carry.keep('l', { mark: '5', put: {}, del: {}, overflow: false });
    carry.keep('l', { mark: '7', put: {}, del: {}, overflow: false, cursor: 'e:6' });
    expect(carry.take('l')?.cursor).toBe('e:6');
  });
});

describe('carriedFromStream', () => {
  let offset = 0;
  const event = (data: Record<string, unknown>, name = 'listener.change'): StoredEvent =>
    ({ type: 'event', event: name, data, cursor: `e:${++offset}`, ts: 0 }) as StoredEvent;
  const change = (listener: string, path: string, kind: string, time: string) =>
    event({ source: 'firestore', listener, path, change: kind, update_time: time });
  const mine = (c: { source: string; listener?: string }) => c.source === 'firestore' && c.listener === 'l';
  // 1 s + 500 µs and 2 s after the epoch, as marks.
  const t1 = '1970-01-01T00:00:01.000500Z';
  const t2 = '1970-01-01T00:00:02.000000Z';

  it("takes this listener's changes in stream order, at the stored mark, with the cursor of the last one", () => {
    const events = [
      change('l', 'p/a', 'added', t1),
      change('other', 'p/b', 'added', t1),
      event({ source: 'workflow', listener: 'l', path: 'p/c', change: 'added', update_time: t1 }),
      change('l', 'p/d', 'removed', t1),
      change('l', 'p/e', 'modified', t1),
      change('l', 'p/e', 'removed', t2),
      change('l', 'p/d', 'added', t2),
      event({ kind: 'x' }, 'session.notice'),
      change('other', 'p/f', 'added', t2),
    ];
    expect(carriedFromStream(events, mine, '500')).toEqual({
      mark: '500',
      put: { 'p/a': '1000500000', 'p/d': '2000000000' },
      del: { 'p/e': '2000000000' },
      overflow: false,
      cursor: events[6]?.cursor,
    });
  });

  it('is undefined when the listener published nothing after the cursor', () => {
    expect(carriedFromStream([change('other', 'p/a', 'added', t1)], mine, '500')).toBeUndefined();
  });

  it('reads after the stored cursor, and skips (telling why) on a gap, a failed read, or no cursor', async () => {
    const events = [change('l', 'p/a', 'added', t1)];
    const skipped: string[] = [];
    const onSkipped = (reason: string) => skipped.push(reason);
    const read = async (cursor: string) => {
      expect(cursor).toBe('e:0');
      return { status: 'resumed' as const, events, cursor: 'e:1' };
    };
    const stored = { mark: '500', cursor: 'e:0' };
    expect((await replayCarried(read, stored, mine, onSkipped))?.put).toEqual({ 'p/a': '1000500000' });
    expect(await replayCarried(read, { mark: '500', cursor: undefined }, mine, onSkipped)).toBeUndefined();
    expect(await replayCarried(undefined, stored, mine, onSkipped)).toBeUndefined();
    const gap = async () => ({ status: 'gap' as const, events: [] as [], cursor: 'f:0' });
    expect(await replayCarried(gap, stored, mine, onSkipped)).toBeUndefined();
    const failing = async () => Promise.reject(new Error('redis away'));
    expect(await replayCarried(failing, stored, mine, onSkipped)).toBeUndefined();
    expect(skipped).toEqual(['gap', 'Error: redis away']);
  });

  it("reads back the failure the user was told of and not told the end of: the listener's last status after the cursor", () => {
    const status = (listener: string, data: Record<string, unknown>) =>
      event({ source: 'firestore', listener, path: 'users/u1/l', ...data }, 'listener.status');
    const failing = (kind: string, retrying = true) => ({ status: 'failing', kind, retrying });
    const recovered = { status: 'recovered' };
    const told = (...events: StoredEvent[]) => toldFromStream(events, mine);
    expect(told(status('l', failing('unavailable')), change('l', 'p/a', 'added', t1))).toBe('unavailable');
    expect(told(status('l', failing('unavailable')), status('l', failing('permission_denied')))).toBe(
      'permission_denied',
    );
    expect(told(status('l', failing('unavailable')), status('l', recovered))).toBeUndefined();
    expect(told(status('l', failing('unavailable')), status('l', failing('unavailable', false)))).toBeUndefined();
    expect(told(status('l', failing('unavailable')), status('other', recovered))).toBe('unavailable');
    expect(told(status('other', failing('unavailable')), change('l', 'p/a', 'added', t1))).toBeUndefined();
  });

  it('replayListener gives the changes to carry over and the told failure from one read', async () => {
    const events = [
      change('l', 'p/a', 'added', t1),
      event(
        {
          source: 'firestore',
          listener: 'l',
          path: 'users/u1/l',
          status: 'failing',
          kind: 'unavailable',
          retrying: true,
        },
        'listener.status',
      ),
    ];
    let reads = 0;
    const read = async () => {
      reads++;
      return { status: 'resumed' as const, events, cursor: 'e:9' };
    };
    const replayed = await replayListener(read, { mark: '500', cursor: 'e:0' }, mine, () => {});
    expect([replayed.carried?.put, replayed.told, reads]).toEqual([{ 'p/a': '1000500000' }, 'unavailable', 1]);
  });

  it('is merged, as the newer part, with what this instance carried over', () => {
    const carry = new CarryOver();
    carry.keep('l', { mark: '400', put: { 'p/a': '300', 'p/b': '350' }, del: {}, overflow: false, cursor: 'e:2' });
    const replayed = { mark: '500', put: { 'p/c': '450' }, del: { 'p/b': '480' }, overflow: false, cursor: 'e:5' };
    expect(carryOptions(carry, 'l', replayed).carried).toEqual({
      mark: '500',
      put: { 'p/a': '300', 'p/c': '450' },
      del: { 'p/b': '480' },
      overflow: false,
      cursor: 'e:5',
    });
    expect(carryOptions(undefined, 'l', replayed)).toEqual({ carried: replayed });
  });
});

describe('listener.status across a takeover, for a listener that failed before it delivered anything', () => {
  /** The user's stream (cursors `e:<n>`), read back as the manager's `readSince` does. */
  function userStream() {
    const events: StoredEvent[] = [];
    const emit = async (event: AppEvent) => {
      const stored = { ...event, cursor: `e:${events.length + 1}` } as StoredEvent;
      events.push(stored);
      return { cursor: stored.cursor };
    };
    const readSince = async (cursor: string) => {
      const after = Number(cursor.split(':')[1]);
      return { status: 'resumed' as const, events: events.slice(after), cursor: `e:${events.length}` };
    };
    const statuses = () =>
      events.filter((e) => e.event === 'listener.status').map((e) => (e.data as { status: string }).status);
    return { events, emit, readSince, statuses };
  }

  /**
   * A collection whose listens fail (permission denied) while `refuse` holds, else answer an
   * empty snapshot; `fail` fails the open one.
   */
  function flakyFirestore() {
    const denied = () => Object.assign(new Error('7 PERMISSION_DENIED'), { code: 7 });
    const state = { refuse: true, fail: () => {} };
    const query = {
      where: () => query,
      onSnapshot(next: (s: unknown) => void, failed: (e: Error) => void) {
        const refuse = state.refuse;
        state.fail = () => failed(denied());
        setImmediate(() =>
          refuse ? failed(denied()) : next({ size: 0, readTime: { seconds: 5, nanoseconds: 0 }, docChanges: () => [] }),
        );
        return () => {};
      },
    };
    return { firestore: { collection: () => query } as unknown as Firestore, state };
  }

  /**
   * Holder a attaches, and is told failing at its open (`fails`), after an empty first snapshot
   * (`fails later`: a mark, and no cursor, stored) or not at all; it hands over, and holder b opens fine.
   */
  async function takeover(fails: 'fails' | 'fails later' | 'never') {
    const stream = userStream();
    const marks = new MemoryWatermarkStore();
    const fs = flakyFirestore();
    fs.state.refuse = fails === 'fails';
    const source = new FirestoreListenerSource({
      firestore: fs.firestore,
      listeners: [{ name: 'docs', collection: 'users/{uid}/docs' }],
      marks,
      logger: silent,
      retryMinMs: 60_000,
    });
    const context = (token: number) => ({ fence: { owner: `i${token}`, token }, readSince: stream.readSince });
    const a = await source.attach('u1', stream.emit, context(1));
    if (fails !== 'fails') await a.ready;
    if (fails === 'fails later') fs.state.fail();
    if (fails !== 'never') await waitFor(() => stream.statuses().length === 1, 'failing told');
    await a({ handover: true });
    fs.state.refuse = false;
    const b = await source.attach('u1', stream.emit, context(2));
    await b.ready;
    await b({ handover: true });
    return stream.statuses();
  }

  it('the new holder tells the recovery of a failing its predecessor told, once its listener works', async () => {
    expect(await takeover('fails')).toEqual(['failing', 'recovered']);
    expect(await takeover('fails later')).toEqual(['failing', 'recovered']);
  });

  it('tells nothing when nothing was told', async () => {
    expect(await takeover('never')).toEqual([]);
  });
});
