import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { CoreSocket, SocketEvents } from '../core/socket';

/**
 * The server's WebSocket (the `WebSocket` option of its `WebSocketServer`): `ws` reports a
 * connection's message, ping, pong, close and error through `emit`, and this one hands them
 * to its adapter directly. No listener is registered per connection: five of them (message,
 * ping, pong, close, error) grew each WebSocket's table of listeners by about 100 bytes
 * over plain `ws`'s one or two, for the connection's life. Listeners added with `on` (none
 * in the gateway) still hear every event; an 'error' nobody listens to is dropped ('close'
 * follows it; oversize frames surface there as RangeError and close with 1009).
 */
export class GatewayWebSocket extends WebSocket {
  /** Set by {@link WsGatewaySocket.listen}: where the events go. */
  adapter: WsGatewaySocket | undefined = undefined;

  /**
   * `ws` closes a socket itself too (the peer's close frame, a frame it refuses): whatever the
   * upgrade held back (see {@link WsGatewaySocket.held}) leaves with the close frame, whose write
   * the close handshake waits for.
   */
  override close(code?: number, data?: string | Buffer): void {
    super.close(code, data);
    this.adapter?.flush();
  }

  // Not `...args`: an array per event (the open, every message, the close). ws's server-side
  // events carry at most two arguments; listeners added with `on` get them as ws sends them.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const adapter = this.adapter;
    const events = adapter?.events;
    if (events) {
      switch (event) {
        case 'message':
          // The server keeps ws's default binaryType ('nodebuffer'): every message is one Buffer.
          events.message(adapter.target, a as Buffer, b as boolean);
          releaseReadChunks(this);
          break;
        case 'ping':
        case 'pong':
          events.alive(adapter.target);
          break;
        case 'close':
          events.close(adapter.target, a as number, (b as Buffer).toString());
          break;
      }
    }
    // An 'error' nobody listens to is dropped (EventEmitter would throw it); no listener, nothing to tell.
    if (this.listenerCount(event) === 0) return false;
    switch (event) {
      case 'open':
        return super.emit(event);
      case 'ping':
      case 'pong':
      case 'error':
      case 'upgrade':
        return super.emit(event, a);
      default:
        return super.emit(event, a, b);
    }
  }
}

/**
 * `ws`'s receiver queues the chunks it reads in an array that its first message (the
 * hello) grows to 17 slots, about 150 bytes it then keeps for the connection's life; plain
 * `ws` servers whose clients never send anything never grow it. Once a message is handled
 * and nothing more is queued, the array is swapped for an empty one (the receiver reads
 * the property afresh each time it uses it).
 */
function releaseReadChunks(ws: WebSocket): void {
  const receiver = (ws as unknown as { _receiver?: { _buffers?: unknown[] } | null })._receiver;
  if (receiver?._buffers?.length === 0) receiver._buffers = [];
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
  readonly ws: GatewayWebSocket;
  /** What the core registered (see {@link listen}); read by {@link GatewayWebSocket.emit}. */
  target: unknown;
  events: SocketEvents<unknown> | undefined;
  /**
   * The TCP socket is corked since the upgrade (its `101` held back) so that the `101` and the
   * welcome leave in one write, when the hello came with the upgrade (ws.ts); {@link flush} ends it.
   */
  held = false;

  constructor(ws: GatewayWebSocket) {
    this.ws = ws;
    ws.adapter = this;
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

  /** Writes what the upgrade held back (see {@link held}), with whatever was sent since. */
  flush(): void {
    if (!this.held) return;
    this.held = false;
    (this.ws as unknown as { _socket: Socket | null })._socket?.uncork();
  }

  /** Also writes what the upgrade held back ({@link GatewayWebSocket.close} flushes). */
  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.flush();
    this.ws.terminate();
  }

  ping(): void {
    this.ws.ping();
  }

  listen<T>(target: T, events: SocketEvents<T>): void {
    this.target = target;
    this.events = events as SocketEvents<unknown>;
  }
}

/** Adapts a WebSocket of the gateway's server. */
export function fromWs(ws: GatewayWebSocket): WsGatewaySocket {
  return new WsGatewaySocket(ws);
}
