// Browser entry: the global WebSocket, app-level ping frames (browsers cannot send protocol pings).
import { BusConsumer as Core } from './consumer';
import type { ConsumerOptions } from './options';
import { globalWebSocket, onWake } from './transport/browser';

/** The livebus client for browsers (uses the global WebSocket). */
export class BusConsumer extends Core {
  constructor(options: ConsumerOptions) {
    super(options, globalWebSocket(), undefined, onWake);
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
