// Node only: what the HTTP answer to a refused upgrade means (browsers hide it).
import { retryAfterDelayMs } from '../retry-after';
import type { NodeSocketExtras, UpgradeRefusal } from './socket';

/** What a refused upgrade means for the client: wait and retry, or stop (retrying cannot help). */
export type UpgradeVerdict =
  | { fatal: false; status: number; retryAfterMs: number | undefined }
  | { fatal: true; status: number; location: string | undefined };

/**
 * Judges the HTTP answer to an upgrade. 5xx (a gateway draining, or under
 * admission control with `Retry-After`), 429 and 408 are passing trouble: retry,
 * after the `Retry-After` when there is one. Any other 4xx (404: a wrong path; 403:
 * an origin not allowed), 3xx (a redirect, which WebSockets do not follow) and 2xx
 * (a web server that does not speak WebSocket) will be answered the same way every
 * time: fatal. Pure, so it can be tested.
 */
export function judgeUpgradeRefusal(refusal: UpgradeRefusal): UpgradeVerdict {
  const status = refusal.statusCode ?? 0;
  const transient = status >= 500 || status === 429 || status === 408 || status === 0;
  if (transient) return { fatal: false, status, retryAfterMs: retryAfterDelayMs(refusal.headers['retry-after']) };
  const location = refusal.headers.location;
  return { fatal: true, status, location: Array.isArray(location) ? location[0] : location };
}

/**
 * Node only (browsers hide the answer to a failed upgrade): hands the verdict on a
 * refused upgrade to `listener`, then ends the attempt. With this listener `ws` no
 * longer aborts the handshake itself; terminate() does, and the close (1006) that
 * follows reaches the client's `onclose` like any failed attempt.
 */
export function onUpgradeRefused(socket: NodeSocketExtras, listener: (verdict: UpgradeVerdict) => void): void {
  socket.on('unexpected-response', (_request, response) => {
    listener(judgeUpgradeRefusal(response));
    response.resume?.();
    socket.terminate();
  });
}

/**
 * Whether a `ws` socket's error says the TCP connection was never made: refused (nothing
 * listens: a gateway restarting in place), unreachable, timed out, or no DNS answer. No
 * gateway saw such an attempt. Pure, so it can be tested.
 */
export function neverConnected(error: unknown): boolean {
  const syscall = (error as { syscall?: unknown } | null | undefined)?.syscall;
  return syscall === 'connect' || syscall === 'getaddrinfo';
}

/** Node only: calls `listener` when the attempt fails before its TCP connection was made. */
export function onNeverConnected(socket: NodeSocketExtras, listener: () => void): void {
  socket.on('error', (error) => {
    if (neverConnected(error)) listener();
  });
}
