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
  /** Starts the close handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a close handshake. */
  terminate(): void;
  /** A protocol-level ping (the peer's WebSocket stack answers it). */
  ping(): void;
}

/** A socket as the core receives it: writable ({@link GatewaySocket}) and with its events. */
export interface CoreSocket extends GatewaySocket {
  /** Each message from the peer; `isBinary` for binary frames (which the protocol refuses). */
  onMessage(listener: (data: Buffer, isBinary: boolean) => void): void;
  /** A protocol-level ping or pong from the peer: a sign of life that carries no frame. */
  onAlive(listener: () => void): void;
  /** Once, when the connection has closed (either side), with the close code and reason seen. */
  onClose(listener: (code: number, reason: string) => void): void;
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
}
