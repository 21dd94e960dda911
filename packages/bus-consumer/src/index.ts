// Node entry: `ws` is the default WebSocket.
import WebSocket from 'ws';
import { BusConsumer as Core } from './consumer';
import type { ConsumerOptions } from './options';
import type { WebSocketLike } from './transport';

/** The livebus client for Node (uses `ws`, with protocol pings). */
export class BusConsumer extends Core {
  constructor(options: ConsumerOptions) {
    super(options, WebSocket as unknown as new (url: string) => WebSocketLike);
  }
}

export { type Backoff, fullJitterBackoff } from './backoff';
export type { ConsumerCounters, ConsumerEvents, ConsumerState, EventOf, GroupOptions } from './consumer';
export { ConnectError, type ConnectErrorCode, FatalCloseError, RpcError } from './errors';
export { type ConsumerOptions, consumerDefaults } from './options';
export type { WebSocketLike } from './transport';
