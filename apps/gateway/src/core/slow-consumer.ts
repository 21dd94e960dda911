import { CloseCode } from '@livebus/protocol';
import type { Logger } from '../logger';
import type { Connection } from './session';

/**
 * Whether the client has stopped reading what it is sent: more than `maxBufferedBytes` queued
 * for its socket. Checked before each live event (session-hub.ts) and before the gateway
 * answers a frame (frames.ts), so that neither events nor replies pile up in memory.
 */
export function readsTooSlowly(conn: Connection, maxBufferedBytes: number): boolean {
  return conn.socket.bufferedAmount > maxBufferedBytes;
}

/** Closes a client that does not read what it is sent: 4007, logged once (`ws_slow_consumer`). */
export function closeSlowConsumer(logger: Logger, conn: Connection): void {
  if (conn.localCloseReason) return;
  logger.warn('ws_slow_consumer', {
    uid: conn.session?.uid,
    session_id: conn.session?.id,
    buffered_bytes: conn.socket.bufferedAmount,
  });
  conn.close(CloseCode.SlowConsumer, 'slow consumer', 'slow_consumer');
  // The close frame waits behind the full buffer; do not wait for it forever.
  setTimeout(() => conn.terminate(), 1_000).unref();
}
