const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);
// Messages of ioredis (and Redis replies) that mean "not reachable right now", not "wrong command".
const CONNECTION_MESSAGES =
  /Connection is closed|Stream isn't writeable|None of startup nodes|Failed to refresh slots cache|Command timed out|connect ETIMEDOUT|Cluster isn't ready|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|READONLY/i;

/**
 * True when an error means Redis could not be reached (or is failing over), so
 * the same command may succeed after a reconnect; false for errors a retry
 * cannot fix (a bad command, a script error, out of memory).
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (code && CONNECTION_CODES.has(code)) return true;
  return CONNECTION_MESSAGES.test(error.message);
}
