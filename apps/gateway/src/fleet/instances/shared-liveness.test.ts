import { type GatewayHookEvents, Hooks } from '../../hooks';
import { FailoverWatch } from '../../listeners/failover-watch';
import type { InstanceLiveness } from './instance-liveness';
import { SharedLiveness } from './shared-liveness';

/** Liveness proofs in a map; `writes` counts the beats that reached it. */
function fakeLiveness() {
  const proofs = new Map<string, string>();
  const state = { writes: 0 };
  const liveness: InstanceLiveness = {
    beat: async (id, incarnation) => {
      state.writes++;
      proofs.set(id, incarnation);
    },
    read: async (ids) => new Map(ids.map((id) => [id, proofs.get(id)])),
    retire: async (id, incarnation) => {
      if (proofs.get(id) === incarnation) proofs.delete(id);
    },
  };
  return { liveness, proofs, state };
}

function watch(liveness: InstanceLiveness, instanceId: string, clock: { now: number }, dead: string[] = []) {
  return new FailoverWatch({
    liveness,
    instanceId,
    failoverMs: 2_000,
    hooks: new Hooks<GatewayHookEvents>(),
    onDead: (owner) => dead.push(owner),
    now: () => clock.now,
  });
}

describe('SharedLiveness', () => {
  it('two watches of one gateway (user and company listeners) prove one incarnation: a reader never sees it restart', async () => {
    const clock = { now: 1_000 };
    const { liveness, proofs } = fakeLiveness();
    const shared = new SharedLiveness(liveness, { incarnation: 'gw-a-inc', now: () => clock.now });
    const users = watch(shared, 'gw-a', clock);
    const companies = watch(shared, 'gw-a', clock);
    const dead: string[] = [];
    const reader = watch(liveness, 'gw-b', clock, dead);
    reader.follow('u1', 'gw-a');
    for (let i = 0; i < 8; i++) {
      await (i % 2 === 0 ? users : companies).beat();
      await reader.check();
      clock.now += 300;
    }
    expect(dead).toEqual([]);
    expect(proofs.get('gw-a')).toBe('gw-a-inc');
  });

  it('a beat within an eighth of the window of the last one is not written again', async () => {
    const clock = { now: 1_000 };
    const { liveness, state } = fakeLiveness();
    const shared = new SharedLiveness(liveness, { now: () => clock.now });
    await shared.beat('gw-a', 'users', 2_000);
    clock.now += 100;
    await shared.beat('gw-a', 'companies', 2_000);
    expect(state.writes).toBe(1);
    clock.now += 150; // 250 ms: an eighth of the window since the write
    await shared.beat('gw-a', 'companies', 2_000);
    expect(state.writes).toBe(2);
  });

  it('the proof goes only once every watch that beat has retired it', async () => {
    const clock = { now: 1_000 };
    const { liveness, proofs } = fakeLiveness();
    const shared = new SharedLiveness(liveness, { now: () => clock.now });
    const users = watch(shared, 'gw-a', clock);
    const companies = watch(shared, 'gw-a', clock);
    users.start();
    companies.start();
    await users.beat();
    await users.stop();
    expect(proofs.has('gw-a')).toBe(true); // the company listeners still hold leases
    await companies.stop();
    expect(proofs.has('gw-a')).toBe(false);
  });
});
