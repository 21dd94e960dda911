import type { ListenerSourceStats } from './listener-source';

/**
 * How long after a listener failure the Firestore status reads `down`: two pushes of the
 * dashboard (one a second), so every viewer sees a failure at least once.
 */
export const FIRESTORE_DOWN_WINDOW_MS = 2_000;

/**
 * The Firestore status shown on the dashboard: `down` while a listener failed within the
 * last `windowMs` (the emulator or the network away), `ok` otherwise. A pure read of the
 * listeners' figures: any number of viewers, polling at any rate, get the same answer at
 * the same moment (it used to compare with the previous reader's count, so a second
 * viewer saw `ok` where the first saw `down`).
 */
export function firestoreStatus(
  stats: Pick<ListenerSourceStats, 'lastErrorAt'> | undefined,
  now: number = Date.now(),
  windowMs: number = FIRESTORE_DOWN_WINDOW_MS,
): 'ok' | 'down' {
  const at = stats?.lastErrorAt;
  return at !== undefined && now - at < windowMs ? 'down' : 'ok';
}
