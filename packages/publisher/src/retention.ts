import { checkNumber } from './check-option';
import { retentionDefaults } from './defaults';

/** How much of each user's stream Redis keeps for resume. */
export interface RetentionOptions {
  /** Events kept per user for resume; 0 keeps none (live delivery only). @default retentionDefaults.retentionEvents (1 000) */
  retentionEvents?: number;
  /** Age after which an event is no longer replayed (ms). @default retentionDefaults.retentionMs (300 000) */
  retentionMs?: number;
  /**
   * Bytes of stored event JSON kept per user; the oldest go first. At least 1024 (the gateway's
   * `STREAM_RETENTION_BYTES` takes no less): a smaller bound trims a stream to nothing on every
   * append. @default retentionDefaults.retentionBytes (1 MiB)
   */
  retentionBytes?: number;
  /**
   * How long a user's epoch and offset outlive the user's last event or read
   * (ms), on top of the stream's own expiry. A session that resumes within it
   * continues its cursor; later, the user gets a new epoch and the cursor a gap.
   * Never shorter than the stream's expiry. Appends set the expiries again once the last
   * setting is half of {@link STREAM_EXPIRY_MARGIN_MS} old, not on every append, so this
   * counts from up to 30 s before the last event. @default retentionDefaults.epochTtlMs (24 h)
   */
  epochTtlMs?: number;
}

/** The least `retentionBytes` (1 KiB), as the gateway's `STREAM_RETENTION_BYTES`. */
const MIN_RETENTION_BYTES = 1_024;

/**
 * Added to the retention age for the stream's PEXPIRE: the stream of an idle
 * user vanishes by itself, but not while its newest events may still be replayed.
 * An append sets the expiry again once the last setting is half this margin old,
 * so the stream outlives its newest event's retention by half the margin or more.
 */
export const STREAM_EXPIRY_MARGIN_MS = 60_000;

/** Retention with defaults applied and the expiries derived from it. */
export interface ResolvedRetention extends Required<RetentionOptions> {
  streamTtlMs: number;
  metaTtlMs: number;
}

/**
 * Applies the defaults and derives the key expiries.
 * @throws TypeError when an option is not a whole number >= 0 (the expiries reach Redis's
 * `PEXPIRE`, which refuses fractions: every append would fail), or `retentionBytes` is below
 * 1024, naming it; `where` words the message for the caller's API.
 */
export function resolveRetention(options: RetentionOptions = {}, where = 'retention'): ResolvedRetention {
  // Field by field: an option given as `undefined` takes its default, as an absent one does.
  const r = {
    retentionEvents: options.retentionEvents ?? retentionDefaults.retentionEvents,
    retentionMs: options.retentionMs ?? retentionDefaults.retentionMs,
    retentionBytes: options.retentionBytes ?? retentionDefaults.retentionBytes,
    epochTtlMs: options.epochTtlMs ?? retentionDefaults.epochTtlMs,
  };
  checkNumber(where, 'retentionEvents', r.retentionEvents, { min: 0, integer: true, zero: 'keep none' });
  checkNumber(where, 'retentionMs', r.retentionMs, { min: 0, integer: true });
  // At least 1 KiB, as the gateway's STREAM_RETENTION_BYTES: 0 (or a bound below most events) trims
  // each stream to nothing on every append, and every resume hears `gap`.
  checkNumber(where, 'retentionBytes', r.retentionBytes, { min: MIN_RETENTION_BYTES, integer: true });
  checkNumber(where, 'epochTtlMs', r.epochTtlMs, { min: 0, integer: true });
  const streamTtlMs = r.retentionMs + STREAM_EXPIRY_MARGIN_MS;
  return { ...r, streamTtlMs, metaTtlMs: Math.max(streamTtlMs, r.epochTtlMs) };
}
