import type { DisconnectReason, RpcErrorCode } from '@livebus/protocol';

/** An RPC failure: a wire error from the gateway, or a local one (timeout, disconnected). */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: RpcErrorCode;
  readonly data: unknown;

  constructor(code: RpcErrorCode, message: string, data?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
  }
}

/** The client stopped for good because the gateway refused it in a way retrying cannot fix. */
export class FatalCloseError extends Error {
  override readonly name = 'FatalCloseError';
  readonly code: number;
  readonly reason: DisconnectReason;

  constructor(code: number, reason: DisconnectReason) {
    super(`the gateway closed the connection (${code}, ${reason}); not retrying`);
    this.code = code;
    this.reason = reason;
  }
}
