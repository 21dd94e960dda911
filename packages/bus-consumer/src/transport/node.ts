// Node: the `ws` package. The only file of the client that imports it.
import WebSocket from 'ws';
import { type ListenSocket, listenOnEvents, PROTOCOL_PING, type WebSocketConstructor } from './socket';

/**
 * `ws`'s WebSocket, which adds protocol pings and the HTTP answer to a refused upgrade. It does
 * not offer permessage-deflate: the gateway never accepts it (its frames are small JSON), and
 * the offer costs `ws` work on every connect (the extension header written, an object made).
 */
export const NodeWebSocket = Object.assign(
  function NodeWebSocket(url: string, protocols?: string[]) {
    return new WebSocket(parsed(url) ?? url, protocols, WS_OPTIONS);
  },
  { [PROTOCOL_PING]: true },
) as unknown as WebSocketConstructor;

/** How long a closing socket waits for the gateway's close frame (ms). */
export const CLOSE_TIMEOUT_MS = 1_000;

/**
 * Read by `ws` (copied into its own options), never changed. `closeTimeout`: how long `close()`
 * waits for the gateway's answer before ending the socket. `ws`'s 30 s, on a gateway that cannot
 * answer (gone, a dropped network), kept a Node process from exiting that long after `close()`.
 */
const WS_OPTIONS = { perMessageDeflate: false, closeTimeout: CLOSE_TIMEOUT_MS };

/** The URL last opened, parsed: `ws` parses a string on every connect, and reads (never changes) a URL it is given. */
let last: { url: string; parsed: URL } | undefined;

/** `url` parsed, once while it stays the same; undefined when it does not parse (`ws` then says why). */
function parsed(url: string): URL | undefined {
  // A URL object from a JavaScript caller goes to ws as it is (it may be changed between connects).
  if (typeof url !== 'string') return undefined;
  if (last?.url === url) return last.parsed;
  try {
    last = { url, parsed: new URL(url) };
  } catch {
    return undefined;
  }
  return last.parsed;
}

/**
 * A `ws` socket's opening, messages and close through its own events, which hand the data over
 * as is, where `onopen`, `onmessage` and `onclose` first wrap each listener and build an event
 * object for each call; text as a string and the close reason as a string, as those give them.
 * A `ws` socket given through the `WebSocket` option (its class or a subclass) is listened to the
 * same way; any other socket through `onopen`, `onmessage` and `onclose`.
 */
export const listenNodeSocket: ListenSocket = (socket, listener) => {
  if (!(socket instanceof WebSocket)) return listenOnEvents(socket, listener);
  socket.on('open', () => listener.open());
  socket.on('message', (data, isBinary) => listener.message(isBinary ? data : data.toString()));
  // An 'error' always comes with a close, which carries the code; without a listener ws would throw it.
  socket.on('error', ignore);
  socket.on('close', (code, reason) => listener.close(code, reason.toString()));
};

const ignore = () => {};
