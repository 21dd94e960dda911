import type { AppEvent } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import fc from 'fast-check';
import { MemoryDetachDecision } from '../fleet/detach/memory-detach-decision';
import { MemoryLease } from '../fleet/lease/memory-lease';
import { MemoryPresence } from '../fleet/presence/memory-presence';
import { MemoryRegistryStore } from '../fleet/registry/memory-registry-store';
import { type GatewayHookEvents, Hooks } from '../hooks';
import type { Logger } from '../logger';
import { recordingLogger } from '../testing/recording-logger';
import { ListenerRefusal, type ListenerSource } from './listener-source';
import { ListenersManager, type ListenersManagerOptions } from './listeners-manager';
import { MemoryWorkflowWatchStore } from './workflow-watch-store';

/** A source that counts live attachments and catches overlapping attach/detach. */
function countingSource(opDelayMs: number) {
  const live = new Map<string, number>();
  let inFlight = new Map<string, number>();
  let overlaps = 0;
  const enter = (uid: string) => {
    const n = (inFlight.get(uid) ?? 0) + 1;
    inFlight.set(uid, n);
    if (n > 1) overlaps++;
  };
  const leave = (uid: string) => inFlight.set(uid, (inFlight.get(uid) ?? 1) - 1);
  const source: ListenerSource = {
    name: 'counting',
    async attach(uid: string, _emit: (e: AppEvent) => void) {
      enter(uid);
      await new Promise((r) => setTimeout(r, opDelayMs));
      live.set(uid, (live.get(uid) ?? 0) + 1);
      leave(uid);
      return async () => {
        enter(uid);
        await new Promise((r) => setTimeout(r, opDelayMs));
        live.set(uid, (live.get(uid) ?? 0) - 1);
        leave(uid);
      };
    },
  };
  return {
    source,
    live,
    get overlaps() {
      return overlaps;
    },
    reset() {
      live.clear();
      inFlight = new Map();
      overlaps = 0;
    },
  };
}

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };

type Op = { kind: 'open'; user: number } | { kind: 'close'; user: number } | { kind: 'wait'; ms: number };

