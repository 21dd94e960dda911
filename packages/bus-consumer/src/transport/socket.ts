// The socket the client talks through, whatever provides it: `ws` in Node, the global WebSocket in browsers.
import {
  FRAME_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX,
  MAX_HELLO_PROTOCOL_CHARS,
  UPGRADE_HELLO_PROTOCOL,
} from '@livebus/protocol/client';

/**
 * The part of the WebSocket API the client uses: the browser's global
 * WebSocket and the `ws` package both provide it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected ('' or absent when none). */
  readonly protocol?: string;
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/**
 * A constructor of sockets, like `WebSocket` (the client opens one per connection attempt), with
 * the subprotocols to offer when the hello travels in the upgrade.
 */
export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike;

/** Marks a constructor whose sockets have protocol pings although its prototype does not say so (a factory). */
export const PROTOCOL_PING = Symbol.for('livebus.protocolPing');

/**
 * Whether the sockets `Ctor` makes will have protocol pings (see {@link hasProtocolPing}), known
 * before one is made: the hello, which says whether the gateway must send app-level pings,
 * travels in the upgrade. Unsure (a factory function without {@link PROTOCOL_PING}), it says no: the
 * gateway then sends app-level pings the socket did not need, which costs a small frame and nothing else.
 */
export function makesProtocolPingSockets(Ctor: WebSocketConstructor): boolean {
  if ((Ctor as unknown as Record<symbol, unknown>)[PROTOCOL_PING] === true) return true;
  const proto = (Ctor as { prototype?: Partial<NodeSocketExtras> }).prototype;
  return (
    proto !== undefined &&
    typeof proto.ping === 'function' &&
    typeof proto.on === 'function' &&
    typeof proto.terminate === 'function'
  );
}

/** `text` (UTF-8) in base64url without padding: Buffer where there is one (Node), else btoa. */
function base64url(text: string): string {
  // A browser's Buffer polyfill may lack base64url.
  if (typeof Buffer === 'function' && Buffer.isEncoding?.('base64url'))
    return Buffer.from(text, 'utf8').toString('base64url');
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i] as number);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The subprotocols that carry `hello` (a hello frame's text) in the upgrade, see the protocol's
 * `upgrade-hello.ts`; undefined when it is too long for a header (it then goes as the first frame).
 */
export function upgradeProtocols(hello: string): string[] | undefined {
  const carried = HELLO_PROTOCOL_PREFIX + base64url(hello);
  if (carried.length > MAX_HELLO_PROTOCOL_CHARS) return undefined;
  return [FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL, carried];
}

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
