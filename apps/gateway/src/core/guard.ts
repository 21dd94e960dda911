import { CloseCode } from '@livebus/protocol';
import type { Logger } from '../logger';
import type { Connection } from './session';

/**
 * Last resort: whatever a handler throws (or rejects with) ends only its own socket,
 * with 1011, and is logged as `ws_handler_error`; the process keeps serving.
 */
export function guarded(logger: Logger, conn: Connection, where: string, run: () => void | Promise<void>): void {
  const fail = (error: unknown) => {
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
  };
  try {
    const result = run();
    if (result) result.catch(fail);
  } catch (error) {
    fail(error);
  }
}
