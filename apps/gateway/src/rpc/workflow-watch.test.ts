import type { AppEvent } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Query } from 'firebase-admin/firestore';
import { MemoryLease } from '../fleet/lease/memory-lease';
import { MemoryRegistryStore } from '../fleet/registry/memory-registry-store';
import { WatchedQuery } from '../listeners/firestore/watched-query';
import type { Detach, WorkflowSource } from '../listeners/listener-source';
import { ListenersManager } from '../listeners/listeners-manager';
import { MemoryWorkflowWatchStore } from '../listeners/workflow-watch-store';
import type { Logger } from '../logger';
import type { RpcContext } from './dispatcher';
import { createHandlers } from './handlers';
import { RpcError } from './rpc-error';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/**
 * A job's listener as the test drives it: `open()` publishes its first snapshot, `fail(kind)`
 * makes it fail (it stays failing, retrying, until it opens), nothing leaves it opening.
 */
interface FakeListener {
  open(): void;
  fail(kind: string): void;
  detached: boolean;
}

/** A workflow source whose listeners do what the test says; every job is the user's. */
function fakeWorkflowSource(onAttach: (job: string, listener: FakeListener) => void): WorkflowSource {
  return {
    owner: async () => 'u1',
    async attach(_uid, jobId) {
      let opened!: () => void;
      let failing: string | undefined;
      const listener: FakeListener = {
        open: () => {
          failing = undefined;
          opened();
        },
        fail: (kind) => {
          failing = kind;
        },
        detached: false,
      };
      const detach: Detach = async () => {
        listener.detached = true;
        opened();
      };
      detach.ready = new Promise<void>((resolve) => {
        opened = resolve;
      });
      detach.failing = () => failing;
      onAttach(jobId, listener);
      return detach;
    },
  };
}

/**
 * A workflow source of real {@link WatchedQuery} listeners on queries that fail at once with `code`
 * (a Firestore refusing them), or when the test calls their `failures` (no `code`); each
 * listener's `listener.status` goes to the user's stream.
 */
function failingQuerySource(
  code: number | undefined,
  attached: WatchedQuery[],
  failures: ((error: Error) => void)[] = [],
): WorkflowSource {
  const query = {
    onSnapshot(_next: unknown, onError: (error: Error) => void) {
      if (code !== undefined) setImmediate(() => onError(Object.assign(new Error(`${code} refused`), { code })));
      else failures.push(onError);
      return () => {};
    },
  } as unknown as Query;
  return {
    owner: async () => 'u1',
    async attach(userId, jobId, emit, context) {
      const watched = new WatchedQuery({
        query,
        userId,
        listener: 'workflow',
        source: 'workflow',
        path: `jobs/${jobId}`,
        ...(context?.holdStatus ? { holdStatus: context.holdStatus } : {}),
        emit,
        mark: undefined,
        saveMark: async () => true,
        onFenced: () => {},
        observer: { reads() {}, events() {}, deduplicated() {}, error() {}, restart() {} },
        logger: silent,
        retryMinMs: 5,
        retryMaxMs: 5,
      });
      watched.start();
      attached.push(watched);
      const detach: Detach = (options) => watched.stop(options);
      detach.ready = watched.published();
      detach.failing = () => watched.failingKind;
      return detach;
    },
  };
}

/** The fleet's watch set on a Redis with hiccups: the next `removeFailures` removes reject, and so do the lists after a remove. */
class HiccupWatchStore extends MemoryWorkflowWatchStore {
  removeFailures = 0;
  listFailuresAfterRemove = 0;
  /** Reads of the set (each lease renewal's sync reads it). */
  lists = 0;
  #listFailures = 0;

  override async remove(userId: string, jobId: string): Promise<boolean> {
    if (this.removeFailures > 0) {
      this.removeFailures--;
      throw new Error('redis away (remove)');
    }
    const removed = await super.remove(userId, jobId);
    this.#listFailures = this.listFailuresAfterRemove;
    return removed;
  }

  override async list(userId: string): Promise<string[]> {
    this.lists++;
    if (this.#listFailures > 0) {
      this.#listFailures--;
      throw new Error('redis away (list)');
    }
    return super.list(userId);
  }
}

