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

/** Adapts a `ws` WebSocket. */
export function fromWs(ws: WebSocket): GatewaySocket {
  return {
    get isOpen() {
      return ws.readyState === ws.OPEN;
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    ping: () => ws.ping(),
  };
}
