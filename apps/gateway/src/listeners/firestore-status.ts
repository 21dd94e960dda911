import type { ListenerSourceStats } from './listener-source';

/**
 * How long after a listener failure the Firestore status reads `down`: two pushes of the
 * dashboard (one a second), so every viewer sees a failure at least once.
 */
export const FIRESTORE_DOWN_WINDOW_MS = 2_000;

/**
 * Failures that are not Firestore's: a document too large to publish, Redis refusing a publish
 * (`emit`), a resume mark or a replay read. Counted like the others, but they do not make
 * Firestore's status `down` (`/healthz`, the dashboard).
 */
export const NOT_FIRESTORE: ReadonlySet<string> = new Set(['too_large', 'emit', 'mark', 'replay']);

/**
 * The Firestore status shown on `/healthz` and the dashboard: `down` while a listener is
 * failing on Firestore's side (from its failure until it publishes a snapshot again: the
 * client's retries and the listener's), and within `windowMs` of any such failure (a stall
 * re-opened at once); `ok` otherwise. A pure read of the listeners' figures: any number of
 * viewers, polling at any rate, get the same answer at the same moment (it used to compare
 * with the previous reader's count, so a second viewer saw `ok` where the first saw `down`).
 */
export function firestoreStatus(
  stats: Pick<ListenerSourceStats, 'lastErrorAt' | 'failing'> | undefined,
  now: number = Date.now(),
  windowMs: number = FIRESTORE_DOWN_WINDOW_MS,
): 'ok' | 'down' {
  const failing = Object.entries(stats?.failing ?? {}).some(([kind, n]) => n > 0 && !NOT_FIRESTORE.has(kind));
  const at = stats?.lastErrorAt;
  return failing || (at !== undefined && now - at < windowMs) ? 'down' : 'ok';
}
