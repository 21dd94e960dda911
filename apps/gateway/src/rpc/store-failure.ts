import { RpcErrorCode } from '@livebus/protocol';
import { isTransientRedisError } from '@livebus/publisher';
import { RpcError } from './rpc-error';

/**
 * The RPC error for a store (Redis) that failed a call: `unavailable`, which the
 * caller may retry, when Redis was away or a Cluster was failing over (the same
 * classification as the publisher's outbox, `isTransientRedisError`); `internal`
 * when Redis refused the command, which a retry would not fix.
 */
export function storeFailure(error: unknown, what: string): RpcError {
  if (error instanceof RpcError) return error;
  if (isTransientRedisError(error)) {
    return new RpcError(RpcErrorCode.Unavailable, `${what} is unavailable; retry later`, { cause: error });
  }
  return new RpcError(RpcErrorCode.Internal, 'internal error', { cause: error });
}