/** WORKFLOW.watch as a user's tab calls it, on a manager holding the user's listeners. */
async function setUp(
  onAttach: (job: string, listener: FakeListener) => void,
  options: {
    source?: WorkflowSource;
    events?: AppEvent[];
    watches?: MemoryWorkflowWatchStore;
    leaseTtlMs?: number;
  } = {},
) {
  const watches = options.watches ?? new MemoryWorkflowWatchStore();
  const listeners = new ListenersManager({
    sources: [],
    workflowSource: options.source ?? fakeWorkflowSource(onAttach),
    workflowWatches: watches,
    lease: new MemoryLease(),
    ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}),
    // The wait for the initial state: short, so the slow cases reach it (what is asserted is the answer).
    watchReplyMs: 50,
    detachDelayMs: 0,
    logger: silent,
    cleanupRegistry: async () => 'cleaned' as const,
    emit: (_uid, event) => {
      options.events?.push(event);
    },
  });
  await listeners.sessionOpened('u1', 's1');
  const handlers = createHandlers({
    registry: new MemoryRegistryStore(),
    listeners,
    logger: silent,
    instanceId: 'gw',
    unifiedRegistryEnabled: true,
    unifiedRegistryTtlS: 60,
    registryDebug: false,
    hasLiveSession: () => true,
    isOnline: async () => true,
    publish: async () => undefined,
  });
  const ctx: RpcContext = { principal: { uid: 'u1', service: false }, transport: 'ws' };
  const watch = (job: string) =>
    handlers['WORKFLOW.watch'](ctx, job).then(
      (result) => ({ result }),
      (error: unknown) => ({ error: error instanceof RpcError ? error.toWire() : error }),
    );
  return { listeners, watches, watch };
}

