import type { Principal } from '../../auth/authenticator';
import type { GatewayConfig } from '../../config';
import type { EventBus } from '../../fleet/bus/event-bus';
import type { InstanceLiveness } from '../../fleet/instances/instance-liveness';
import type { RegistryStore } from '../../fleet/registry/registry-store';
import { type GatewayHookEvents, type GatewayHooks, Hooks } from '../../hooks';
import type { Logger } from '../../logger';
import { ListenersManager } from '../listeners-manager';
import { MemoryWorkflowWatchStore } from '../workflow-watch-store';
import type { CompanyPorts } from './build-company';
import { CompanyListeners } from './company-listeners';

/** What {@link createCompanyListeners} wires. */
export interface CompanyWiringDeps {
  config: GatewayConfig;
  companies: CompanyPorts;
  registry: RegistryStore;
  bus: EventBus;
  hooks: GatewayHooks;
  logger: Logger;
  principals: (uid: string) => Principal[];
  /**
   * The gateway's liveness proofs (the user listeners' too: one proof per gateway): a dead
   * holder's companies are taken over within LISTENER_FAILOVER_MS. Unset: at lease expiry.
   */
  liveness?: InstanceLiveness;
}

/**
 * The company listeners of a gateway: a second {@link ListenersManager}, keyed by company
 * id, whose "sessions" are the users following the company here (leases, detach delay,
 * standby polling, liveness failover, fenced marks and replay: those of the user listeners), and the
 * {@link CompanyListeners} that decides who follows what. Its lifecycle moments are told
 * on the gateway's hooks as `company.*`.
 */
export function createCompanyListeners(deps: CompanyWiringDeps): {
  follows: CompanyListeners;
  manager: ListenersManager;
} {
  const { config, companies, hooks, logger } = deps;
  const own = new Hooks<GatewayHookEvents>();
  // lease.acquired comes just before listener.attached, in the same step: it names the holder
  // found dead that the lease was taken over from (liveness failover).
  const takenFrom = new Map<string, string>();
  own.on('lease.acquired', (e) => {
    if (e.from === undefined) takenFrom.delete(e.uid);
    else takenFrom.set(e.uid, e.from);
  });
  own.on('listener.attached', (e) => {
    const from = takenFrom.get(e.uid);
    takenFrom.delete(e.uid);
    hooks.emit('company.attached', {
      company_id: e.uid,
      listeners: e.listeners,
      ...(e.token === undefined ? {} : { token: e.token }),
      ...(from === undefined ? {} : { from }),
    });
  });
  own.on('listener.detached', (e) =>
    hooks.emit('company.detached', { company_id: e.uid, listeners: e.listeners, handover: e.handover }),
  );
  own.on('lease.lost', (e) =>
    hooks.emit('company.lease_lost', {
      company_id: e.uid,
      reason: e.reason,
      ...(e.token === undefined ? {} : { token: e.token }),
    }),
  );
  const manager = new ListenersManager({
    sources: [companies.source],
    detachDelayMs: config.detachDelayMs,
    logger,
    hooks: own,
    // No registry of its own: a company "departs" when nobody follows it anywhere.
    cleanupRegistry: async () => 'cleaned',
    // Followers elsewhere: hand over (marks kept), else the next holder starts afresh.
    presentElsewhere: async (companyId) => (await companies.followers.list(companyId)).length > 0,
    emit: async () => {
      throw new Error('company events go through the company broadcaster');
    },
    readSince: (companyId, cursor) => companies.fanOut.readJournal(companyId, cursor),
    instanceId: config.instanceId,
    leaseTtlMs: config.listenerLeaseTtlMs,
    lease: companies.lease,
    // A dead holder's companies are taken over within LISTENER_FAILOVER_MS, as users' listeners are.
    ...(deps.liveness ? { liveness: deps.liveness, failoverMs: config.listenerFailoverMs } : {}),
    workflowWatches: new MemoryWorkflowWatchStore(),
  });
  const follows = new CompanyListeners({
    manager,
    source: companies.source,
    followers: companies.followers,
    membership: companies.membership,
    registry: deps.registry,
    bus: deps.bus,
    principals: deps.principals,
    hooks,
    instanceId: config.instanceId,
    followerTtlMs: Math.max(3_000, config.instanceTtlMs),
    leaveDelayMs: config.detachDelayMs,
    stats: companies.stats,
    fanOutCalls: () => companies.fanOut.calls(),
    logger,
  });
  return { follows, manager };
}
