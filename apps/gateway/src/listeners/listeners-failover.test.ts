import { waitFor } from '@livebus/test-support';
import type { ControlMessage } from '../fleet/instances/instance-channel';
import type { InstanceLiveness } from '../fleet/instances/instance-liveness';
import { MemoryLease } from '../fleet/lease/memory-lease';
import { type GatewayHookEvents, Hooks } from '../hooks';
import type { Logger } from '../logger';
import type { Detach, ListenerSource, WorkflowSource } from './listener-source';
import { ListenersManager } from './listeners-manager';
import { MemoryWorkflowWatchStore } from './workflow-watch-store';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** Two managers (gw-a, gw-b) on one memory lease and watch set, a shared proof map and a channel between them. */
function fleet(options: { workflow?: WorkflowSource } = {}) {
  const lease = new MemoryLease();
  const watches = new MemoryWorkflowWatchStore();
  const proofs = new Map<string, string>();
  const reads = { count: 0 };
  const liveness: InstanceLiveness = {
    beat: async (id, incarnation) => void proofs.set(id, incarnation),
    read: async (ids) => {
      reads.count++;
      return new Map(ids.map((id) => [id, proofs.get(id)]));
    },
    retire: async (id) => void proofs.delete(id),
  };
  const source: ListenerSource = { name: 'test', attach: async () => async () => {} };
  const managers = new Map<string, ListenersManager>();
  const make = (instanceId: string) => {
    const hooks = new Hooks<GatewayHookEvents>();
    const seen: Array<{ name: string; event: unknown }> = [];
    for (const name of ['lease.acquired', 'lease.lost', 'lease.holder_dead', 'lease.standby'] as const) {
      hooks.on(name, (event) => seen.push({ name, event }));
    }
    const manager = new ListenersManager({
      instanceId,
      lease,
      workflowWatches: watches,
      sources: [source],
      ...(options.workflow ? { workflowSource: options.workflow } : {}),
      detachDelayMs: 10,
      leaseTtlMs: 60_000,
      liveness,
      failoverMs: 200,
      logger: silent,
      hooks,
      cleanupRegistry: async () => 'cleaned' as const,
      emit: () => {},
      channel: {
        send: async (to, message: ControlMessage) => {
          if (message.type !== 'replace' && message.type !== 'registration') managers.get(to)?.onControl(message);
        },
      },
    });
    managers.set(instanceId, manager);
    return { manager, seen };
  };
  return { lease, proofs, reads, a: make('gw-a'), b: make('gw-b') };
}

describe('ListenersManager in a fleet: liveness failover and watches over the channel', () => {
  it("takes the user's listeners over from a holder whose proof lapsed, from that holder exactly", async () => {
    const { lease, proofs, a, b } = fleet();
    // gw-a runs but is never started: its proof is written once, by hand, and then lapses (killed).
    proofs.set('gw-a', 'incarnation-of-a');
    await a.manager.sessionOpened('u1', 's1');
    expect(a.manager.isAttached('u1')).toBe(true);
    b.manager.start();
    await b.manager.sessionOpened('u1', 's2');
    expect(b.manager.counters().standby).toBe(1);
    const before = await lease.holder('u1');
    proofs.delete('gw-a');
    await waitFor(() => b.manager.isAttached('u1'), 'gw-b takes over');
    expect(b.seen.filter((s) => s.name === 'lease.holder_dead').map((s) => s.event)).toEqual([
      { holder: 'gw-a', reason: 'no_proof', users: 1 },
    ]);
    const acquired = b.seen.filter((s) => s.name === 'lease.acquired').map((s) => s.event);
    expect(acquired).toEqual([expect.objectContaining({ uid: 'u1', from: 'gw-a' })]);
    const after = await lease.holder('u1');
    expect(after?.owner).toBe('gw-b');
    expect(after!.token).toBeGreaterThan(before!.token);
    await Promise.all([a.manager.flush(), b.manager.flush()]);
  });

  it('a holder restarted under the same name (another incarnation) is dead too', async () => {
    const { proofs, reads, a, b } = fleet();
    proofs.set('gw-a', 'first');
    await a.manager.sessionOpened('u1', 's1');
    b.manager.start();
    await b.manager.sessionOpened('u1', 's2');
    // gw-b's checks see 'first' (a check that started after the standby poll has been judged
    // once the next one starts), then 'second'.
    await waitFor(() => b.seen.some((s) => s.name === 'lease.standby'), 'standby');
    const from = reads.count;
    await waitFor(() => reads.count >= from + 2, 'a whole check of gw-a');
    proofs.set('gw-a', 'second');
    await waitFor(() => b.manager.isAttached('u1'), 'gw-b takes over');
    expect(b.seen.find((s) => s.name === 'lease.holder_dead')?.event).toMatchObject({ reason: 'restarted' });
    await Promise.all([a.manager.flush(), b.manager.flush()]);
  });

  it('WORKFLOW.watch on the instance without the lease resolves once the holder published the initial state', async () => {
    let release!: () => void;
    const published = new Promise<void>((resolve) => {
      release = resolve;
    });
    const attached: string[] = [];
    const workflow: WorkflowSource = {
      owner: async () => 'u1',
      attach: async (_uid, jobId) => {
        attached.push(jobId);
        const detach: Detach = async () => {};
        detach.ready = published;
        return detach;
      },
    };
    const { a, b } = fleet({ workflow });
    a.manager.start();
    await a.manager.sessionOpened('u1', 's1');
    await b.manager.sessionOpened('u1', 's2');
    let answered = false;
    const watch = b.manager.watchWorkflow('u1', 'job-1').then(() => {
      answered = true;
    });
    await waitFor(() => attached.length === 1, 'the holder attaches the watch at once');
    expect(attached).toEqual(['job-1']);
    expect(a.manager.counters().workflows).toBe(1);
    expect(answered).toBe(false); // the initial state is not published yet
    release();
    await watch;
    expect(b.manager.counters().workflows).toBe(0);
    await Promise.all([a.manager.flush(), b.manager.flush()]);
  });
});
