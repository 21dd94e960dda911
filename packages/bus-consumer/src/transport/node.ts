// Node: the `ws` package. The only file of the client that imports it.
import WebSocket from 'ws';
import { type ListenMessages, listenOnMessage, type WebSocketConstructor } from './socket';

/**
 * `ws`'s WebSocket, which adds protocol pings and the HTTP answer to a refused upgrade. It does
 * not offer permessage-deflate: the gateway never accepts it (its frames are small JSON), and
 * the offer costs `ws` work on every connect (the extension header written, an object made).
 */
export const NodeWebSocket = function NodeWebSocket(url: string) {
  return new WebSocket(url, { perMessageDeflate: false });
} as unknown as WebSocketConstructor;

/**
 * A `ws` socket's messages through its own `message` event, which hands the data over as is,
 * where `onmessage` first builds a MessageEvent for each; text as a string, as `onmessage`
 * gives it. Any other socket (a `WebSocket` option) through `onmessage`.
 */
export const listenNodeMessages: ListenMessages = (socket, listener) => {
  if (!(socket instanceof WebSocket)) return listenOnMessage(socket, listener);
  socket.on('message', (data, isBinary) => listener(isBinary ? data : data.toString()));
};
