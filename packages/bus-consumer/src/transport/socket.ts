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

/** What the client hears from a socket: that it opened, each message's data, and its close. */
export interface SocketListener {
  open(): void;
  /** A string for a text message, bytes for a binary one. */
  message(data: unknown): void;
  close(code: number, reason: string): void;
}

/** Hands a socket's opening, messages and close to `listener` (set once, on a new socket). */
export type ListenSocket = (socket: WebSocketLike, listener: SocketListener) => void;

/** Through `onopen`, `onmessage` and `onclose`, which every WebSocket has (browsers' and the `WebSocket` option's). */
export const listenOnEvents: ListenSocket = (socket, listener) => {
  socket.onopen = () => listener.open();
  socket.onmessage = (event) => listener.message(event.data);
  socket.onerror = () => {
    // A close event always follows; it carries the code.
  };
  socket.onclose = (event) => listener.close(event.code, event.reason);
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
