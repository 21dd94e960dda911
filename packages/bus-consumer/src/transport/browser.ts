// Browsers: the global WebSocket (no `ws`, no protocol pings).
import type { WebSocketConstructor } from './socket';

/**
 * The global WebSocket, or undefined where there is none (the client then needs the
 * `WebSocket` option). Read when a client is built, not when this module loads, so a
 * polyfill installed after the import still counts.
 */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/**
 * Calls `wake` when the browser is back online or the page is shown again (where there is a
 * `document`: not in a worker); returns the function that stops listening.
 */
export function onWake(wake: () => void): () => void {
  const win = globalThis as Partial<EventTarget>;
  const doc = (globalThis as { document?: EventTarget & { visibilityState?: string } }).document;
  const shown = () => {
    if (doc?.visibilityState === 'visible') wake();
  };
  win.addEventListener?.('online', wake);
  doc?.addEventListener('visibilitychange', shown);
  return () => {
    win.removeEventListener?.('online', wake);
    doc?.removeEventListener('visibilitychange', shown);
  };
}
