/**
 * What the session core needs of a connection: the core (handshake, frames, sessions,
 * fan-out) speaks to this and knows nothing of `ws` or HTTP; transport/ws.ts adapts a
 * `ws` WebSocket to it, and the core's unit tests drive it with a fake. Model:
 * graphql-ws `makeServer().opened(socket)` with `use/ws.ts` holding what is `ws`-specific.
 */
export interface GatewaySocket {
  /** Whether frames can still be written. */
  readonly isOpen: boolean;
  /** Bytes queued but not yet written to the network (slow consumer detection). */
  readonly bufferedAmount: number;
  send(text: string): void;
  /** A text frame given as its UTF-8 bytes, written as they are; unset: {@link send} serves. */
  sendBytes?(bytes: Buffer): void;
  /** Starts the close handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a close handshake. */
  terminate(): void;
  /** A protocol-level ping (the peer's WebSocket stack answers it). */
  ping(): void;
  /**
   * The handshake is over (welcome sent, or the hello failed): writes what the transport held back
   * until then (the upgrade's answer, so that it leaves with the welcome in one write).
   */
  flush?(): void;
}

/**
 * What the core hears from a socket, as functions shared by every socket of a handler:
 * each gets the `target` it was registered with (the core's connection), so a connection
 * carries no closure of its own for its events (three closures and their context were
 * about 300 bytes per connection, for hours).
 */
export interface SocketEvents<T> {
  /** Each message from the peer; `isBinary` for binary frames (which the protocol refuses). */
  message(target: T, data: Buffer, isBinary: boolean): void;
  /** A protocol-level ping or pong from the peer: a sign of life that carries no frame. */
  alive(target: T): void;
  /** Once, when the connection has closed (either side), with the close code and reason seen. */
  close(target: T, code: number, reason: string): void;
}

/** A socket as the core receives it: writable ({@link GatewaySocket}) and with its events. */
export interface CoreSocket extends GatewaySocket {
  /** Registers the core's handlers of this socket's events, once; `target` is handed to each call. */
  listen<T>(target: T, events: SocketEvents<T>): void;
}

/**
 * Where a connection came from: the request that opened it. Read once when the core
 * accepts the socket and not kept (a connection holds no copy of its request headers).
 */
export interface SocketRequest {
  /** Header names in lower case, as Node gives them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The peer's address (or the proxy's); undefined when the socket no longer knows it. */
  readonly remoteAddress: string | undefined;
  /** The hello frame's text when the client carried it in the upgrade; the first frame otherwise. */
  readonly hello?: Buffer | undefined;
}
