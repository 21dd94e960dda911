// The socket the client talks through, whatever provides it: `ws` in Node, the global WebSocket in browsers.

/**
 * The part of the WebSocket API the client uses: the browser's global
 * WebSocket and the `ws` package both provide it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A constructor of sockets, like `WebSocket` (the client opens one per connection attempt). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Hands each message's data to `listener`: a string for a text message, bytes for a binary one. */
export type ListenMessages = (socket: WebSocketLike, listener: (data: unknown) => void) => void;

/** Through `onmessage`, which every WebSocket has (browsers' and the `WebSocket` option's). */
export const listenOnMessage: ListenMessages = (socket, listener) => {
  socket.onmessage = (event) => listener(event.data);
};

/** The HTTP answer to an upgrade that was not `101` (what `ws` hands to `unexpected-response`). */
export interface UpgradeRefusal {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  resume?(): void;
}

/**
 * `ws` sockets can send protocol pings, report pongs, and show the HTTP answer to a
 * refused upgrade (a gateway under admission control: `503` + `Retry-After`); browsers cannot.
 */
export interface NodeSocketExtras {
  ping(): void;
  terminate(): void;
  on(event: 'pong' | 'ping', listener: () => void): unknown;
  on(event: 'unexpected-response', listener: (request: unknown, response: UpgradeRefusal) => void): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

/**
 * Whether the socket can send protocol pings and see the peer's (`ws` in Node). Browsers'
 * cannot: such a client asks the gateway for app-level `ping` frames (`hello.app_ping`).
 */
export function hasProtocolPing(socket: WebSocketLike): socket is WebSocketLike & NodeSocketExtras {
  const s = socket as Partial<NodeSocketExtras>;
  return typeof s.ping === 'function' && typeof s.on === 'function' && typeof s.terminate === 'function';
}

/** WebSocket readyState OPEN. */
export const OPEN = 1;