describe('WORKFLOW.watch and its listener opening', () => {
  it('answers unavailable when the listener fails to open within the wait, and takes the watch back', async () => {
    const attached: FakeListener[] = [];
    const { listeners, watches, watch } = await setUp((_job, listener) => {
      attached.push(listener);
      listener.fail('permission_denied');
    });
    const answer = await watch('job-1');
    expect(answer).toEqual({
      error: {
        code: 'unavailable',
        message: 'the workflow listener could not open (permission_denied); retry later',
      },
    });
    // Not watching: out of the user's set, its listener released.
    expect(await watches.list('u1')).toEqual([]);
    expect(attached.map((l) => l.detached)).toEqual([true]);
    expect(listeners.counters().workflows).toBe(0);
  });

  it('answers unavailable when the owner check gets no answer within the wait (Firestore unreachable): nothing attached', async () => {
    const attached: FakeListener[] = [];
    const source = fakeWorkflowSource((_job, listener) => attached.push(listener));
    // The Firestore client retries a read of an unreachable Firestore for longer than an RPC may run.
    source.owner = () => new Promise<string>(() => {});
    const { watches, watch } = await setUp(() => {}, { source });
    expect(await watch('job-1')).toEqual({
      error: { code: 'unavailable', message: 'the workflow store is unavailable; retry later' },
    });
    expect(await watches.list('u1')).toEqual([]);
    expect(attached).toEqual([]);
  });

  it('answers success when the listener opens, and when it failed once but opened within the wait', async () => {
    const { watches, watch } = await setUp((job, listener) => {
      if (job === 'job-retried') {
        listener.fail('unavailable');
        setImmediate(() => listener.open());
      } else listener.open();
    });
    expect(await watch('job-1')).toEqual({ result: { success: true, job_id: 'job-1', watching: true } });
    expect(await watch('job-retried')).toEqual({ result: { success: true, job_id: 'job-retried', watching: true } });
    expect((await watches.list('u1')).sort()).toEqual(['job-1', 'job-retried']);
  });

  it('answers success when the listener is only slow to open (no failure yet): the watch stands', async () => {
    const attached: FakeListener[] = [];
    const { watches, watch } = await setUp((_job, listener) => attached.push(listener));
    expect(await watch('job-slow')).toEqual({ result: { success: true, job_id: 'job-slow', watching: true } });
    expect(await watches.list('u1')).toEqual(['job-slow']);
    expect(attached.map((l) => l.detached)).toEqual([false]);
  });

  it('answers success again for a job already watched, its listener failing since: the watch stands', async () => {
    const attached: FakeListener[] = [];
    const { watches, watch } = await setUp((_job, listener) => attached.push(listener));
    expect(await watch('job-1')).toMatchObject({ result: { watching: true } });
    attached[0]?.fail('unavailable');
    expect(await watch('job-1')).toEqual({ result: { success: true, job_id: 'job-1', watching: true } });
    expect(await watches.list('u1')).toEqual(['job-1']);
    expect(attached.map((l) => l.detached)).toEqual([false]);
  });

  it('answers concurrent watches of one job alike: a second call while the first waits gets its unavailable too', async () => {
    const attached: FakeListener[] = [];
    let second: ReturnType<typeof watch> | undefined;
    const { listeners, watches, watch } = await setUp((job, listener) => {
      attached.push(listener);
      listener.fail('permission_denied');
      // Another tab (or a reconnect's re-watch) asks while the first call waits for the listener.
      if (attached.length === 1) setImmediate(() => (second = watch(job)));
    });
    const unavailable = {
      error: { code: 'unavailable', message: 'the workflow listener could not open (permission_denied); retry later' },
    };
    const first = await watch('job-1');
    await waitFor(() => second !== undefined, 'the second call');
    expect([first, await second]).toEqual([unavailable, unavailable]);
    expect(await watches.list('u1')).toEqual([]);
    expect(attached.map((l) => l.detached)).toEqual([true]);
    expect(listeners.counters().workflows).toBe(0);
    // A later call opens it again, and is answered by what that listener does.
    expect(await watch('job-1')).toEqual(unavailable);
    expect(attached.map((l) => l.detached)).toEqual([true, true]);
  });

  it('answers concurrent watches of one job alike: success for both when the listener opens within the wait', async () => {
    const attached: FakeListener[] = [];
    let second: ReturnType<typeof watch> | undefined;
    const { watches, watch } = await setUp((job, listener) => {
      attached.push(listener);
      setImmediate(() => {
        second = watch(job);
        setImmediate(() => listener.open());
      });
    });
    const success = { result: { success: true, job_id: 'job-1', watching: true } };
    const first = await watch('job-1');
    await waitFor(() => second !== undefined, 'the second call');
    expect([first, await second]).toEqual([success, success]);
    expect(await watches.list('u1')).toEqual(['job-1']);
    expect(attached.map((l) => l.detached)).toEqual([false]);
  });

  it("a watch answered unavailable tells the user's stream nothing, however often the app retries", async () => {
    const events: AppEvent[] = [];
    const attached: WatchedQuery[] = [];
    const { watches, watch } = await setUp(() => {}, { source: failingQuerySource(7, attached), events });
    for (let i = 0; i < 3; i++) {
      expect(await watch('job-1')).toMatchObject({ error: { code: 'unavailable' } });
    }
    expect(attached).toHaveLength(3);
    expect(await watches.list('u1')).toEqual([]);
    expect(events.filter((e) => e.event === 'listener.status')).toEqual([]);
  });

  it('a watch that stands (slow to open, no failure within the wait) tells its later failure', async () => {
    const events: AppEvent[] = [];
    const attached: WatchedQuery[] = [];
    const failures: ((error: Error) => void)[] = [];
    const { watch } = await setUp(() => {}, { source: failingQuerySource(undefined, attached, failures), events });
    expect(await watch('job-1')).toEqual({ result: { success: true, job_id: 'job-1', watching: true } });
    for (const fail of failures) fail(Object.assign(new Error('14 unreachable'), { code: 14 }));
    await waitFor(() => events.length > 0, 'the failing status');
    expect(events).toMatchObject([{ event: 'listener.status', data: { status: 'failing', kind: 'unavailable' } }]);
    await attached[0]?.stop({ handover: true });
  });

  it('a watch answered unavailable whose removal from the set fails: its listener closed all the same, nothing told, not attached again here', async () => {
    const events: AppEvent[] = [];
    const attached: WatchedQuery[] = [];
    const watches = new HiccupWatchStore();
    watches.removeFailures = 1;
    // Renewals (each reading the set) every 100 ms.
    const { listeners, watch } = await setUp(() => {}, {
      source: failingQuerySource(7, attached),
      events,
      watches,
      leaseTtlMs: 300,
    });
    expect(await watch('job-1')).toMatchObject({ error: { code: 'unavailable' } });
    // Not watched here whatever the set says: its listener stopped before the answer (nothing held to tell).
    expect(listeners.counters().workflows).toBe(0);
    expect(attached.map((q) => q.failing)).toEqual([false]);
    // Still in the fleet's set (the removal is not retried: a late one could take out a watch made
    // since); the renewals that read it attach nothing here.
    const lists = watches.lists;
    await waitFor(() => watches.lists >= lists + 3, 'three renewals');
    await listeners.idle();
    expect(await watches.list('u1')).toEqual(['job-1']);
    expect(attached).toHaveLength(1);
    expect(listeners.counters().workflows).toBe(0);
    expect(events.filter((e) => e.event === 'listener.status')).toEqual([]);
    await listeners.flush();
  });

  it('a watch answered unavailable while the set cannot be listed: its listener closed all the same, nothing told', async () => {
    const events: AppEvent[] = [];
    const attached: WatchedQuery[] = [];
    const watches = new HiccupWatchStore();
    watches.listFailuresAfterRemove = 1;
    const { listeners, watch } = await setUp(() => {}, { source: failingQuerySource(7, attached), events, watches });
    expect(await watch('job-1')).toMatchObject({ error: { code: 'unavailable' } });
    expect(listeners.counters().workflows).toBe(0);
    expect(attached.map((q) => q.failing)).toEqual([false]);
    expect(events.filter((e) => e.event === 'listener.status')).toEqual([]);
  });
});
