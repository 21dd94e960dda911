import type { InstanceLiveness } from '../fleet/instances/instance-liveness';
import { type GatewayHookEvents, Hooks } from '../hooks';
import { FailoverWatch } from './failover-watch';

/** Liveness proofs in a map, read on an injected clock; `slow` makes reads take that long. */
function fakeLiveness(clock: { now: number }) {
  const proofs = new Map<string, string>();
  const state = { failing: false, slowMs: 0 };
  const liveness: InstanceLiveness = {
    beat: async (id, incarnation) => {
      proofs.set(id, incarnation);
    },
    read: async (ids) => {
      if (state.failing) throw new Error('connect ECONNREFUSED');
      clock.now += state.slowMs;
      return new Map(ids.map((id) => [id, proofs.get(id)]));
    },
    retire: async (id) => {
      proofs.delete(id);
    },
  };
  return { liveness, proofs, state };
}

function setup() {
  const clock = { now: 1_000 };
  const { liveness, proofs, state } = fakeLiveness(clock);
  const dead: string[] = [];
  const hooks = new Hooks<GatewayHookEvents>();
  const seen: GatewayHookEvents['lease.holder_dead'][] = [];
  hooks.on('lease.holder_dead', (e) => seen.push(e));
  const watch = new FailoverWatch({
    liveness,
    instanceId: 'gw-a',
    failoverMs: 2_000,
    hooks,
    onDead: (owner) => dead.push(owner),
    now: () => clock.now,
  });
  return { clock, proofs, state, dead, seen, watch };
}

describe('FailoverWatch', () => {
  it('a followed holder whose proof is gone after a whole window of prompt checks is dead, once', async () => {
    const { clock, proofs, dead, seen, watch } = setup();
    proofs.set('gw-b', 'inc-1');
    watch.follow('u1', 'gw-b');
    watch.follow('u2', 'gw-b');
    await watch.check();
    clock.now += 5_000;
    await watch.check();
    expect(dead).toEqual([]);
    proofs.delete('gw-b'); // killed: its proof lapsed
    clock.now += 250;
    await watch.check();
    expect(dead).toEqual(['gw-b']);
    expect(seen).toEqual([{ holder: 'gw-b', reason: 'no_proof', users: 2 }]);
    await watch.check();
    expect(dead).toEqual(['gw-b']); // no longer followed
  });

  it('a missing proof right after a failed or slow check waits a whole window (Redis failing over)', async () => {
    const { clock, proofs, state, dead, watch } = setup();
    proofs.set('gw-b', 'inc-1');
    watch.follow('u1', 'gw-b');
    clock.now += 10_000;
    state.failing = true;
    await watch.check();
    state.failing = false;
    proofs.delete('gw-b'); // expired while nobody could write it
    await watch.check();
    clock.now += 1_999;
    await watch.check();
    expect(dead).toEqual([]);
    proofs.set('gw-b', 'inc-1'); // its next beat lands: alive
    clock.now += 1;
    await watch.check();
    expect(dead).toEqual([]);
    // A slow read (more than a quarter of the window) counts as no check at all.
    proofs.delete('gw-b');
    clock.now += 10_000;
    state.slowMs = 600;
    await watch.check();
    state.slowMs = 0;
    clock.now += 1_000;
    await watch.check();
    expect(dead).toEqual([]);
    clock.now += 1_000;
    await watch.check();
    expect(dead).toEqual(['gw-b']);
  });

  it('a proof of another incarnation (restarted under the same INSTANCE_ID) means the holder seen is dead', async () => {
    const { proofs, dead, seen, watch } = setup();
    proofs.set('gw-b', 'inc-1');
    watch.follow('u1', 'gw-b');
    await watch.check();
    proofs.set('gw-b', 'inc-2');
    await watch.check();
    expect(dead).toEqual(['gw-b']);
    expect(seen[0]).toMatchObject({ reason: 'restarted' });
  });

  it('the same holder followed again at each standby poll keeps its window: a poll shorter than the window still finds it dead', async () => {
    const { clock, proofs, dead, watch } = setup();
    proofs.set('gw-b', 'inc-1');
    watch.follow('u1', 'gw-b');
    await watch.check();
    proofs.delete('gw-b'); // killed
    // Standby polls every 750 ms (a quarter of a 3 s lease) name the same holder again.
    for (let i = 0; i < 4 && dead.length === 0; i++) {
      clock.now += 750;
      watch.follow('u1', 'gw-b');
      await watch.check();
    }
    expect(dead).toEqual(['gw-b']);
  });

  it('follows nobody for its own instance, and forgets a holder once no user needs it', async () => {
    const { clock, dead, watch } = setup();
    watch.follow('u1', 'gw-a');
    watch.follow('u2', 'gw-c');
    watch.unfollow('u2');
    clock.now += 10_000;
    await watch.check();
    expect(dead).toEqual([]);
  });

  it('beats with its incarnation and retires it on stop', async () => {
    const { proofs, watch } = setup();
    watch.start();
    await new Promise((r) => setImmediate(r));
    expect(proofs.get('gw-a')).toMatch(/^[0-9a-f-]{36}$/);
    await watch.stop();
    expect(proofs.has('gw-a')).toBe(false);
  });
});
