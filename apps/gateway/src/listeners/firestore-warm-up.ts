import type { GatewayHooks } from '../hooks';

/** The document the start-up read asks for: it need not exist (a missing document is one read). */
export const FIRESTORE_WARM_UP_DOC = '_livebus/warm-up';

/**
 * How long the start waits for the warm-up read at most: a Firestore that does not answer
 * does not stop the gateway from starting (its listeners retry on their own).
 */
export const FIRESTORE_WARM_UP_TIMEOUT_MS = 5_000;

/**
 * Opens the Firestore client's channel before the gateway accepts clients: the first request
 * of a process loads the gRPC client and connects (hundreds of ms, measured 0.6 s on a busy
 * 2-core machine), which the first user's WORKFLOW.watch (its owner check) or the first
 * takeover would otherwise wait for. Never throws: the outcome (`ok`, `error`, `timeout`)
 * and the time it took go to the `firestore.warm_up` hook (logged `firestore_warm_up`).
 */
export async function warmUpFirestore(
  read: () => Promise<unknown>,
  hooks: GatewayHooks,
  timeoutMs: number = FIRESTORE_WARM_UP_TIMEOUT_MS,
): Promise<void> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  const outcome = await Promise.race([
    read().then(
      () => ({ outcome: 'ok' as const }),
      (error: unknown) => ({ outcome: 'error' as const, error: String(error) }),
    ),
    timedOut.then((outcome) => ({ outcome })),
  ]);
  clearTimeout(timer);
  hooks.emit('firestore.warm_up', { ms: Math.round(performance.now() - started), ...outcome });
}
