import type { RawData, WebSocket } from 'ws';
import type { CoreSocket } from '../core/socket';

/**
 * Adapts a `ws` WebSocket to the core's {@link CoreSocket}. One small object of a
 * class per connection: an object literal with getters and six arrow functions cost
 * about 800 bytes per connection more (a dictionary-mode object, a closure per method
 * and their context).
 */
export class WsGatewaySocket implements CoreSocket {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('error', () => {
      // 'close' follows; oversize frames surface here as RangeError and close with 1009.
    });
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

  onMessage(listener: (data: Buffer, isBinary: boolean) => void): void {
    // The server keeps ws's default binaryType ('nodebuffer'): every message is one Buffer.
    // Passed as is: a wrapping closure would cost every connection its bytes for nothing.
    this.#ws.on('message', listener as (data: RawData, isBinary: boolean) => void);
  }

  onAlive(listener: () => void): void {
    this.#ws.on('pong', listener);
    this.#ws.on('ping', listener);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#ws.on('close', (code, reason) => listener(code, reason.toString()));
  }
}

/** Adapts a `ws` WebSocket. */
export function fromWs(ws: WebSocket): CoreSocket {
  return new WsGatewaySocket(ws);
}
