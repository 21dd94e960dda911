import type { Principal } from '../../auth/authenticator';
import { toPrincipal } from '../../auth/principal';
import { MemoryEventBus } from '../../fleet/bus/memory-event-bus';
import { MemoryRegistryStore } from '../../fleet/registry/memory-registry-store';
import { emptyUserRegistry } from '../../fleet/registry/registry-store';
import { type GatewayHookEvents, Hooks } from '../../hooks';
import { createLogger } from '../../logger';
import { ListenersManager } from '../listeners-manager';
import { MemoryWorkflowWatchStore } from '../workflow-watch-store';
import { type CompanyFollowers, MemoryCompanyFollowers } from './company-followers';
import { CompanyListeners } from './company-listeners';
import { CompanyStats } from './company-stats';
import { Membership } from './membership';

function setup(
  o: { followers?: CompanyFollowers; followerTtlMs?: number; leaveDelayMs?: number; membership?: Membership } = {},
) {
  const hooks = new Hooks<GatewayHookEvents>();
  const logger = createLogger({ level: 'error', format: 'json', instanceId: 't' });
  const registry = new MemoryRegistryStore();
  const followers = o.followers ?? new MemoryCompanyFollowers();
  const principals = new Map<string, Principal[]>();
  const manager = new ListenersManager({
    sources: [],
    detachDelayMs: 10,
    logger,
    cleanupRegistry: async () => 'cleaned',
    emit: async () => undefined,
    lease: {
      acquire: async () => ({ token: 1 }),
      renew: async () => true,
      release: async () => true,
      holder: async () => undefined,
      takeOver: async () => undefined,
    },
    workflowWatches: new MemoryWorkflowWatchStore(),
  });
  const follows = new CompanyListeners({
    manager,
    followers,
    membership: o.membership ?? new Membership({ claim: 'company_ids' }),
    registry,
    bus: new MemoryEventBus(),
    principals: (uid) => principals.get(uid) ?? [],
    hooks,
    instanceId: 'gw-1',
    followerTtlMs: o.followerTtlMs ?? 60_000,
    leaveDelayMs: o.leaveDelayMs,
    stats: new CompanyStats(10),
    logger,
  });
  const heard: GatewayHookEvents['company.follow'][] = [];
  hooks.on('company.follow', (e) => heard.push(e));
  follows.start();
  const member = (uid: string, companies: string[]) => toPrincipal(uid, false, undefined, { company_ids: companies });
  const setCompany = async (uid: string, company: string | null) => {
    const doc = emptyUserRegistry(uid, true);
    await registry.putUnified(uid, { ...doc, companies: { current_company_id: company } }, 60);
  };
  return { hooks, follows, followers, principals, heard, member, setCompany, manager };
}

