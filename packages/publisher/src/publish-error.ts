/**
 * Why a publish failed for good:
 * - `redis_unavailable`: Redis could not be reached through every retry (only with the outbox off),
 *   or a client of your own (`{ redis }`) was closed, which the publisher never reopens, or the
 *   publisher was closed before a retry. Not "not stored" for certain: an attempt that was sent
 *   and got no answer (it timed out, or the connection was lost after the command was written) may
 *   have been run by Redis; then {@link PublishError.maybeStored} is true and the message ends
 *   "(the event may be stored)";
 * - `redis_error`: Redis refused the command (a retry would not help);
 * - `outbox_full`: Redis is away and the outbox already holds its maximum; the
 *   event was refused at once (nothing queued), so the loss is the caller's to see;
 * - `closed`: the publisher was closed (with the event still waiting, or before it was given);
 * - `fenced`: a fenced publish (see `PublishFence`) whose writer no longer holds the lease:
 *   nothing was appended, and the writer must stop (another holder publishes now).
 */
export type PublishErrorCode = 'redis_unavailable' | 'redis_error' | 'outbox_full' | 'closed' | 'fenced';

/** A publish that did not happen (or whose outcome is unknown); `cause` is the last Redis error. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  readonly code: PublishErrorCode;
  /** Attempts made, the first included. */
  readonly attempts: number;
  /**
   * Redis may have stored the event after all: an attempt was sent and no answer came (it timed
   * out, or the connection was lost once the command was written; Redis may also run it late).
   * Publishing it again may then store it twice: look first (e.g. `RedisStreamReader`), or make
   * the event harmless to receive twice. False when every attempt was refused by Redis or failed
   * before it was written (nothing reached Redis). The message ends "(the event may be stored)"
   * when true.
   */
  readonly maybeStored: boolean;

  constructor(
    code: PublishErrorCode,
    message: string,
    options: { cause?: unknown; attempts?: number; maybeStored?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.attempts = options.attempts ?? 0;
    this.maybeStored = options.maybeStored ?? false;
  }
}
