/**
 * `promise`'s value, or `undefined` once `ms` have passed without it (the promise runs
 * on; what it settles to then is ignored). Rejects as `promise` does before that.
 *
 * For a Redis call worth waiting for only so long: a Redis client queues commands through a
 * failover, and a frozen Redis keeps its connections open without answering, so a call can
 * hang for longer than it matters (a lease renewal past the lease, which another instance may
 * hold by then; a shutdown step past the grace).
 */
export function beforeDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
    timer.unref();
  });
  promise.catch(() => {});
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
