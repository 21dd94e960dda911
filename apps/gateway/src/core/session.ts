import type { Cursor, DisconnectReason, ServerFrame } from '@livebus/protocol';
import { formatCursor, parseCursor, serializeFrame } from '@livebus/protocol';
import type { Principal } from '../auth/authenticator';
import type { LiveEvent } from '../fleet/bus/event-bus';
import type { TokenBucket } from './rate-limiter';
import { fromSmallTime, toSmallTime } from './small-times';
import type { GatewaySocket } from './socket';

/** Why the server ended a connection, when the close code alone does not say (terminate is seen as 1006). */
export type LocalCloseReason = Extract<
  DisconnectReason,
  'ping_timeout' | 'slow_consumer' | 'service_restart' | 'rate_limited' | 'token_expired'
>;

/** State of one WebSocket connection, from upgrade to close. */
export class Connection {
  readonly socket: GatewaySocket;
  /** The `Authorization: Bearer` token, until the hello is verified (not kept for the connection's life). */
  bearer: string | undefined;
  /** Stored small (small-times.ts): no number object per connection. */
  #lastSeen = toSmallTime(Date.now());
  /**
   * `handshake` until a hello comes, `authenticating` while its token is checked, `admitting`
   * while the fleet admits it (presence), `open` from the session's start (its welcome waits for
   * the bus subscription and the reads; until then the handshake timer runs), `closed`.
   */
  phase: 'handshake' | 'authenticating' | 'admitting' | 'open' | 'closed' = 'handshake';
  session: Session | undefined;
  localCloseReason: LocalCloseReason | undefined;
  /**
   * Frames that arrived between the hello and the welcome; processed, in order, once the welcome
   * is out. Made at the first such frame, or when the session opens (held from then until the welcome).
   */
  early: Buffer[] | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  /**
   * The connection's token bucket, made at its first frame after the hello (when rate limiting is on) and
   * dropped by the heartbeat once it has refilled: a full bucket is the same as a new one,
   * and an idle connection then keeps none (about 64 bytes for its life).
   */
  limiter: TokenBucket | undefined;
  /** Frames refused by the limiter since its bucket was last full (the flood's refusals). */
  refused = 0;
  /** The client asked for app-level `ping` frames (it cannot see protocol pings). */
  appPing = false;

  /** When the peer was last heard from (a frame, a pong), in ms since the epoch. */
  get lastSeen(): number {
    return fromSmallTime(this.#lastSeen);
  }

  set lastSeen(ms: number) {
    this.#lastSeen = toSmallTime(ms);
  }

  constructor(socket: GatewaySocket, bearer: string | undefined, limiter?: TokenBucket) {
    this.socket = socket;
    this.bearer = bearer;
    this.limiter = limiter;
  }

  /** Sends a frame (validated by the protocol); returns false when the socket is not open. */
  send(frame: ServerFrame): boolean {
    return this.sendText(serializeFrame(frame));
  }

  /**
   * Sends a frame the gateway built from its own typed values (the welcome), serialised
   * without the protocol's validation: checking the welcome with zod was a tenth of a
   * hello's CPU in a reconnect storm. Frames that carry anything from outside (an app's
   * RPC result, a client's input) go through {@link send}.
   */
  sendTrusted(frame: ServerFrame): boolean {
    return this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): boolean {
    if (!this.socket.isOpen) return false;
    this.socket.send(text);
    return true;
  }

  /**
   * The one way the server ends a connection. `local` names the reason when the
   * code alone would not (a terminated socket is observed as 1006). The first
   * reason given wins; the close reason on the wire never carries internal detail.
   */
  close(code: number, reason: string, local?: LocalCloseReason): void {
    if (local && !this.localCloseReason) this.localCloseReason = local;
    if (this.socket.isOpen) this.socket.close(code, reason);
  }

  /** Drops the connection without a close handshake (a dead or stuck peer). */
  terminate(local?: LocalCloseReason): void {
    if (local && !this.localCloseReason) this.localCloseReason = local;
    this.socket.terminate();
  }
}

/** An authenticated connection: a user's tab or process. */
export class Session {
  readonly id: string;
  /** Replaced when the client sends a fresh token for the same user (`auth` frame). */
  principal: Principal;
  readonly route: string;
  readonly connection: Connection;
  /**
   * Position of the last event written to this session, taken apart once so
   * fan-out compares numbers: events of this epoch at or below `offset` are
   * duplicates. `epoch` undefined: no position (every event is new).
   */
  epoch: string | undefined;
  offset = 0;
  /** Live events that arrived while the replay was being prepared, flushed after it. */
  pending: LiveEvent[] | undefined = [];
  /**
   * A newer session of the same id opened on this instance in its place: that one holds its
   * presence entry, and closed it with the listeners manager. Its close leaves both alone.
   */
  replaced = false;
  /**
   * The session id's registry entry (`RegistrySession` JSON) as this instance last saw it: read
   * with the hello's presence write, then what `REGISTRY.register_user` and `unregister_session`
   * do through this instance. Written back with the presence entry when a stall expired both.
   */
  registration: string | undefined = undefined;

  constructor(id: string, principal: Principal, route: string, connection: Connection, lastCursor: Cursor | undefined) {
    this.id = id;
    this.principal = principal;
    this.route = route;
    this.connection = connection;
    this.lastCursor = lastCursor;
  }

  /** Cursor of the last event written to this session; later duplicates are dropped. */
  get lastCursor(): Cursor | undefined {
    return this.epoch === undefined ? undefined : formatCursor(this.epoch, this.offset);
  }

  /** A cursor that is not one (cannot be ordered) clears the position, as comparing it would. */
  set lastCursor(cursor: Cursor | undefined) {
    const at = cursor === undefined ? undefined : parseCursor(cursor);
    this.epoch = at?.epoch;
    this.offset = at?.offset ?? 0;
  }

  get uid(): string {
    return this.principal.uid;
  }
}
