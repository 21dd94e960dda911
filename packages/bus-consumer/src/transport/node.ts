// Node: the `ws` package. The only file of the client that imports it.
import WebSocket from 'ws';
import type { WebSocketConstructor } from './socket';

/** `ws`'s WebSocket, which adds protocol pings and the HTTP answer to a refused upgrade. */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;
