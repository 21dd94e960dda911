import { type RpcErrorBody, RpcErrorCode } from '@livebus/protocol';

/** A wire RPC error: its code and message are sent to the caller as they are. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: RpcErrorCode;
  readonly data: unknown;

  constructor(code: RpcErrorCode, message: string, options: { data?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.data = options.data;
  }

  toWire(): RpcErrorBody {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/**
 * Turns anything thrown by a handler into an {@link RpcError}. Unknown errors
 * become `internal` with a generic message: internals never reach the caller.
 */
export function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  return new RpcError(RpcErrorCode.Internal, 'internal error', { cause: error });
}

/** HTTP status for an RPC error code (POST /rpc). */
export function httpStatusOf(code: RpcErrorCode): number {
  switch (code) {
    case 'unknown_method':
    case 'not_found':
      return 404;
    case 'invalid_params':
      return 400;
    case 'unauthenticated':
      return 401;
    case 'forbidden':
      return 403;
    case 'rate_limited':
      return 429;
    case 'unavailable':
      return 503;
    case 'timeout':
      return 504;
    default:
      return 500;
  }
}