describe('ListenersManager', () => {
  it('ends every connect/disconnect storm with one listener set per connected user and no orphan timers', async () => {
    const ops = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('open' as const), user: fc.integer({ min: 0, max: 2 }) }),
        fc.record({ kind: fc.constant('close' as const), user: fc.integer({ min: 0, max: 2 }) }),
        fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 12 }) }),
      ),
      { minLength: 1, maxLength: 40 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (script: Op[]) => {
        const counting = countingSource(2);
        const cleaned: string[] = [];
        const manager = new ListenersManager({
          lease: new MemoryLease(),
          workflowWatches: new MemoryWorkflowWatchStore(),
          sources: [counting.source],
          detachDelayMs: 8,
          logger: silent,
          cleanupRegistry: async (uid) => {
            cleaned.push(uid);
            return 'cleaned' as const;
          },
          emit: () => {},
        });
        const open = new Map<string, number>();
        let seq = 0;
        for (const op of script) {
          if (op.kind === 'wait') {
            await new Promise((r) => setTimeout(r, op.ms));
            continue;
          }
          const uid = `u${op.user}`;
          if (op.kind === 'open') {
            open.set(uid, (open.get(uid) ?? 0) + 1);
            void manager.sessionOpened(uid, `s${seq++}`);
          } else if ((open.get(uid) ?? 0) > 0) {
            open.set(uid, (open.get(uid) ?? 0) - 1);
            manager.sessionClosed(uid, `s${seq++}`);
          }
        }
        // Let every timer fire and every queued step run.
        await new Promise((r) => setTimeout(r, 30));
        await manager.idle();

        expect(counting.overlaps).toBe(0);
        for (const user of [0, 1, 2]) {
          const uid = `u${user}`;
          const connected = (open.get(uid) ?? 0) > 0;
          expect(counting.live.get(uid) ?? 0).toBe(connected ? 1 : 0);
          expect(manager.isAttached(uid)).toBe(connected);
        }
        expect(manager.pendingDetaches()).toEqual([]);
        const c = manager.counters();
        expect(c.attached).toBe([...open.values()].filter((n) => n > 0).length);
        expect(c.pendingDetaches).toBe(0);
        expect(c.workflows).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('a session opening while the detach step waits its turn wins: nothing is released', async () => {
    // The attach is held open until the test lets it finish, so the order below holds under any load.
    let finishAttach = () => {};
    const attachHeld = new Promise<void>((resolve) => {
      finishAttach = resolve;
    });
    let live = 0;
    let attaching = false;
    const cleaned: string[] = [];
    const manager = new ListenersManager({
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [
        {
          name: 'gated',
          async attach() {
            attaching = true;
            await attachHeld;
            live++;
            return async () => {
              live--;
            };
          },
        },
      ],
      detachDelayMs: 5,
      logger: silent,
      cleanupRegistry: async (uid) => {
        cleaned.push(uid);
        return 'cleaned' as const;
      },
      emit: () => {},
    });
    void manager.sessionOpened('u', 's1');
    await waitFor(() => attaching, 'the attach to start', 2_000);
    manager.sessionClosed('u', 's1'); // the detach timer starts
    // The timer fires while the attach still runs: the detach is queued behind it.
    await waitFor(() => manager.pendingDetaches().length === 0, 'the detach timer to fire', 2_000);
    void manager.sessionOpened('u', 's2'); // before the queued detach runs
    finishAttach();
    await manager.idle();
    expect(live).toBe(1);
    expect(cleaned).toEqual([]);
    expect(manager.counters()).toMatchObject({ attached: 1, detachCancelled: 1, detachExecuted: 0 });
  });

  it('does not try again, on a timer, a user a source refuses for good (their id); a passing failure it does', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const errors: string[] = [];
      const logger: Logger = { ...silent, error: (_event, fields) => errors.push(String(fields?.uid)) };
      const tries = new Map<string, number>();
      const lease = new MemoryLease();
      const manager = new ListenersManager({
        lease,
        workflowWatches: new MemoryWorkflowWatchStore(),
        sources: [
          {
            name: 'picky',
            async attach(uid) {
              tries.set(uid, (tries.get(uid) ?? 0) + 1);
              if (uid === 'a/b') throw new ListenerRefusal(`user id ${uid} contains '/'`);
              throw new Error('firestore away');
            },
          },
        ],
        leaseTtlMs: 300,
        detachDelayMs: 5,
        logger,
        cleanupRegistry: async () => 'cleaned' as const,
        emit: () => {},
      });
      await manager.sessionOpened('a/b', 's1');
      await manager.sessionOpened('away', 's2');
      for (let i = 0; i < 10; i++) {
        await jest.advanceTimersByTimeAsync(300);
        await manager.idle();
      }
      expect(tries.get('a/b')).toBe(1);
      expect(errors.filter((uid) => uid === 'a/b')).toHaveLength(1);
      expect(tries.get('away')).toBeGreaterThan(5);
      // The refused user's lease went back: nothing holds it.
      expect(await lease.acquire('a/b', 'gw-other', 300)).toMatchObject({ token: expect.anything() });
      manager.sessionClosed('a/b', 's1');
      manager.sessionClosed('away', 's2');
      await jest.advanceTimersByTimeAsync(10);
      await manager.flush();
    } finally {
      jest.useRealTimers();
    }
  });

  it('lets go of the listeners once the lease would have expired, even while a renewal hangs (a Redis failover)', async () => {
    const hooks = new Hooks<GatewayHookEvents>();
    const lost: string[] = [];
    hooks.on('lease.lost', (e) => lost.push(e.reason));
    let live = 0;
    // Renewals that never answer: a cluster client queues commands through a failover.
    class HangingLease extends MemoryLease {
      override renew(): Promise<boolean> {
        return new Promise<boolean>(() => {});
      }
    }
    const manager = new ListenersManager({
      lease: new HangingLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [
        {
          name: 'live',
          async attach() {
            live++;
            return async () => {
              live--;
            };
          },
        },
      ],
      leaseTtlMs: 300,
      detachDelayMs: 5,
      logger: silent,
      hooks,
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
    });
    await manager.sessionOpened('u', 's1');
    expect(live).toBe(1);
    await waitFor(() => lost[0], 'the lease given up', 5_000);
    expect(lost[0]).toBe('renew_failed');
    expect(live).toBe(0);
    manager.sessionClosed('u', 's1');
    await manager.flush();
  });

  it('tells its hooks each moment of a departure and a return, in order, with what tells them apart', async () => {
    const hooks = new Hooks<GatewayHookEvents>();
    const seen: [string, unknown][] = [];
    for (const name of [
      'detach.delay_start',
      'detach.cancelled',
      'detach.executing',
      'detach.complete',
      'registry.cleanup',
      'lease.acquired',
      'lease.released',
      'listener.attached',
      'listener.detached',
    ] as const) {
      hooks.on(name, (e) => seen.push([name, e]));
    }
    let failures = 1;
    const manager = new ListenersManager({
      sources: [countingSource(0).source],
      detachDelayMs: 5,
      logger: silent,
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      hooks,
      cleanupRetryMs: 1,
      cleanupRegistry: async () => {
        if (failures-- > 0) throw new Error('registry away');
        return 'cleaned' as const;
      },
      emit: () => {},
    });
    await manager.sessionOpened('u', 's1');
    manager.sessionClosed('u', 's1');
    await manager.sessionOpened('u', 's2'); // back within the delay
    manager.sessionClosed('u', 's2');
    await hooks.next('detach.complete', (e) => e.uid === 'u', { timeoutMs: 5_000 });
    await manager.idle();
    expect(seen).toEqual([
      ['lease.acquired', { uid: 'u', token: expect.anything(), listeners: 1 }],
      ['listener.attached', { uid: 'u', token: expect.anything(), listeners: 1 }],
      ['detach.delay_start', { uid: 'u', sessionId: 's1', delayMs: 5 }],
      ['detach.cancelled', { uid: 'u', sessionId: 's2' }],
      ['detach.delay_start', { uid: 'u', sessionId: 's2', delayMs: 5 }],
      ['detach.executing', { uid: 'u', listeners: 1 }],
      ['listener.detached', { uid: 'u', listeners: 1, handover: false }],
      ['lease.released', { uid: 'u', token: expect.anything(), handover: false }],
      ['registry.cleanup', { uid: 'u', phase: 'start', attempt: 1 }],
      ['registry.cleanup', { uid: 'u', phase: 'error', attempt: 1, error: 'Error: registry away' }],
      ['registry.cleanup', { uid: 'u', phase: 'start', attempt: 2 }],
      ['registry.cleanup', { uid: 'u', phase: 'success', attempt: 2, outcome: 'cleaned' }],
      ['detach.complete', { uid: 'u' }],
    ]);
    expect(manager.counters()).toMatchObject({ detachCancelled: 1, detachExecuted: 1, cleanups: 1, cleanupErrors: 1 });
  });

  /** User u opened a session and left; resolves once the departure is decided (its detach complete). */
  async function departed(
    options: Partial<ListenersManagerOptions> & Pick<ListenersManagerOptions, 'cleanupRegistry'>,
    hooks = new Hooks<GatewayHookEvents>(),
  ) {
    const manager = new ListenersManager({
      sources: [countingSource(0).source],
      detachDelayMs: 5,
      logger: silent,
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      hooks,
      cleanupRetryMs: 1,
      emit: () => {},
      ...options,
    });
    await manager.sessionOpened('u', 's1');
    manager.sessionClosed('u', 's1');
    await hooks.next('detach.complete', (e) => e.uid === 'u', { timeoutMs: 5_000 });
    await manager.idle();
    return manager;
  }

  it('cleans up when the answer to its winning claim was lost: asking again, the winner has it still', async () => {
    const decision = new MemoryDetachDecision(new MemoryPresence(), new MemoryRegistryStore());
    let lost = 1;
    const manager = await departed({
      // Redis took the claim; its answer went with the connection.
      claimCleanup: async (uid) => {
        const claim = await decision.claim(uid, 'gw-a');
        if (lost-- > 0) throw new Error('Connection is closed.');
        return claim;
      },
      cleanupRegistry: async () => 'cleaned' as const,
    });
    expect(manager.counters()).toMatchObject({ cleanups: 1, cleanupsSkipped: 0, cleanupErrors: 1 });
  });

  it('counts a cleanup that found the user back elsewhere (present) as skipped, not as run', async () => {
    const hooks = new Hooks<GatewayHookEvents>();
    const cleanups: Array<[string, unknown]> = [];
    hooks.on('registry.cleanup', (e) => cleanups.push([e.phase, 'outcome' in e ? e.outcome : undefined]));
    const manager = await departed({ cleanupRegistry: async () => 'present' as const }, hooks);
    expect(cleanups).toEqual([
      ['start', undefined],
      ['success', 'present'],
    ]);
    expect(manager.counters()).toMatchObject({ cleanups: 0, cleanupsSkipped: 1 });
  });

  it('tells its hooks a skipped cleanup, and a detach cancelled by a session elsewhere in the fleet', async () => {
    const hooks = new Hooks<GatewayHookEvents>();
    const seen: [string, unknown][] = [];
    hooks.on('detach.cancelled', (e) => seen.push(['detach.cancelled', e]));
    hooks.on('registry.cleanup', (e) => seen.push(['registry.cleanup', e]));
    let elsewhere = true;
    const manager = new ListenersManager({
      sources: [],
      detachDelayMs: 1,
      logger: silent,
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      hooks,
      presentElsewhere: async () => elsewhere,
      claimCleanup: async () => 'taken',
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
    });
    await manager.sessionOpened('u', 's1');
    manager.sessionClosed('u', 's1');
    await hooks.next('detach.cancelled', () => true, { timeoutMs: 5_000 });
    elsewhere = false;
    await manager.sessionOpened('u', 's2');
    manager.sessionClosed('u', 's2');
    await hooks.next('registry.cleanup', (e) => e.phase === 'skipped', { timeoutMs: 5_000 });
    await manager.idle();
    expect(seen).toEqual([
      ['detach.cancelled', { uid: 'u', elsewhere: true }],
      ['registry.cleanup', { uid: 'u', phase: 'skipped', reason: 'taken' }],
    ]);
    expect(manager.counters()).toMatchObject({ detachCancelled: 1, detachExecuted: 1, cleanupsSkipped: 1 });
  });

  it('flush() runs pending detaches at once (shutdown)', async () => {
    const counting = countingSource(1);
    const cleaned: string[] = [];
    const manager = new ListenersManager({
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [counting.source],
      detachDelayMs: 60_000,
      logger: silent,
      cleanupRegistry: async (uid) => {
        cleaned.push(uid);
        return 'cleaned' as const;
      },
      emit: () => {},
    });
    await manager.sessionOpened('a', 's1');
    await manager.sessionOpened('b', 's2');
    manager.sessionClosed('a', 's1');
    manager.sessionClosed('b', 's2');
    expect(manager.pendingDetaches().sort()).toEqual(['a', 'b']);
    await manager.flush();
    expect(cleaned.sort()).toEqual(['a', 'b']);
    expect(manager.pendingDetaches()).toEqual([]);
    expect(counting.live.get('a')).toBe(0);
  });

  it("merges its sources' figures, the listeners failing now by kind included", () => {
    const figures = (failing?: Record<string, number>) => ({
      open: 1,
      reads: { total: 0, by_listener: {}, users_tracked: 0, top_readers: [] },
      events: {},
      deduplicated: {},
      errors: { unavailable: 1 },
      restarts: 0,
      ...(failing ? { failing } : {}),
    });
    const withStats = (name: string, failing?: Record<string, number>): ListenerSource => ({
      name,
      attach: async () => async () => {},
      stats: () => figures(failing),
    });
    const manager = (sources: ListenerSource[]) =>
      new ListenersManager({
        lease: new MemoryLease(),
        workflowWatches: new MemoryWorkflowWatchStore(),
        sources,
        detachDelayMs: 0,
        logger: silent,
        cleanupRegistry: async () => 'cleaned' as const,
        emit: () => {},
      });
    const merged = manager([
      withStats('a', { unavailable: 1 }),
      withStats('b', { unavailable: 2, emit: 1 }),
      withStats('c'),
    ]).sourceStats();
    expect(merged).toMatchObject({ open: 3, errors: { unavailable: 3 }, failing: { unavailable: 3, emit: 1 } });
    expect(manager([withStats('a'), withStats('b')]).sourceStats()).not.toHaveProperty('failing');
  });

  it('a failing source is released and retried on the next session, never crashing', async () => {
    let fail = true;
    const errors: unknown[] = [];
    const manager = new ListenersManager({
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [
        {
          name: 'flaky',
          async attach() {
            if (fail) throw new Error('firestore unavailable');
            return async () => {};
          },
        },
      ],
      detachDelayMs: 5,
      logger: { ...silent, error: (_e, f) => errors.push(f) },
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
    });
    await manager.sessionOpened('u', 's1');
    expect(manager.isAttached('u')).toBe(false);
    expect(errors).toHaveLength(1);
    fail = false;
    await manager.sessionOpened('u', 's2');
    expect(manager.isAttached('u')).toBe(true);
  });
});