describe('CompanyListeners', () => {
  it('follows the registry company of a member, keeps it through a replaced socket, leaves with the last session', async () => {
    const t = setup();
    await t.setCompany('u1', 'acme');
    t.principals.set('u1', [t.member('u1', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBe('acme');
    expect(await t.followers.list('acme')).toEqual([{ uid: 'u1', initialized: false }]);
    // The same tab reconnects: the new socket opens before the old one closes.
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    t.hooks.emit('session.close', {
      uid: 'u1',
      sessionId: 's1',
      code: 4008,
      reason: 'replaced',
      type: 'replaced' as never,
      authenticated: true,
    });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBe('acme');
    t.hooks.emit('session.close', {
      uid: 'u1',
      sessionId: 's1',
      code: 1000,
      reason: '',
      type: 'normal' as never,
      authenticated: true,
    });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBeUndefined();
    expect(await t.followers.list('acme')).toEqual([]);
    expect(t.heard.map((h) => [h.company_id, h.reason])).toEqual([
      ['acme', 'member'],
      [null, 'left'],
    ]);
    await t.follows.close();
    await t.manager.flush();
  });

  it('refuses a non-member and unfollows at a token refresh without the claim', async () => {
    const t = setup();
    await t.setCompany('u2', 'globex');
    t.principals.set('u2', [t.member('u2', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u2', sessionId: 's2', service: false });
    await t.follows.idle();
    expect(t.follows.following('u2')).toBeUndefined();
    expect(t.heard.at(-1)).toMatchObject({ company_id: null, requested: 'globex', reason: 'not_member' });
    await t.follows.registryChanged('u2', 'acme');
    expect(t.follows.following('u2')).toBe('acme');
    t.principals.set('u2', [t.member('u2', [])]);
    t.hooks.emit('session.token_refreshed', { uid: 'u2', sessionId: 's2' });
    await t.follows.idle();
    expect(t.follows.following('u2')).toBeUndefined();
    expect(await t.followers.list('acme')).toEqual([]);
    expect(t.follows.stats().refused).toEqual({ not_member: 2 });
    await t.follows.close();
    await t.manager.flush();
  });

  it('keeps a follow through a membership that cannot be read (membership_error), and stops it on a real refusal', async () => {
    const claims = new Membership({ claim: 'company_ids' });
    let readable = true;
    const membership = {
      check: (principal: Principal, company: string) =>
        readable
          ? claims.check(principal, company)
          : Promise.resolve({ member: false as const, reason: 'membership_error' as const, message: 'Firestore away' }),
    } as unknown as Membership;
    const t = setup({ membership });
    await t.setCompany('u1', 'acme');
    t.principals.set('u1', [t.member('u1', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBe('acme');
    readable = false;
    t.hooks.emit('session.token_refreshed', { uid: 'u1', sessionId: 's1' });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBe('acme');
    expect((await t.followers.list('acme')).map((f) => f.uid)).toEqual(['u1']);
    expect(t.heard.at(-1)).toMatchObject({ company_id: 'acme', reason: 'membership_error' });
    readable = true;
    t.principals.set('u1', [t.member('u1', [])]);
    t.hooks.emit('session.token_refreshed', { uid: 'u1', sessionId: 's1' });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBeUndefined();
    await t.follows.close();
    await t.manager.flush();
  });

  it('a follow whose follower entry could not be written (Redis away) is made at the next decision', async () => {
    const inner = new MemoryCompanyFollowers();
    let failing = true;
    const followers = new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'add' && failing) return () => Promise.reject(new Error('Connection is closed.'));
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as CompanyFollowers;
    const t = setup({ followers });
    await t.setCompany('u1', 'acme');
    t.principals.set('u1', [t.member('u1', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBeUndefined();
    failing = false;
    t.hooks.emit('session.token_refreshed', { uid: 'u1', sessionId: 's1' });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBe('acme');
    expect((await inner.list('acme')).map((f) => f.uid)).toEqual(['u1']);
    await t.follows.close();
    await t.manager.flush();
  });

  it('never re-creates a follower entry that was removed while the periodic refresh was in flight', async () => {
    // The entries never expire (fixed clock): only the follow decisions add or remove them.
    const inner = new MemoryCompanyFollowers(() => 0);
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let refreshing = () => {};
    const refreshSeen = new Promise<void>((r) => {
      refreshing = r;
    });
    let adds = 0;
    const held = async () => {
      refreshing();
      await gate;
    };
    const followers: CompanyFollowers = {
      add: async (c, i, uids, ttl) => {
        // The follow's own add goes through; any later one is a refresh and is held.
        if (++adds > 1) await held();
        return inner.add(c, i, uids, ttl);
      },
      refresh: async (c, i, uids, ttl) => {
        await held();
        return inner.refresh(c, i, uids, ttl);
      },
      remove: (c, i, u) => inner.remove(c, i, u),
      list: (c) => inner.list(c),
      initialized: (c, u) => inner.initialized(c, u),
    };
    const t = setup({ followers, followerTtlMs: 30 });
    await t.setCompany('u1', 'acme');
    t.principals.set('u1', [t.member('u1', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    await t.follows.idle();
    await inner.initialized('acme', ['u1']);
    expect(t.follows.following('u1')).toBe('acme');
    await refreshSeen; // a refresh read u1 -> acme and waits on Redis
    t.principals.set('u1', [t.member('u1', [])]);
    t.hooks.emit('session.token_refreshed', { uid: 'u1', sessionId: 's1' });
    await t.follows.idle();
    expect(t.follows.following('u1')).toBeUndefined();
    expect(await inner.list('acme')).toEqual([]);
    release();
    await t.follows.close(); // stops the timer; waits for what is queued
    await new Promise((r) => setImmediate(r));
    // The ex-member is not a follower again (the holder would send them the company's state).
    expect(await inner.list('acme')).toEqual([]);
    await t.manager.flush();
  });

  it('adds back the entry of a user who still follows when the refresh finds it missing', async () => {
    const inner = new MemoryCompanyFollowers(() => 0);
    let restored = () => {};
    const restoredSeen = new Promise<void>((r) => {
      restored = r;
    });
    let adds = 0;
    const followers: CompanyFollowers = {
      add: async (c, i, uids, ttl) => {
        await inner.add(c, i, uids, ttl);
        if (++adds === 2) restored();
      },
      refresh: (c, i, uids, ttl) => inner.refresh(c, i, uids, ttl),
      remove: (c, i, u) => inner.remove(c, i, u),
      list: (c) => inner.list(c),
      initialized: (c, u) => inner.initialized(c, u),
    };
    const t = setup({ followers, followerTtlMs: 30 });
    await t.setCompany('u1', 'acme');
    t.principals.set('u1', [t.member('u1', ['acme'])]);
    t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
    await t.follows.idle();
    await inner.remove('acme', 'gw-1', 'u1'); // lost behind the instance's back (e.g. Redis data lost)
    await restoredSeen;
    await t.follows.idle();
    expect(await inner.list('acme')).toEqual([{ uid: 'u1', initialized: false }]);
    await t.follows.close();
    await t.manager.flush();
  });

  it('keeps following for the leave delay after the last session closed, so a reconnect within it misses nothing', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const t = setup({ leaveDelayMs: 5_000 });
      const close = () =>
        t.hooks.emit('session.close', {
          uid: 'u1',
          sessionId: 's1',
          code: 1006,
          reason: '',
          type: 'normal' as never,
          authenticated: true,
        });
      await t.setCompany('u1', 'acme');
      t.principals.set('u1', [t.member('u1', ['acme'])]);
      t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
      await t.follows.idle();
      // The socket drops: the entry stays, so the holder keeps appending to u1's stream.
      t.principals.set('u1', []);
      close();
      jest.advanceTimersByTime(4_999);
      await t.follows.idle();
      expect(t.follows.following('u1')).toBe('acme');
      expect(await t.followers.list('acme')).toEqual([{ uid: 'u1', initialized: false }]);
      // The tab is back within the delay: nothing stopped, nothing to re-send.
      t.principals.set('u1', [t.member('u1', ['acme'])]);
      t.hooks.emit('session.open', { uid: 'u1', sessionId: 's1', service: false });
      await t.follows.idle();
      jest.advanceTimersByTime(10_000);
      await t.follows.idle();
      expect(t.follows.following('u1')).toBe('acme');
      expect(t.heard.map((h) => h.reason)).toEqual(['member']);
      // Gone for longer than the delay: it leaves.
      t.principals.set('u1', []);
      close();
      jest.advanceTimersByTime(5_000);
      await t.follows.idle();
      expect(t.follows.following('u1')).toBeUndefined();
      expect(await t.followers.list('acme')).toEqual([]);
      expect(t.heard.map((h) => h.reason)).toEqual(['member', 'left']);
      await t.follows.close();
      await t.manager.flush();
    } finally {
      jest.useRealTimers();
    }
  });
});
