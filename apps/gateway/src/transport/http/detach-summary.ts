import type { ListenerCounters } from '../../listeners/listeners-manager';

/** The detach figures `/ws-metrics` and the dashboard show, with the cancel ratio operators watch. */
export function detachSummary(c: ListenerCounters) {
  const decided = c.detachCancelled + c.detachExecuted;
  return {
    cancelled: c.detachCancelled,
    executed: c.detachExecuted,
    pending: c.pendingDetaches,
    cancel_ratio: decided === 0 ? 0 : c.detachCancelled / decided,
  };
}
