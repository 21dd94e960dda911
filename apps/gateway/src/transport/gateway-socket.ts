import type { WebSocket } from 'ws';

/**
 * What the gateway needs of a WebSocket: the protocol core (handshake, sessions,
 * fan-out) speaks to this, and only `fromWs` knows the `ws` library. Model:
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

/**
 * Adapts a `ws` WebSocket. One small object of a class per connection: an
 * object literal with getters and six arrow functions cost about 800 bytes per
 * connection more (a dictionary-mode object, a closure per method and their context).
 */
export class WsGatewaySocket implements GatewaySocket {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === this.#ws.OPEN;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }

  ping(): void {
    this.#ws.ping();
  }
}

/** Adapts a `ws` WebSocket. */
export function fromWs(ws: WebSocket): GatewaySocket {
  return new WsGatewaySocket(ws);
}
