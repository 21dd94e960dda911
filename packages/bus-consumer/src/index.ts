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

// Named by the JSON fields of RPC results: a library wrapping the client can emit declarations (TS2742).
export type { JsonValue } from '@livebus/protocol/client';
// The class the client throws and reports (protocol checks): `instanceof` works whichever build loaded it.
export { FrameError } from '@livebus/protocol/client';
export { type Backoff, fullJitterBackoff } from './backoff';
export type { ConsumerCounters, ConsumerEvents, ConsumerState, EventOf, GroupOptions } from './consumer';
export { ConnectError, type ConnectErrorCode, FatalCloseError, RpcError } from './errors';
export { type ConsumerOptions, consumerDefaults } from './options';
export type { WebSocketLike } from './transport/socket';
