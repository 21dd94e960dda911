/**
 * Why a publish failed for good:
 * - `redis_unavailable`: Redis could not be reached through every retry;
 * - `redis_error`: Redis refused the command (a retry would not help);
 * - `closed`: the publisher was closed.
 */
export type PublishErrorCode = 'redis_unavailable' | 'redis_error' | 'closed';

/** A publish that did not happen (or whose outcome is unknown); `cause` is the last Redis error. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  readonly code: PublishErrorCode;
  /** Attempts made, the first included. */
  readonly attempts: number;

  constructor(code: PublishErrorCode, message: string, options: { cause?: unknown; attempts?: number } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.attempts = options.attempts ?? 0;
  }
}
