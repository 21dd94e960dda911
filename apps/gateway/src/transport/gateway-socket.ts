import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { CoreSocket, SocketEvents } from '../core/socket';

/** Where a `ws` WebSocket keeps its adapter (one property, instead of a closure per event). */
const ADAPTER = Symbol('livebus.adapter');
type AdaptedWs = WebSocket & { [ADAPTER]?: WsGatewaySocket };

/*
 * The listeners every adapted WebSocket shares: `ws` calls them with the WebSocket as
 * `this`, and they find the adapter on it. A closure per event and connection (message,
 * ping/pong, close, error) cost each connection about 300 bytes for its life.
 */
function onMessage(this: AdaptedWs, data: RawData, isBinary: boolean): void {
  const a = this[ADAPTER];
  // The server keeps ws's default binaryType ('nodebuffer'): every message is one Buffer.
  a?.events?.message(a.target, data as Buffer, isBinary);
}

function onAlive(this: AdaptedWs): void {
  const a = this[ADAPTER];
  a?.events?.alive(a.target);
}

function onClose(this: AdaptedWs, code: number, reason: Buffer): void {
  const a = this[ADAPTER];
  a?.events?.close(a.target, code, reason.toString());
}

function onError(): void {
  // 'close' follows; oversize frames surface here as RangeError and close with 1009.
}

/** `ws` send options of a text frame given as bytes (a Buffer is sent as binary otherwise). */
const TEXT_FRAME = { binary: false } as const;

/** TCP sockets corked in this tick, uncorked together at its end: one `nextTick` for all of them. */
let corked: Socket[] = [];

function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}

/**
 * Adapts a `ws` WebSocket to the core's {@link CoreSocket}. One small object of a
 * class per connection: an object literal with getters and six arrow functions cost
 * about 800 bytes per connection more (a dictionary-mode object, a closure per method
 * and their context).
 */
export class WsGatewaySocket implements CoreSocket {
  readonly ws: WebSocket;
  /** What the core registered (see {@link listen}); read by the shared listeners above. */
  target: unknown;
  events: SocketEvents<unknown> | undefined;

  constructor(ws: WebSocket) {
    this.ws = ws;
    (ws as AdaptedWs)[ADAPTER] = this;
    ws.on('error', onError);
  }

  get isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Frames written in one turn of the event loop leave in one `writev`: the first write
   * corks the TCP socket and the end of the current tick uncorks it. A Redis read that
   * carries several events of one user (a busy fan-out) makes one system call per socket
   * instead of one per event. One `nextTick` uncorks every socket written in the tick.
   */
  send(text: string): void {
    this.#corkForTick();
    this.ws.send(text);
  }

  /** A text frame given as UTF-8 bytes: no string to measure and encode again on the way out. */
  sendBytes(bytes: Buffer): void {
    this.#corkForTick();
    this.ws.send(bytes, TEXT_FRAME);
  }

  #corkForTick(): void {
    const socket = (this.ws as unknown as { _socket: Socket | null })._socket;
    if (socket && socket.writableCorked === 0) {
      socket.cork();
      if (corked.push(socket) === 1) process.nextTick(uncorkAll);
    }
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  ping(): void {
    this.ws.ping();
  }

  listen<T>(target: T, events: SocketEvents<T>): void {
    this.target = target;
    this.events = events as SocketEvents<unknown>;
    this.ws.on('message', onMessage);
    this.ws.on('pong', onAlive);
    this.ws.on('ping', onAlive);
    this.ws.on('close', onClose);
  }
}

/** Adapts a `ws` WebSocket. */
export function fromWs(ws: WebSocket): CoreSocket {
  return new WsGatewaySocket(ws);
}
