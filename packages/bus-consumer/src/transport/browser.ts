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
