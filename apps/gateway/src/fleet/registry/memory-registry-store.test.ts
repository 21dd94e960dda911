import type { RegistrySession } from '@livebus/protocol';
import { MemoryRegistryStore } from './memory-registry-store';
import { emptyUserRegistry } from './registry-store';

const session = (id: string): RegistrySession => ({
  session_id: id,
  route: '/',
  registered_at: `2026-01-01T00:00:0${id.length % 10}.000Z`,
});

describe('MemoryRegistryStore: the sessions that left, on an injected clock', () => {
  it('drops the due leave records of the user at every leave, also those of sessions that never registered', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now);
    await store.registerSession('u', session('kept'));
    await store.registerSession('u', session('gone'));
    // A user who stays connected while tabs that never registered come and go: kept for their grace only.
    for (let i = 0; i < 50; i++) store.sessionLeft('u', `tab-${i}`, 1_000);
    store.sessionLeft('u', 'gone', 1_000);
    expect(store.leavingCount()).toBe(51);
    now += 1_000;
    // Their grace is over: the next leave of the user drops them and the entry of `gone`, with no read in between.
    store.sessionLeft('u', 'tab-late', 1_000);
    expect(store.leavingCount()).toBe(1);
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept']);
  });

  it('a session registered after it left (an RPC in flight at the close) goes at the end of its grace', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now);
    await store.registerSession('u', session('kept'));
    store.sessionLeft('u', 'late', 1_000);
    await store.registerSession('u', session('late'));
    now += 500;
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept', 'late']);
    now += 500;
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept']);
    expect(store.leavingCount()).toBe(0);
  });

  it('a session registered after its grace is over, its leave still recorded, is not kept', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now);
    await store.registerSession('u', session('kept'));
    store.sessionLeft('u', 'late', 1_000);
    now += 1_000;
    expect(await store.registerSession('u', session('late'))).toBe(true);
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept']);
    expect(store.leavingCount()).toBe(0);
  });

  it('keeps the entry of a session that left and came back in its grace', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now);
    await store.registerSession('u', session('s1'));
    store.sessionLeft('u', 's1', 1_000);
    now += 500;
    store.sessionBack('u', 's1');
    expect(store.leavingCount()).toBe(0);
    now += 1_000;
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['s1']);
  });

  it('without a grace, a session registered right after it left (an RPC in flight at the close) is not kept', async () => {
    const store = new MemoryRegistryStore(() => 1_000);
    await store.registerSession('u', session('kept'));
    await store.registerSession('u', session('gone'));
    store.sessionLeft('u', 'gone', 0);
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept']);
    store.sessionLeft('u', 'late', 0);
    expect(await store.registerSession('u', session('late'))).toBe(true);
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['kept']);
    expect(store.leavingCount()).toBe(0);
  });
  it('a registration after the user was cleared (an RPC in flight at the last close) goes with the backstop, as on Redis', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now, { sessionsTtlS: 60 });
    store.sessionBack('u', 'gone'); // presence added it
    await store.registerSession('u', session('gone'));
    store.sessionLeft('u', 'gone', 1_000);
    now += 1_000;
    // The detach cleanup, DETACH_DELAY_MS after the user's last session left; then the late registration.
    store.clearUser('u');
    await store.registerSession('u', session('gone'));
    now += 59_999;
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['gone']);
    now += 1;
    expect(await store.getSessions('u')).toEqual([]);
    // One that the user comes back to (any session of theirs added) stays while they are present.
    await store.registerSession('u', session('late'));
    store.sessionBack('u', 'back');
    now += 120_000;
    expect((await store.getSessions('u')).map((s) => s.session_id)).toEqual(['late']);
  });

  it('drops the backstop entries of users never named again at an operation for another user, as Redis keys expire', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now, { sessionsTtlS: 60 });
    // A backend registering users who never connect; the first one registers again later (its backstop moves on).
    for (let i = 0; i < 1_000; i++) await store.registerSession(`backend-${i}`, session('s'));
    now += 30_000;
    await store.registerSession('backend-0', session('again'));
    expect(store.backstopCount()).toBe(1_000);
    now += 29_999;
    await store.getSessions('other');
    expect(store.backstopCount()).toBe(1_000);
    now += 1;
    await store.getSessions('other');
    expect(store.backstopCount()).toBe(1);
    expect((await store.getSessions('backend-0')).map((s) => s.session_id).sort()).toEqual(['again', 's']);
    now += 30_000;
    store.sessionBack('other', 's');
    expect(store.backstopCount()).toBe(0);
  });
});

describe('MemoryRegistryStore: the unified documents, on an injected clock', () => {
  const doc = (uid: string) => emptyUserRegistry(uid, true);

  it('drops the unified documents of users never read again at an operation for another user, as Redis keys expire', async () => {
    let now = 1_000;
    const store = new MemoryRegistryStore(() => now);
    // A longer TTL ahead of them in the order of writes: it must not hold back the sweep of the shorter ones.
    await store.putUnified('long', doc('long'), 600);
    for (let i = 0; i < 1_000; i++) await store.putUnified(`user-${i}`, doc(`user-${i}`), 60);
    now += 30_000;
    await store.touchUnified('user-0', 60); // a heartbeat: it now goes 60 s from here
    now += 29_999;
    await store.getSessions('other');
    expect(store.unifiedCount()).toBe(1_001);
    now += 1;
    await store.getSessions('other');
    expect(store.unifiedCount()).toBe(2);
    expect(await store.getUnified('user-0')).toEqual(doc('user-0'));
    now += 30_000;
    await store.getSessions('other');
    expect(store.unifiedCount()).toBe(1);
    // Gone: a late heartbeat does not bring it back, as EXPIRE on an expired key does nothing.
    await store.touchUnified('user-0', 60);
    expect(await store.getUnified('user-0')).toBeUndefined();
    now += 510_000;
    store.clearUser('other');
    expect(store.unifiedCount()).toBe(0);
  });
});
