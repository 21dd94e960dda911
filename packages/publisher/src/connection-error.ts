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

/**
 * Redis did not answer an attempt in time (a frozen node, a blackholed address: the
 * connection stays open and nothing comes back). Code `ETIMEDOUT`, so it counts as a
 * connection error: the command may still run if Redis wakes up, which the outbox's
 * numbered batches make harmless (a retry of a stored batch stores nothing again).
 */
export class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
  }
}

/** `work`, or a {@link RedisTimeoutError} after `timeoutMs` (0 or less: no limit). */
export function withRedisTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  if (!(timeoutMs > 0)) return work;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
