/**
 * The defaults of the fleet's event streams and of the publish outbox, written
 * once: the publisher, the gateway's event buses and the gateway's EnvSchema
 * (STREAM_RETENTION_*, PUBLISH_*) all read them from here, so a publisher and a
 * gateway left at their defaults always agree on retention. (Imports nothing: `resolveRetention`
 * checks these against `RetentionOptions`.)
 */

/** Defaults of `RetentionOptions`: the gateway's STREAM_RETENTION_EVENTS, _MS and _BYTES. */
export const retentionDefaults = {
  /** Events kept per user for resume. */
  retentionEvents: 1_000,
  /** Age after which an event is no longer replayed (5 min). */
  retentionMs: 300_000,
  /** Bytes of stored event JSON kept per user (1 MiB). */
  retentionBytes: 1_048_576,
  /** How long a user's epoch and offset outlive the last event or read (24 h). */
  epochTtlMs: 86_400_000,
} as const;

/** Defaults of `OutboxOptions`: the gateway's PUBLISH_RETRY_DELAYS_MS and PUBLISH_OUTBOX_MAX_EVENTS, and the attempt timeout. */
export const outboxDefaults = {
  /** Waits between attempts while Redis cannot be reached. */
  retryDelaysMs: [1_000, 2_000, 4_000],
  /** Most events the outbox holds. */
  maxEvents: 10_000,
  /** Most bytes of event JSON the outbox holds (64 MiB). */
  maxBytes: 67_108_864,
  /**
   * Most events sent in one round of calls (each call still carries at most 128 users or
   * 128 KiB). A round takes what was queued while the last one was in flight, so under load
   * a user's events of that time share one batch: 2 000 rather than 500 made the fan-out
   * benchmark's rounds two events per user instead of one (docs/benchmarks.md).
   */
  batchEvents: 2_000,
  /** Most bytes of event JSON sent in one round (4 MiB): a round of large events stops short of batchEvents. */
  batchBytes: 4_194_304,
  /**
   * How long one attempt waits for Redis to answer before it counts as failed, as a
   * lost connection does (retried, then queued). A frozen or blackholed Redis keeps the
   * connection open and never answers.
   */
  attemptTimeoutMs: 5_000,
} as const;
