/**
 * `promise`'s value, or `undefined` once `ms` have passed without it (the promise runs
 * on; what it settles to then is ignored). Rejects as `promise` does before that.
 *
 * A lease renewal is only worth waiting for until the lease would have expired: a
 * Redis client queues commands through a failover, so the call can hang for longer
 * than the lease, and another instance may hold it by then.
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
