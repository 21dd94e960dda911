/**
 * Port: a short-lived proof that an instance of the fleet runs, refreshed by the instance
 * itself, read by the others. What lets an instance take over the listeners of a holder that
 * died (SIGKILL, a lost host) within `LISTENER_FAILOVER_MS` instead of waiting for each
 * user's lease to expire (docs/listeners.md, "Failover"). The value is the process's
 * incarnation (a random id per start): a holder restarted under the same INSTANCE_ID is
 * another incarnation, so the leases of the dead one are known dead too.
 */
export interface InstanceLiveness {
  /** This instance runs as `incarnation` for the next `ttlMs`. */
  beat(instanceId: string, incarnation: string, ttlMs: number): Promise<void>;
  /** The incarnation of each instance alive now; undefined: no proof (dead, or never seen). */
  read(instanceIds: readonly string[]): Promise<Map<string, string | undefined>>;
  /** Shutdown: the proof goes at once (only when still `incarnation`'s). */
  retire(instanceId: string, incarnation: string): Promise<void>;
}
