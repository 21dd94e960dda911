import type { Cursor, DisconnectReason, ServerFrame } from '@livebus/protocol';
import { serializeFrame } from '@livebus/protocol';
import type { WebSocket } from 'ws';
import type { Principal } from './auth/authenticator';
import type { StoredEvent } from './bus/event-bus';
import type { TokenBucket } from './rate-limiter';

/** Why the server ended a connection, when the close code alone does not say (terminate is seen as 1006). */
export type LocalCloseReason = Extract<
  DisconnectReason,
  'ping_timeout' | 'slow_consumer' | 'service_restart' | 'rate_limited'
>;

/** State of one WebSocket connection, from upgrade to close. */
export class Connection {
  readonly ws: WebSocket;
  readonly bearer: string | undefined;
  lastSeen = Date.now();
  phase: 'handshake' | 'authenticating' | 'open' | 'closed' = 'handshake';
  session: Session | undefined;
  localCloseReason: LocalCloseReason | undefined;
  /** Frames that arrived while the hello was being verified; processed once the session opens. */
  readonly early: Buffer[] = [];
  handshakeTimer: NodeJS.Timeout | undefined;
  /** Undefined when rate limiting is off. */
  readonly limiter: TokenBucket | undefined;
  /** Frames refused by the limiter since the last accepted one. */
  refused = 0;

  constructor(ws: WebSocket, bearer: string | undefined, limiter?: TokenBucket) {
    this.ws = ws;
    this.bearer = bearer;
    this.limiter = limiter;
  }

  /** Sends a frame (validated by the protocol); returns false when the socket is not open. */
  send(frame: ServerFrame): boolean {
    return this.sendText(serializeFrame(frame));
  }

  sendText(text: string): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.send(text);
    return true;
  }
}

/** An authenticated connection: a user's tab or process. */
export class Session {
  readonly id: string;
  readonly principal: Principal;
  readonly route: string;
  readonly connection: Connection;
  /** Cursor of the last event written to this session; later duplicates are dropped. */
  lastCursor: Cursor | undefined;
  /** Live events that arrived while the replay was being prepared, flushed after it. */
  pending: StoredEvent[] | undefined = [];

  constructor(id: string, principal: Principal, route: string, connection: Connection, lastCursor: Cursor | undefined) {
    this.id = id;
    this.principal = principal;
    this.route = route;
    this.connection = connection;
    this.lastCursor = lastCursor;
  }

  get uid(): string {
    return this.principal.uid;
  }
}
