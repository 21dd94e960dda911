import { RpcErrorCode } from '@livebus/protocol';
import { InvalidEventError, isTransientRedisError, PublishError, type PublishErrorCode } from '@livebus/publisher';
import { RpcError } from './rpc-error';

const TRANSIENT_PUBLISH: ReadonlySet<PublishErrorCode> = new Set(['outbox_full', 'redis_unavailable', 'closed']);

/**
 * The RPC error for a store (Redis) that failed a call: `unavailable`, which the
 * caller may retry, when Redis was away or a Cluster was failing over (the same
 * classification as the publisher's outbox, `isTransientRedisError`); `internal`
 * when Redis refused the command, which a retry would not fix. A `PublishError` of an event
 * the bus could not take now (`outbox_full`, `redis_unavailable`, `closed`) is `unavailable` too,
 * and an event the bus refused (`InvalidEventError`: too large for a frame) `invalid_params`: what
 * the caller sent made it so, and neither a retry nor the server's logs would help them.
 */
export function storeFailure(error: unknown, what: string): RpcError {
  if (error instanceof RpcError) return error;
  if (error instanceof InvalidEventError) {
    return new RpcError(RpcErrorCode.InvalidParams, `${what} refused the event: ${error.message}`, { cause: error });
  }
  // An event the bus could not take now (its outbox full, Redis away, the instance closing).
  if (error instanceof PublishError && TRANSIENT_PUBLISH.has(error.code)) {
    return new RpcError(RpcErrorCode.Unavailable, `${what} is unavailable; retry later`, { cause: error });
  }
  if (isTransientRedisError(error)) {
    return new RpcError(RpcErrorCode.Unavailable, `${what} is unavailable; retry later`, { cause: error });
  }
  return new RpcError(RpcErrorCode.Internal, 'internal error', { cause: error });
}