describe('ListenersManager while the chain is busy', () => {
  it('keeps one user state while steps are queued, so a late session never races a queued detach', async () => {
    const counting = countingSource(1);
    const cleaned: string[] = [];
    let failures = 1;
    const manager = new ListenersManager({
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [counting.source],
      detachDelayMs: 10,
      cleanupRetryMs: 80,
      logger: silent,
      cleanupRegistry: async (uid) => {
        if (failures-- > 0) throw new Error('registry down'); // keeps the chain busy ~80 ms
        cleaned.push(uid);
        return 'cleaned' as const;
      },
      emit: () => {},
    });
    await manager.sessionOpened('u', 's1');
    manager.sessionClosed('u', 's1');
    await new Promise((r) => setTimeout(r, 20)); // the detach runs and its cleanup is retrying
    // Open and close at once: the attach step is queued behind the retry and will find no session.
    void manager.sessionOpened('u', 's2');
    manager.sessionClosed('u', 's2');
    await new Promise((r) => setTimeout(r, 20)); // the new timer fires: a detach is queued too
    void manager.sessionOpened('u', 's3'); // must join the same queue, not start a second one
    await manager.idle();
    await new Promise((r) => setTimeout(r, 30));
    await manager.idle();
    expect(counting.overlaps).toBe(0);
    expect(counting.live.get('u')).toBe(1);
    expect(manager.isAttached('u')).toBe(true);
    expect(manager.counters()).toMatchObject({ attached: 1, pendingDetaches: 0 });
  });
});

