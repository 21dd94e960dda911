// Node entry: `ws` (through transport/node) is the default WebSocket.
import { BusConsumer as Core } from './consumer';
import type { ConsumerOptions } from './options';
import { listenNodeSocket, NodeWebSocket } from './transport/node';

/** The livebus client for Node (uses `ws`, with protocol pings). */
export class BusConsumer extends Core {
  constructor(options: ConsumerOptions) {
    super(options, NodeWebSocket, listenNodeSocket);
  }
}

// The class the client throws and reports (protocol checks): `instanceof` works whichever build loaded it.
export { FrameError } from '@livebus/protocol/client';
export { type Backoff, fullJitterBackoff } from './backoff';
export type { ConsumerCounters, ConsumerEvents, ConsumerState, EventOf, GroupOptions } from './consumer';
export { ConnectError, type ConnectErrorCode, FatalCloseError, RpcError } from './errors';
export { type ConsumerOptions, consumerDefaults } from './options';
export type { WebSocketLike } from './transport/socket';
