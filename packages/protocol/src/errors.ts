/**
 * RPC error codes sent on the wire in `rpc_error` frames. Local failures inside a
 * client or server (never sent) use their own error classes instead.
 */
export const RpcErrorCode = {
  /** The method is not in the method table. */
  UnknownMethod: 'unknown_method',
  /** The arguments do not match the method's parameter tuple. */
  InvalidParams: 'invalid_params',
  /** The caller is not authenticated. */
  Unauthenticated: 'unauthenticated',
  /** The caller may not act on this resource (another user's id, for example). */
  Forbidden: 'forbidden',
  /** The thing named does not exist. */
  NotFound: 'not_found',
  /** The feature is disabled or a dependency is down. */
  Unavailable: 'unavailable',
  /** The call did not complete in time. */
  Timeout: 'timeout',
  /** The caller sent too many calls. */
  RateLimited: 'rate_limited',
  /** Something failed on the server; details are in its logs, never on the wire. */
  Internal: 'internal',
} as const;

/** One of the values of {@link RpcErrorCode}. */
export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** Every wire RPC error code, for schemas and exhaustive checks. */
export const RPC_ERROR_CODES = Object.values(RpcErrorCode) as [RpcErrorCode, ...RpcErrorCode[]];

/** Why a frame was refused by {@link parseClientFrame} / {@link parseServerFrame} / {@link serializeFrame}. */
export type FrameErrorKind = 'too_large' | 'too_deep' | 'not_text' | 'bad_json' | 'invalid';

/** One problem found in a frame: where it is and what is wrong. */
export interface FrameIssue {
  /** Path inside the frame, e.g. `args.0` or `data.progress`. Empty for the frame itself. */
  path: string;
  /** What is wrong at that path, in plain words. */
  message: string;
}

/**
 * A frame that cannot be accepted. Local error: a server turns it into a
 * `bad_frame` error frame or close; it is never serialised as is.
 */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  readonly kind: FrameErrorKind;
  readonly issues: readonly FrameIssue[];

  constructor(
    kind: FrameErrorKind,
    message: string,
    issues: readonly FrameIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.kind = kind;
    this.issues = issues;
  }
}