describe('ListenersManager: an attach slower than the lease', () => {
  const TTL = 300;

  /**
   * Two managers (gw-a, gw-b) on one memory lease; gw-a's source attaches only when `finish` is
   * called (a company listener reading a whole collection on a slow Firestore), gw-b's at once.
   * `most`: the most instances that reported the user's listeners attached at one time.
   */
  function twoInstances(lease: MemoryLease) {
    let finish!: () => void;
    const slow = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const holding = new Set<string>();
    const seen = { most: 0, released: [] as string[], published: [] as string[], refused: [] as string[] };
    const make = (instanceId: string, source: ListenerSource) => {
      const hooks = new Hooks<GatewayHookEvents>();
      hooks.on('listener.attached', () => {
        holding.add(instanceId);
        seen.most = Math.max(seen.most, holding.size);
      });
      hooks.on('listener.detached', () => holding.delete(instanceId));
      return new ListenersManager({
        instanceId,
        lease,
        workflowWatches: new MemoryWorkflowWatchStore(),
        sources: [source],
        leaseTtlMs: TTL,
        detachDelayMs: 5,
        logger: silent,
        hooks,
        cleanupRegistry: async () => 'cleaned' as const,
        emit: (_uid, event) => void seen.published.push(`${instanceId} ${event.event}`),
      });
    };
    const a = make('gw-a', {
      name: 'slow',
      async attach(_uid, emit) {
        await slow;
        // Its first snapshot, read once the attach is done: published only under a lease still held.
        await Promise.resolve(emit({ event: 'listener.change', data: {} } as AppEvent)).catch((error: unknown) =>
          seen.refused.push(String((error as { code?: unknown }).code)),
        );
        return async () => void seen.released.push('gw-a');
      },
    });
    const b = make('gw-b', { name: 'fast', attach: async () => async () => {} });
    return { a, b, seen, finish, holding };
  }

  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  it('keeps renewing the lease it took while the listeners attach: the other instance waits, never holds beside it', async () => {
    const lease = new MemoryLease();
    const { a, b, seen, finish } = twoInstances(lease);
    const attaching = a.sessionOpened('u', 's1');
    await jest.advanceTimersByTimeAsync(0);
    await b.sessionOpened('u', 's2');
    expect(b.counters().standby).toBe(1);
    // Past twice the TTL, polled by gw-b every quarter of it.
    for (let i = 0; i < 10; i++) await jest.advanceTimersByTimeAsync(TTL / 4);
    expect((await lease.holder('u'))?.owner).toBe('gw-a');
    finish();
    await attaching;
    for (let i = 0; i < 8; i++) await jest.advanceTimersByTimeAsync(TTL / 4);
    expect(seen.most).toBe(1);
    expect([a.isAttached('u'), b.isAttached('u')]).toEqual([true, false]);
    expect(seen.published).toEqual(['gw-a listener.change']);
    expect((await lease.holder('u'))?.owner).toBe('gw-a');
    a.sessionClosed('u', 's1');
    b.sessionClosed('u', 's2');
    await Promise.all([a.flush(), b.flush()]);
  });

  it('stops renewing an attach that does not end (a read that hangs): the other instance takes the user over', async () => {
    const lease = new MemoryLease();
    const { a, b, seen, finish } = twoInstances(lease);
    const attaching = a.sessionOpened('u', 's1');
    await jest.advanceTimersByTimeAsync(0);
    await b.sessionOpened('u', 's2');
    // Four TTLs of renewals, then the lease lapses and gw-b's next poll takes it.
    for (let i = 0; i < 24 && !b.isAttached('u'); i++) await jest.advanceTimersByTimeAsync(TTL / 4);
    expect(b.isAttached('u')).toBe(true);
    expect((await lease.holder('u'))?.owner).toBe('gw-b');
    finish();
    await attaching;
    await jest.advanceTimersByTimeAsync(0);
    expect(seen.most).toBe(1);
    expect(a.isAttached('u')).toBe(false);
    expect(seen.refused).toEqual(['fenced']);
    a.sessionClosed('u', 's1');
    b.sessionClosed('u', 's2');
    await Promise.all([a.flush(), b.flush()]);
  });

  it('lets go, never reporting the listeners attached nor publishing, when the lease could have expired during the attach', async () => {
    // gw-a cannot reach Redis once it holds the lease: its renewals fail, and gw-b takes the lease after the TTL.
    class CutOff extends MemoryLease {
      override renew(key: string, owner: string, token: number, ttlMs: number): Promise<boolean> {
        if (owner === 'gw-a') return Promise.reject(new Error('connect ECONNREFUSED'));
        return super.renew(key, owner, token, ttlMs);
      }
    }
    const lease = new CutOff();
    const { a, b, seen, finish } = twoInstances(lease);
    const attaching = a.sessionOpened('u', 's1');
    await jest.advanceTimersByTimeAsync(0);
    await b.sessionOpened('u', 's2');
    for (let i = 0; i < 10; i++) await jest.advanceTimersByTimeAsync(TTL / 4);
    expect(b.isAttached('u')).toBe(true);
    finish();
    await attaching;
    await jest.advanceTimersByTimeAsync(0);
    expect(seen.most).toBe(1);
    expect(a.isAttached('u')).toBe(false);
    // What it attached went back at once, and its first event was refused as fenced (the source stops).
    expect(seen.released).toEqual(['gw-a']);
    expect(seen.refused).toEqual(['fenced']);
    expect(seen.published).toEqual([]);
    expect((await lease.holder('u'))?.owner).toBe('gw-b');
    a.sessionClosed('u', 's1');
    b.sessionClosed('u', 's2');
    await Promise.all([a.flush(), b.flush()]);
  });
});

