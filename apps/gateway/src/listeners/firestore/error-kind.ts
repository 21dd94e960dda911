/** gRPC status codes as metric labels (`livebus_listener_errors_total{kind}`, `listener_error`'s `kind`). */
const NAMES: Record<number, string> = {
  1: 'cancelled',
  2: 'unknown',
  3: 'invalid_argument',
  4: 'deadline_exceeded',
  5: 'not_found',
  6: 'already_exists',
  7: 'permission_denied',
  8: 'resource_exhausted',
  9: 'failed_precondition',
  10: 'aborted',
  11: 'out_of_range',
  12: 'unimplemented',
  13: 'internal',
  14: 'unavailable',
  15: 'data_loss',
  16: 'unauthenticated',
};

/**
 * What the Firestore client (@google-cloud/firestore 7, `ExponentialBackoff.backoffAndWait`)
 * rejects with when its listen stream failed with an error it retries (UNAVAILABLE,
 * UNAUTHENTICATED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL, ...) eleven times running:
 * a plain Error, no `code`, and nothing of the last failure.
 */
export const SDK_RETRIES_EXHAUSTED = 'Exceeded maximum number of retries allowed.';

/**
 * How the Firestore client reports a query the server removed (`Watch.onData`, a target
 * change REMOVE): `Error <code>: <message>`, without a `code` property. A missing index is
 * `Error 9: The query requires an index. You can create it here: https://...`.
 */
const REMOVED_TARGET = /^Error (\d+): /;

/**
 * The kind of a Firestore listener's failure, a stable metric label: its gRPC status code
 * by name; `unavailable` for the client giving up its own retries (Firestore unreachable
 * for about two minutes, or refusing the credentials); the code of a query the server
 * removed; `other` for an error that carries none of these.
 */
export function errorKind(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'number') return NAMES[code] ?? 'other';
  if (typeof message !== 'string') return 'other';
  if (message === SDK_RETRIES_EXHAUSTED) return 'unavailable';
  const removed = REMOVED_TARGET.exec(message);
  return removed ? (NAMES[Number(removed[1])] ?? 'other') : 'other';
}
