import { MemoryLease } from '../fleet/lease/memory-lease';
import { MemoryRegistryStore } from '../fleet/registry/memory-registry-store';
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

/** WORKFLOW.watch as a user's tab calls it, on a manager holding the user's listeners. */
async function setUp(onAttach: (job: string, listener: FakeListener) => void) {
  const watches = new MemoryWorkflowWatchStore();
  const listeners = new ListenersManager({
    sources: [],
    workflowSource: fakeWorkflowSource(onAttach),
    workflowWatches: watches,
    lease: new MemoryLease(),
    // The wait for the initial state: short, so the slow cases reach it (what is asserted is the answer).
    watchReplyMs: 50,
    detachDelayMs: 0,
    logger: silent,
    cleanupRegistry: async () => 'cleaned' as const,
    emit: () => {},
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
});