describe('ListenersManager while Redis or Firestore is away', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  /** Three users' sessions on a manager; the clock then moves 10.5 s, a quarter of the TTL at a time. */
  async function outage(options: Partial<ListenersManagerOptions>, ttl: number) {
    const { logger, events } = recordingLogger();
    const manager = new ListenersManager({
      lease: new MemoryLease(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [{ name: 'live', attach: async () => async () => {} }],
      leaseTtlMs: ttl,
      detachDelayMs: 5,
      logger,
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
      ...options,
    });
    for (const uid of ['u1', 'u2', 'u3']) await manager.sessionOpened(uid, `s-${uid}`);
    for (let at = 0; at < 10_500; at += ttl / 4) await jest.advanceTimersByTimeAsync(ttl / 4);
    return { manager, events };
  }

  /**
   * The lines of one event at `level`: their `suppressed`, and the lines at debug before each
   * since the one before (what `suppressed` should say); `debug`: all the lines at debug.
   */
  function summed(lines: ReturnType<ReturnType<typeof recordingLogger>['events']>, level: string) {
    const logged: unknown[] = [];
    const between: number[] = [];
    let debug = 0;
    for (const [l, , f] of lines) {
      if (l === 'debug') debug++;
      else if (l === level) {
        logged.push(f.suppressed);
        between.push(debug - between.reduce((a, n) => a + n, 0));
      }
    }
    return { logged, between, debug };
  }

  it("throttles each line on its own: a detach failing both the listeners' and the lease's release logs both", async () => {
    class Away extends MemoryLease {
      override release(): Promise<boolean> {
        return Promise.reject(new Error('Connection is closed.'));
      }
    }
    const { logger, events } = recordingLogger();
    const manager = new ListenersManager({
      lease: new Away(),
      workflowWatches: new MemoryWorkflowWatchStore(),
      sources: [
        { name: 'away', attach: async () => () => Promise.reject(new Error('14 UNAVAILABLE: Firestore away')) },
      ],
      detachDelayMs: 0,
      logger,
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
    });
    await manager.sessionOpened('u1', 's1');
    manager.sessionClosed('u1', 's1');
    await manager.flush();
    expect(events('user_attach_error').map(([level]) => level)).toEqual(['warn']);
    expect(events('listener_lease_error').map(([level, , f]) => [level, f.op])).toEqual([['warn', 'release']]);
  });

  it('logs a failing lease acquire once per 10 s, with how many it left out (at debug), not per user per poll', async () => {
    let calls = 0;
    class Away extends MemoryLease {
      override acquire(): Promise<{ token: number } | undefined> {
        calls++;
        return Promise.reject(new Error('Connection is closed.'));
      }
    }
    const { manager, events } = await outage({ lease: new Away() }, 4_000);
    const { logged, between, debug } = summed(events('listener_lease_error'), 'warn');
    expect(calls).toBeGreaterThan(20);
    expect(logged).toHaveLength(2);
    expect(logged).toEqual(between);
    // Every failure is in some line: logged, or counted in the next one.
    expect(logged.length + debug).toBe(calls);
    expect(events('listener_lease_error').every(([, , f]) => f.op === 'acquire')).toBe(true);
    for (const uid of ['u1', 'u2', 'u3']) manager.sessionClosed(uid, `s-${uid}`);
    await manager.flush();
  });

  it('logs a failing attach at error once per 10 s, with how many it left out (at debug), not per user per retry', async () => {
    let calls = 0;
    const failing: ListenerSource = {
      name: 'away',
      attach: async () => {
        calls++;
        throw new Error('14 UNAVAILABLE: Firestore away');
      },
    };
    const { manager, events } = await outage({ sources: [failing] }, 3_000);
    const { logged, between, debug } = summed(events('user_attach_error'), 'error');
    expect(calls).toBeGreaterThan(20);
    expect(logged).toHaveLength(2);
    expect(logged).toEqual(between);
    expect(logged.length + debug).toBe(calls);
    for (const uid of ['u1', 'u2', 'u3']) manager.sessionClosed(uid, `s-${uid}`);
    await manager.flush();
  });
});
