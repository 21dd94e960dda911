/**
 * The defaults of per-user Firestore listeners, written once: EnvSchema (LISTENER_*),
 * the listeners manager, the watched queries and the Firestore sources read them here.
 */
export const listenerDefaults = {
  /** Lease TTL; renewed every third of it (LISTENER_LEASE_TTL_MS). */
  leaseTtlMs: 15_000,
  /**
   * A holder that does not prove it runs for this long is taken over (LISTENER_FAILOVER_MS):
   * proofs every 500 ms, so a stall of up to 1.5 s costs nothing; a killed holder's users
   * hear again about 2.1 s after the kill (bench/listener-failover.mjs).
   */
  failoverMs: 2_000,
  /** No snapshot for this long: the query is re-opened, 0 never (LISTENER_STALL_MS): 30 min. */
  stallMs: 30 * 60_000,
  /** First wait before re-opening a failed query, doubled up to `retryMaxMs`. */
  retryMinMs: 500,
  /** Longest wait between re-opens of a failed query (LISTENER_RETRY_MAX_MS). */
  retryMaxMs: 30_000,
  /** Paths each listener tracks to report deletions during a takeover (LISTENER_TRACKED_DOCS_MAX). */
  trackedDocsMax: 1_000,
  /**
   * Jobs one user may watch at once with WORKFLOW.watch (WORKFLOW_MAX_WATCHES_PER_USER): a
   * further job is refused with `rate_limited`. Each watched job is a Firestore listener. 0: no bound.
   */
  workflowWatchesMax: 100,
} as const;
