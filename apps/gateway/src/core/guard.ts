import { CloseCode } from '@livebus/protocol';
import type { Logger } from '../logger';
import type { Connection } from './session';

/**
 * Last resort: whatever a handler throws (or rejects with) ends only its own socket,
 * with 1011, and is logged as `ws_handler_error`; the process keeps serving.
 */
export function guarded(logger: Logger, conn: Connection, where: string, run: () => void | Promise<void>): void {
  try {
    const result = run();
    // A closure only for a handler that returned a promise (most return nothing).
    if (result) result.catch((error: unknown) => handlerFailed(logger, conn, where, error));
  } catch (error) {
    handlerFailed(logger, conn, where, error);
  }
}

/** What {@link guarded} does with a handler's error; for handlers guarded inline on hot paths. */
export function handlerFailed(logger: Logger, conn: Connection, where: string, error: unknown): void {
  logger.error('ws_handler_error', {
    where,
    uid: conn.session?.uid,
    session_id: conn.session?.id,
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  try {
    conn.close(CloseCode.InternalError, 'internal error');
  } catch {
    conn.terminate();
  }
}
