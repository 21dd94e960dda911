import type { ListenerSourceStats } from './listener-source';

/**
 * How long after a listener failure the Firestore status reads `down`: two pushes of the
 * dashboard (one a second), so every viewer sees a failure at least once.
 */
export const FIRESTORE_DOWN_WINDOW_MS = 2_000;

/**
 * Failures that are not Firestore's: a document too large to publish, Redis refusing a publish
 * (`emit`), a resume mark or a replay read. Counted like the others, but they make Firestore's
 * status neither `down` nor refused (`/healthz`, the dashboard).
 */
export const NOT_FIRESTORE: ReadonlySet<string> = new Set(['too_large', 'emit', 'mark', 'replay']);

/**
 * The failures that say Firestore itself is unwell, not one query: the codes its client treats
 * as transient and retries on its own (`Watch.isPermanentWatchError`: unavailable,
 * deadline_exceeded, resource_exhausted (overload or the project's quota: every query of the
 * project fails alike), internal, unknown, aborted, cancelled; `unavailable` also for the client
 * giving up those retries), `data_loss`, a resumed listener's point reads (`read`, after its query
 * was served) and a listener silent past LISTENER_STALL_MS (`stalled`). Only these make the status
 * `down`. `unauthenticated`, retried by the client too, is left out: it reaches a listener with
 * its code only when the credentials are refused, a setting like `permission_denied` (a revoked
 * key that the client retried shows as `unavailable`).
 */
export const FIRESTORE_OUTAGE: ReadonlySet<string> = new Set([
  'unavailable',
  'deadline_exceeded',
  'resource_exhausted',
  'internal',
  'unknown',
  'aborted',
  'cancelled',
  'data_loss',
  'read',
  'stalled',
]);

/** Whether a failure of `kind` is Firestore refusing that query (neither an outage nor another's). */
const isRefused = (kind: string) => !FIRESTORE_OUTAGE.has(kind) && !NOT_FIRESTORE.has(kind);

/**
 * The Firestore status shown on `/healthz` and the dashboard: `down` while a listener is
 * failing with an outage's kind ({@link FIRESTORE_OUTAGE}; from its failure until it publishes
 * a snapshot again: the client's retries and the listener's), and within `windowMs` of such a
 * failure (`lastErrorAt`: a stall re-opened at once); `ok` otherwise, also while listeners fail on
 * a query Firestore refuses (a missing index, the rules: {@link firestoreRefused}), a problem
 * of those queries that an alert on Firestore's health must not page for. A pure read of the
 * listeners' figures: any number of viewers, polling at any rate, get the same answer at the
 * same moment (it used to compare with the previous reader's count, so a second viewer saw `ok`
 * where the first saw `down`).
 */
export function firestoreStatus(
  stats: Pick<ListenerSourceStats, 'lastErrorAt' | 'failing'> | undefined,
  now: number = Date.now(),
  windowMs: number = FIRESTORE_DOWN_WINDOW_MS,
): 'ok' | 'down' {
  const failing = Object.entries(stats?.failing ?? {}).some(([kind, n]) => n > 0 && FIRESTORE_OUTAGE.has(kind));
  const at = stats?.lastErrorAt;
  return failing || (at !== undefined && now - at < windowMs) ? 'down' : 'ok';
}

/**
 * The listeners failing now on a query Firestore refuses: a kind of Firestore's own that is not
 * an outage's (`failed_precondition` for a missing index, `permission_denied`, `invalid_argument`,
 * `unauthenticated`, `other`, ...). `/healthz`'s `firestore_refused`; by kind in
 * `livebus_listener_queries_failing{kind}`.
 */
export function firestoreRefused(stats: Pick<ListenerSourceStats, 'failing'> | undefined): number {
  let refused = 0;
  for (const [kind, n] of Object.entries(stats?.failing ?? {})) if (n > 0 && isRefused(kind)) refused += n;
  return refused;
}
