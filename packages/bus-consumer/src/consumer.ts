// Types from the protocol's root (declarations resolve under any moduleResolution); run-time code from
// its zod-free client entry, so the browser build carries no zod (docs/client.md, "Size of the browser build").
import type {
  AuthFailureReason,
  Cursor,
  DisconnectReason,
  EventFrame,
  EventType,
  HelloFrame,
  NoticeFrame,
  RpcMethod,
  RpcParams,
  RpcResult,
  ServerFrame,
  WelcomeFrame,
} from '@livebus/protocol';
import {
  authFailureReasonOf,
  CloseCode,
  classifyDisconnect,
  PROTOCOL_VERSION,
  parseCursor,
  parseServerFrame,
  reconnectPolicy,
  serializeClientFrame,
  UPGRADE_HELLO_PROTOCOL,
} from '@livebus/protocol/client';
import { type Backoff, fullJitterBackoff, growsBackoff } from './backoff';
import { CallQueue } from './call-queue';
import { Emitter } from './emitter';
import { ConnectError, FatalCloseError, RpcError } from './errors';
import { type EventOf, type GroupOptions, groupedListener } from './grouped-handlers';
import { Heartbeat } from './heartbeat';
import { type ConsumerOptions, type ResolvedOptions, resolveOptions } from './options';
import {
  hasProtocolPing,
  type ListenSocket,
  listenOnEvents,
  makesProtocolPingSockets,
  OPEN,
  upgradeProtocols,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transport/socket';
import { onNeverConnected, onUpgradeRefused } from './transport/upgrade-refusal';

export type { EventOf, GroupOptions } from './grouped-handlers';
export type { ResolvedOptions } from './options';

/** In place of a token: the token is asked for once the socket is open (the hello then goes as a frame). */
const LATER = Symbol('token once open');

const NO_TOKEN = 'getToken returned no token';

/** A session open this long when it ends resets the backoff; one ended sooner lets it grow. */
const STABLE_SESSION_MS = 10_000;

/** Connection state. Changed only by `setState`, which emits `state`. */
export type ConsumerState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Events the client emits. */
export interface ConsumerEvents {
  state: { oldState: ConsumerState; newState: ConsumerState };
  open: WelcomeFrame;
  /** `authReason`: why a 4001 refused the credential, when the gateway said (see `AUTH_FAILURE_REASONS`). */
  close: {
    code: number;
    reason: DisconnectReason;
    willReconnect: boolean;
    delayMs?: number;
    authReason?: AuthFailureReason;
  };
  /** Continuity was lost (events after `lastCursor` are gone): refetch state. */
  gap: { lastCursor: Cursor | undefined; cursor: Cursor };
  notice: NoticeFrame;
  /** The gateway accepted a fresh token (sent in-band after `token_expiring`): the session now lasts until `expiresAtMs`. */
  token_refreshed: { expiresAtMs: number | undefined };
  /** Errors that do not stop the client (a throwing handler) and the fatal one that does. */
  error: Error;
}

/** Counters for dashboards and tests. */
export interface ConsumerCounters {
  connects: number;
  reconnects: number;
  lastCloseCode: number | undefined;
  lastCloseReason: DisconnectReason | undefined;
  eventsReceived: number;
  duplicatesDropped: number;
  rpc: { ok: number; error: number; timeout: number };
}

type Socket = WebSocketLike;

/** Calls `wake` when a reconnect should not wait (browsers: back online, page shown); returns what stops it. */
type OnWake = (wake: () => void) => () => void;

/*
 *   idle --connect()--> connecting --welcome--> open
 *                          ^   |                 |
 *                          |   +---- close ------+--> reconnecting --timer--> connecting
 *                          |                                 |
 *   any --close() / fatal close code--> closed <-------------+
 *
 * While open, `notice token_expiring` → getToken() → `auth` frame on the same
 * socket → `notice token_refreshed`: the state does not change.
 */

/**
 * The livebus client. Reconnects forever with jittered backoff, detects dead
 * peers (ping every 20 s, dead after 60 s of silence, with a grace for
 * throttled timers), resumes from the last event cursor so handlers see every
 * event exactly once and in order, refreshes its token without reconnecting,
 * and offers typed `rpc()` and `on()`.
 *
 * Pieces: {@link Heartbeat} (ping timer and watchdog), {@link CallQueue}
 * (pending RPCs), {@link groupedListener} (batched handlers). Its state lives in one
 * private object, out of reach from outside.
 */
export class BusConsumer {
  readonly #c: Client;

  constructor(
    options: ConsumerOptions,
    defaultWebSocket?: WebSocketConstructor,
    listenSocket: ListenSocket = listenOnEvents,
    onWake?: OnWake,
  ) {
    this.#c = new Client(options, defaultWebSocket, listenSocket, onWake);
  }

  /** The effective options, defaults applied. */
  get options(): Readonly<ResolvedOptions> {
    return this.#c.o;
  }

  /** The connection state; see {@link ConsumerState}. */
  get state(): ConsumerState {
    return this.#c.state;
  }

  /**
   * Cursor of the last event delivered to handlers (persist it to resume after a page reload). It
   * counts events a grouped handler still holds: `close()` first, which hands them over, then read it.
   */
  get lastCursor(): Cursor | undefined {
    return this.#c.lastCursor;
  }

  /** The welcome of the current connection, when open. */
  get session(): WelcomeFrame | undefined {
    return this.#c.welcome;
  }

  /** A snapshot of the counters. */
  get counters(): Readonly<ConsumerCounters> {
    const counters = this.#c.counters;
    return { ...counters, rpc: { ...counters.rpc } };
  }

  /**
   * Starts connecting (no-op unless idle). Resolves when the first session opens; rejects
   * with a {@link ConnectError} when the client stops first: its `code` says why
   * (`token_expired`, `not_livebus_endpoint`, `client_closed`, ...).
   */
  connect(): Promise<void> {
    return this.#c.connect();
  }

  /**
   * Stops for good: closes the socket, cancels timers, fails pending calls, and hands
   * the batches grouped handlers still hold to them now, so no timer is left behind.
   */
  close(): void {
    this.#c.close();
  }

  /** Listens to client events (`state`, `open`, `close`, `gap`, `notice`, `token_refreshed`, `error`). */
  onClient<K extends keyof ConsumerEvents>(event: K, listener: (payload: ConsumerEvents[K]) => void): () => void {
    return this.#c.emitter.on(event, listener);
  }

  /** Handles every event of type `E`; returns the unsubscribe function. */
  on<E extends EventType>(type: E, handler: (data: EventOf<E>['data'], frame: EventOf<E>) => void): () => void;
  /** Handles events of type `E` in batches: those of one key arriving within the window, together. */
  on<E extends EventType>(type: E, handler: (batch: EventOf<E>[]) => void, group: GroupOptions<E>): () => void;
  on<E extends EventType>(
    type: E,
    handler: ((data: EventOf<E>['data'], frame: EventOf<E>) => void) | ((batch: EventOf<E>[]) => void),
    group?: GroupOptions<E>,
  ): () => void {
    return this.#c.on(type, handler, group);
  }

  /** Handles every event, whatever its type. */
  onAny(handler: (frame: EventFrame) => void): () => void {
    return this.#c.onAny(handler);
  }

  /**
   * Calls an RPC method: `rpc("TASK.start_document_analysis", uid, { content }, jobId)`.
   * Arguments and result are typed from the protocol's method table. Rejects with
   * an {@link RpcError}: the gateway's code, or `timeout` / `unavailable` locally.
   */
  rpc<M extends RpcMethod>(method: M, ...args: RpcParams<M>): Promise<RpcResult<M>> {
    return this.#c.rpc(method, args) as Promise<RpcResult<M>>;
  }
}

/**
 * What a {@link BusConsumer} does, behind its one private field: plain properties and methods
 * rather than one `#private` field each, which the browser build (ES2020) would turn into a
 * `WeakMap` and helper calls per field (docs/client.md, "Size of the browser build"). Not
 * exported: only the client reaches it. It owns the socket, the state and the one exit path of
 * a connection, `onSocketClose`.
 */
class Client {
  readonly o: ResolvedOptions;
  readonly emitter = new Emitter<ConsumerEvents>((error, event) => {
    // A throwing `error` listener is not given its own error again (that would never end); an
    // `error` with no listener comes here too, and is reported the same way.
    if (event === 'error') reportUncaught(error);
    else this.emitter.emit('error', toError(error));
  });
  readonly handlers = new Map<string, Set<(frame: EventFrame) => void>>();
  readonly any = new Set<(frame: EventFrame) => void>();
  /** Hand over what each grouped handler holds; `close()` and a fatal stop call them. */
  readonly groupFlushes = new Set<() => void>();
  readonly calls: CallQueue;
  readonly backoff: Backoff;
  /** The built-in backoff: used when the `backoff` option throws or gives no usable delay. */
  readonly fullJitter: Backoff;
  readonly WebSocket: WebSocketConstructor;
  /** How the socket's opening, messages and close reach the client (`ws` has a cheaper way than `onmessage`). */
  readonly listen: ListenSocket;
  readonly wakeOn: OnWake | undefined;
  /** Stops `wakeOn`'s listening; set by connect(), called once the client is closed. */
  offWake: (() => void) | undefined;
  state: ConsumerState = 'idle';
  socket: Socket | undefined;
  /** Identifies the current socket; callbacks from an older one are ignored. */
  connId = 0;
  lastCursor: Cursor | undefined;
  /**
   * `lastCursor` taken apart, set with it by `setCursor`: its epoch (undefined when there is no
   * cursor, or it is not one) and offset. Kept as two fields, so an event's cursor is compared with
   * them without taking it apart into new strings and an object.
   */
  lastEpoch: string | undefined;
  lastOffset = 0;
  attempt = 0;
  /** When the current session was welcomed (`Date.now()`); see {@link STABLE_SESSION_MS}. */
  openedAt: number | undefined;
  /** A refresh_token close was already retried; a welcome resets it, so only back-to-back failures stop. */
  authRetried = false;
  reconnectHintMs: number | undefined;
  /**
   * The connection whose token refresh is under way (getToken called, the gateway's answer not
   * yet in): a second `token_expiring` meanwhile starts no second refresh.
   */
  refreshingOn: number | undefined;
  /** The gateway refused the last upgrade with `Retry-After` (Node only): wait this long before the next. */
  retryAfterMs: number | undefined;
  /** The last attempt failed before its TCP connection was made (Node only): no gateway saw it. */
  neverConnected = false;
  /** When the last session was lost (or the first attempt failed), until the next welcome (`Date.now()`). */
  lostAt: number | undefined;
  /**
   * The gateway refused the last upgrade for good (HTTP 404, 403, ...; Node only), or the WebSocket
   * constructor threw: the close that follows stops.
   */
  refused: ConnectError | undefined;
  /** Why the client stopped on its own (not `close()`): what `connect()` rejects with. */
  stoppedWith: ConnectError | undefined;
  /** A pending `connect()` was rejected (the client closed before it opened): the app has the stop's error there. */
  connectRejected = false;
  /** Ping timer and watchdog of the open session. */
  heartbeat: Heartbeat | undefined;
  timers: {
    handshake?: ReturnType<typeof setTimeout>;
    reconnect?: ReturnType<typeof setTimeout>;
  } = {};
  welcome: WelcomeFrame | undefined;
  readonly counters: ConsumerCounters = {
    connects: 0,
    reconnects: 0,
    lastCloseCode: undefined,
    lastCloseReason: undefined,
    eventsReceived: 0,
    duplicatesDropped: 0,
    rpc: { ok: 0, error: 0, timeout: 0 },
  };

  constructor(
    options: ConsumerOptions,
    defaultWebSocket: WebSocketConstructor | undefined,
    listenSocket: ListenSocket,
    onWake: OnWake | undefined,
  ) {
    const o = resolveOptions(options, randomId);
    const WebSocketImpl = o.WebSocket ?? defaultWebSocket;
    if (!WebSocketImpl) throw new TypeError('no WebSocket implementation: pass options.WebSocket');
    this.WebSocket = WebSocketImpl;
    this.listen = listenSocket;
    this.wakeOn = onWake;
    this.o = o;
    this.fullJitter = fullJitterBackoff(o.minReconnectDelayMs, o.maxReconnectDelayMs);
    this.backoff = o.backoff ?? this.fullJitter;
    this.setCursor(o.lastCursor ?? undefined);
    this.calls = new CallQueue(o, this.counters.rpc);
    // A static token or a route the protocol refuses (too long) could never be sent: say so now.
    try {
      this.helloText(o.token, true);
    } catch (error) {
      throw new TypeError(`token or route: ${toError(error).message}`);
    }
  }

  // ---- what the client's public methods do (see BusConsumer) ----

  connect(): Promise<void> {
    const idle = this.state === 'idle';
    const closedError = (message: string) =>
      this.stoppedWith ?? new ConnectError('client_closed', message, { url: this.o.url });
    // Listening before opening: a stop inside open() (a WebSocket that cannot be made) rejects it too.
    const connected = new Promise<void>((resolve, reject) => {
      if (this.state === 'open') return resolve();
      if (this.state === 'closed') return reject(closedError('client is closed'));
      const offOpen = this.emitter.on('open', () => {
        offOpen();
        offState();
        resolve();
      });
      const offState = this.emitter.on('state', ({ newState }) => {
        if (newState === 'closed') {
          offOpen();
          offState();
          this.connectRejected = true;
          reject(closedError('client closed before connecting'));
        }
      });
    });
    if (idle) {
      this.offWake = this.wakeOn?.(() => this.reconnectSoon());
      this.open();
    }
    return connected;
  }

  close(): void {
    if (this.state === 'closed') return;
    this.teardown(CloseCode.NormalClosure, 'client closed');
    this.calls.fail('all', () => new RpcError('unavailable', 'client closed'));
    this.setState('closed');
    this.flushGroups();
  }

  on<E extends EventType>(
    type: E,
    handler: ((data: EventOf<E>['data'], frame: EventOf<E>) => void) | ((batch: EventOf<E>[]) => void),
    group?: GroupOptions<E>,
  ): () => void {
    let listener: (frame: EventFrame) => void;
    let flushAll = () => {};
    if (group) {
      ({ listener, flushAll } = groupedListener(handler as (batch: EventOf<E>[]) => void, group, (fn) =>
        this.safely(fn),
      ));
    } else {
      const single = handler as (data: EventOf<E>['data'], frame: EventOf<E>) => void;
      listener = (frame) => {
        const event = frame as EventOf<E>;
        single(event.data as EventOf<E>['data'], event);
      };
    }
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(listener);
    if (group) this.groupFlushes.add(flushAll);
    return () => {
      set.delete(listener);
      this.groupFlushes.delete(flushAll);
      flushAll(); // nothing collected is lost on unsubscribe
    };
  }

  onAny(handler: (frame: EventFrame) => void): () => void {
    this.any.add(handler);
    return () => {
      this.any.delete(handler);
    };
  }

  rpc(method: RpcMethod, args: unknown[]): Promise<unknown> {
    if (this.state === 'closed') {
      const stopped = this.stoppedWith;
      return Promise.reject(new RpcError('unavailable', 'client is closed', undefined, stopped && { cause: stopped }));
    }
    // A welcomed socket takes calls: also those made in a `gap` listener, before the state is `open`.
    return this.calls.call(method, args, !!this.welcome, this.sendFrame);
  }

  // ---- internals -------------------------------------------------------------

  setState(next: ConsumerState): void {
    const prev = this.state;
    if (prev === next) return;
    this.state = next;
    if (next === 'closed') this.offWake?.();
    // A listener that moves the state on (close()) ends this change for the listeners after it.
    this.emitter.emit('state', { oldState: prev, newState: next }, () => this.state !== next);
  }

  safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.emitter.emit('error', toError(error));
    }
  }

  /** {@link send} as a function, made once (the call queue sends through it). */
  readonly sendFrame = (frame: string): boolean => this.send(frame);

  /** Sends on the current socket if it is open; false otherwise. */
  send(frame: string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(frame);
    return true;
  }

  open(): void {
    const id = ++this.connId;
    this.welcome = undefined;
    this.neverConnected = false;
    this.setState('connecting');
    // A `state` listener may have closed the client: no timer, no socket then.
    if (id !== this.connId) return;
    this.timers.handshake = setTimeout(() => {
      if (this.state === 'connecting') this.abortConnection(id, CloseCode.AuthTimeout, 'auth_timeout');
    }, this.o.handshakeTimeoutMs);
    // The hello goes in the upgrade (upgrade-hello.ts of the protocol), so its token comes first.
    if (!this.o.helloInUpgrade) this.openSocket(id, LATER);
    else if (this.o.getToken) void this.openWithToken(id, this.o.getToken);
    else this.openSocket(id, this.o.token);
  }

  /**
   * The token first, for a hello in the upgrade. Should `getToken` fail, the socket opens without
   * it and asks again once open, as a client sending its hello as a frame does: an offline client
   * (whose `getToken` may need the network too) keeps reconnecting with backoff, and so does
   * one whose `getToken` keeps failing once a gateway is reached (`auth_timeout`, see sendHello).
   * No token (and no `userId`) is handled the same way: a hello without one would be refused for good.
   */
  async openWithToken(id: number, getToken: () => string | undefined | Promise<string | undefined>): Promise<void> {
    let token: string | undefined | typeof LATER;
    try {
      token = (await getToken()) || (this.o.userId ? undefined : LATER);
    } catch {
      token = LATER;
    }
    if (id === this.connId && this.state === 'connecting') this.openSocket(id, token);
  }

  /**
   * The hello frame's text. Built field by field (in the wire order: type, v, session_id, token,
   * user_id, route, last_cursor, app_ping), not by spreading an object per optional field.
   * Throws when the hello is not one the protocol accepts (a token longer than 8 192 characters).
   */
  helloText(token: string | undefined, protocolPing: boolean): string {
    const hello: HelloFrame = { type: 'hello', v: PROTOCOL_VERSION, session_id: this.o.sessionId };
    if (token) hello.token = token;
    if (this.o.userId) hello.user_id = this.o.userId;
    if (this.o.route !== undefined) hello.route = this.o.route;
    if (this.lastCursor !== undefined) hello.last_cursor = this.lastCursor;
    // Without protocol pings our own timers are the only liveness signal, and a background
    // tab throttles them: ask the gateway to drive liveness with `ping` frames instead.
    if (!protocolPing) hello.app_ping = true;
    return serializeClientFrame(hello);
  }

  /** The subprotocols that carry the hello, if it can go in the upgrade; undefined otherwise. */
  upgradeProtocols(token: string | undefined, protocolPing: boolean): string[] | undefined {
    try {
      return upgradeProtocols(this.helloText(token, protocolPing));
    } catch {
      // Not a hello the protocol accepts: it goes as a frame, which fails it once the socket is open.
      return undefined;
    }
  }

  /** `token`: the hello's, or {@link LATER}: asked for once the socket is open (the hello then goes as a frame). */
  openSocket(id: number, token: string | undefined | typeof LATER): void {
    const protocolPing = makesProtocolPingSockets(this.WebSocket);
    const protocols = token === LATER ? undefined : this.upgradeProtocols(token, protocolPing);
    let socket: Socket;
    try {
      socket = protocols ? new this.WebSocket(this.o.url, protocols) : new this.WebSocket(this.o.url);
    } catch (error) {
      // The constructor refused the URL (a browser's SecurityError for ws:// from an https page or,
      // in some browsers, a blocked port): every attempt would throw the same, so stop, as for a 404.
      const why = `cannot open a WebSocket to ${this.o.url}: ${toError(error).message}`;
      this.refused = new ConnectError('cannot_open', why, { url: this.o.url, cause: error });
      this.onSocketClose(id, CloseCode.AbnormalClosure, '');
      return;
    }
    this.socket = socket;
    const current = () => id === this.connId;
    this.listen(socket, {
      open: () => {
        if (!current()) return;
        // A gateway that took the hello from the upgrade answers `livebus.hello`; any other gets it now.
        if (protocols && socket.protocol === UPGRADE_HELLO_PROTOCOL) return;
        void this.sendHello(id, socket, token);
      },
      message: (data) => {
        if (!current()) return;
        this.heartbeat?.alive();
        // As safely, without a closure per frame.
        try {
          this.onFrame(id, data);
        } catch (error) {
          this.emitter.emit('error', toError(error));
        }
      },
      close: (code, reason) => {
        if (current()) this.onSocketClose(id, code, reason);
      },
    });
    if (hasProtocolPing(socket)) {
      // Any sign of life counts: our pings' pongs and the gateway's own pings (which also
      // spare the gateway ours, see Heartbeat).
      socket.on('pong', () => {
        if (current()) this.heartbeat?.answered();
      });
      socket.on('ping', () => {
        if (current()) this.heartbeat?.alive();
      });
      // A gateway under admission control answers `503` + `Retry-After`: wait as asked. A 404 (wrong
      // path) or 403 (origin) would be answered the same forever: the close that follows stops the client.
      onUpgradeRefused(socket, (verdict) => {
        if (!current()) return;
        if (verdict.fatal) this.refused = ConnectError.fromUpgrade(verdict.status, this.o.url, verdict.location);
        else this.retryAfterMs = verdict.retryAfterMs;
      });
      onNeverConnected(socket, () => {
        if (current()) this.neverConnected = true;
      });
    }
  }

  /** The token for a hello or an `auth` frame: from `getToken` when configured, else the static one. */
  async token(): Promise<string | undefined> {
    return this.o.getToken ? await this.o.getToken() : this.o.token;
  }

  /** The hello as the socket's first frame; `token` {@link LATER}: asked for now. */
  async sendHello(id: number, socket: Socket, known: string | undefined | typeof LATER): Promise<void> {
    let hello: string;
    let got = false;
    try {
      const token = known === LATER ? await this.token() : known;
      // No token from getToken (a page whose signed-in user is not restored yet): the gateway would
      // refuse the hello (4001 missing_token) and the client stop; this is retried as a throw is.
      if (!token && this.o.getToken && !this.o.userId) throw new Error(NO_TOKEN);
      got = true;
      if (id !== this.connId || socket.readyState !== OPEN) return;
      hello = this.helloText(token, hasProtocolPing(socket));
    } catch (error) {
      // The attempt was superseded (timed out, closed) while getToken ran: its failure is moot.
      if (id !== this.connId) return;
      this.emitter.emit('error', toError(error));
      // getToken failed (an offline device, the identity provider away): the gateway saw nothing,
      // so no refusal; tried again with backoff, as a handshake that timed out. A token no hello
      // may carry (over 8 192 characters) is refused as the gateway would refuse it, asked for
      // once more; the stop then says the client refused it (the gateway never saw it).
      if (!got) return this.abortConnection(id, CloseCode.AuthTimeout, 'auth_timeout');
      if (this.authRetried) {
        const why = `the client refused the token getToken gave (${toError(error).message}); it was not sent`;
        const details = { url: this.o.url, closeCode: CloseCode.AuthFailed, cause: error };
        this.refused = new ConnectError('auth_failed', why, details);
      }
      return this.abortConnection(id, CloseCode.AuthFailed, 'auth_failed');
    }
    socket.send(hello);
  }

  /**
   * Answers `token_expiring` with an `auth` frame on the same socket, one refresh
   * at a time: a notice while one is under way is not answered again (an older
   * gateway asked again for every short-lived fresh token, a storm of getToken
   * calls). A failure keeps the session: the gateway closes it with 4011 at the
   * deadline and the client reconnects with a fresh token then.
   */
  async refreshToken(id: number): Promise<void> {
    if (this.refreshingOn === id) return;
    this.refreshingOn = id;
    let token: string | undefined;
    try {
      token = await this.token();
    } catch (error) {
      this.refreshDone(id);
      if (!this.isClosed()) this.emitter.emit('error', toError(error));
      return;
    }
    if (id !== this.connId || this.state !== 'open') return; // the session ended while we waited
    if (!token) {
      this.refreshDone(id);
      this.emitter.emit('error', new Error(`${NO_TOKEN}: the session cannot be extended`));
      return;
    }
    let frame: string;
    try {
      frame = serializeClientFrame({ type: 'auth', token });
    } catch (error) {
      // A token the protocol refuses (over 8 192 characters, not a string): as a failed getToken.
      this.refreshDone(id);
      this.emitter.emit('error', toError(error));
      return;
    }
    // Still under way until the gateway answers: `token_refreshed`, or an `error` `not_authenticated`.
    if (!this.send(frame)) this.refreshDone(id);
  }

  /** The refresh on connection `id` ended; a later `token_expiring` may start another. */
  refreshDone(id: number): void {
    if (this.refreshingOn === id) this.refreshingOn = undefined;
  }

  onFrame(id: number, data: unknown): void {
    const parsed = parseServerFrame(data);
    if (!parsed.ok) {
      this.emitter.emit('error', parsed.error);
      return;
    }
    const frame: ServerFrame = parsed.value;
    switch (frame.type) {
      case 'welcome':
        this.onWelcome(id, frame);
        return;
      case 'event':
        this.onEvent(frame);
        return;
      case 'rpc_result':
      case 'rpc_error':
        this.calls.settle(frame);
        return;
      case 'notice':
        this.onNotice(id, frame);
        return;
      case 'ping':
        this.send(serializeClientFrame(frame.ts === undefined ? { type: 'pong' } : { type: 'pong', ts: frame.ts }));
        return;
      case 'pong':
        // An answer to our own ping: alive (counted on arrival), but it spares no ping (see Heartbeat).
        this.heartbeat?.wasAnswer();
        return;
      case 'error':
        if (frame.code === 'not_authenticated') this.refreshDone(id);
        this.emitter.emit('error', new Error(`gateway: ${frame.code}: ${frame.message}`));
        return;
    }
  }

  onNotice(id: number, frame: NoticeFrame): void {
    if (frame.reconnect_after_ms !== undefined) this.reconnectHintMs = frame.reconnect_after_ms;
    this.emitter.emit('notice', frame);
    if (id !== this.connId) return; // closed from the listener
    // A static token cannot be refreshed: the gateway closes 4011 at the deadline.
    if (frame.kind === 'token_expiring' && this.o.getToken) void this.refreshToken(id);
    if (frame.kind === 'token_refreshed') {
      this.refreshDone(id);
      this.emitter.emit('token_refreshed', { expiresAtMs: frame.expires_at_ms });
    }
  }

  onWelcome(id: number, welcome: WelcomeFrame): void {
    clearTimeout(this.timers.handshake);
    this.welcome = welcome;
    // The calls queued while disconnected go first, before any made in a listener below.
    this.calls.sendQueued(this.sendFrame);
    if (welcome.resume.status === 'gap') {
      this.emitter.emit(
        'gap',
        { lastCursor: this.lastCursor, cursor: welcome.resume.cursor },
        () => id !== this.connId,
      );
      // Past each of the user's callbacks: the client may have been closed in it (here, `gap`).
      if (id !== this.connId) return;
    }
    // After a gap or a fresh start the stream continues from the gateway's head.
    if (welcome.resume.status !== 'resumed') this.setCursor(welcome.resume.cursor);
    if (this.counters.connects > 0) this.counters.reconnects++;
    this.counters.connects++;
    this.openedAt = Date.now();
    this.lostAt = undefined;
    this.authRetried = false;
    this.reconnectHintMs = undefined;
    this.retryAfterMs = undefined;
    this.startHeartbeat(id);
    this.setState('open');
    if (id !== this.connId) return;
    this.emitter.emit('open', welcome, () => id !== this.connId);
  }

  /** Sets the last cursor and its parts (the cursor taken apart once, not at every event). */
  setCursor(cursor: Cursor | undefined): void {
    const position = cursor === undefined ? undefined : parseCursor(cursor);
    this.lastCursor = cursor;
    this.lastEpoch = position?.epoch;
    this.lastOffset = position?.offset ?? 0;
  }

  onEvent(frame: EventFrame): void {
    // Replayed and live events can overlap around a reconnect: the cursor makes delivery exactly once.
    // Same epoch and not past the last handled offset: a duplicate. Another epoch is a new stream
    // (as is a cursor that cannot be read: compareCursors would not order it either).
    // As parseCursor and a comparison of epochs, without the strings and the object it makes:
    // most events continue the epoch of the last one, whose text is compared in place.
    const cursor = frame.cursor;
    const at = cursor.lastIndexOf(':');
    const offset = at > 0 ? offsetAfter(cursor, at) : -1;
    const epoch = this.lastEpoch;
    const sameEpoch = epoch !== undefined && at === epoch.length && cursor.startsWith(epoch);
    if (offset >= 0 && sameEpoch && offset <= this.lastOffset) {
      this.counters.duplicatesDropped++;
      return;
    }
    this.lastCursor = cursor;
    if (offset < 0) this.lastEpoch = undefined;
    else if (!sameEpoch) this.lastEpoch = cursor.slice(0, at);
    this.lastOffset = Math.max(offset, 0);
    this.counters.eventsReceived++;
    // As safely, without a closure per handler and event.
    const handlers = this.handlers.get(frame.event);
    if (handlers) for (const handler of handlers) this.deliver(handler, frame);
    for (const handler of this.any) this.deliver(handler, frame);
  }

  /** Runs one handler; a throw becomes an `error` event and does not stop the others. */
  deliver(handler: (frame: EventFrame) => void, frame: EventFrame): void {
    // A handler before this one closed the client: the frame goes no further.
    if (this.isClosed()) return;
    try {
      handler(frame);
    } catch (error) {
      this.emitter.emit('error', toError(error));
    }
  }

  startHeartbeat(id: number): void {
    const socket = this.socket;
    if (!socket) return;
    this.heartbeat = new Heartbeat({
      pingIntervalMs: this.o.pingIntervalMs,
      pingTimeoutMs: this.o.pingTimeoutMs,
      lateWakeupGraceMs: this.o.lateWakeupGraceMs,
      ping: () => {
        if (id !== this.connId || socket.readyState !== OPEN) return;
        if (hasProtocolPing(socket)) socket.ping();
        else socket.send(serializeClientFrame({ type: 'ping', ts: Date.now() }));
      },
      dead: () => this.abortConnection(id, CloseCode.PingTimeout, 'ping_timeout'),
    });
    this.heartbeat.start();
  }

  /** Ends socket `id` from our side (dead peer, handshake timeout) and handles it like a close; no-op once it is not the current one. */
  abortConnection(id: number, code: number, reason: DisconnectReason): void {
    // An older attempt's failure must not end the current socket.
    if (id !== this.connId) return;
    const socket = this.socket;
    if (socket && hasProtocolPing(socket)) socket.terminate();
    else socket?.close(CloseCode.NormalClosure, reason);
    this.onSocketClose(id, code, reason);
  }

  teardown(code: number, reason: string): void {
    this.connId++; // every callback of the old socket is now stale
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    clearTimeout(this.timers.handshake);
    clearTimeout(this.timers.reconnect);
    this.timers = {};
    const socket = this.socket;
    this.socket = undefined;
    this.welcome = undefined;
    if (socket && socket.readyState <= OPEN) {
      try {
        socket.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** The one exit path of a connection: classify, then reconnect, refresh the token, or stop. */
  onSocketClose(id: number, code: number, rawReason: string): void {
    if (id !== this.connId || this.state === 'closed') return;
    this.teardown(CloseCode.NormalClosure, '');
    const reason = classifyDisconnect(code, rawReason);
    this.counters.lastCloseCode = code;
    this.counters.lastCloseReason = reason;
    // Calls already sent may or may not have run: fail them rather than risk running them twice.
    this.calls.fail('sent', () => new RpcError('unavailable', 'connection lost before the answer'));

    const refused = this.refused;
    this.refused = undefined;
    const authReason = code === CloseCode.AuthFailed ? authFailureReasonOf(rawReason) : undefined;
    let policy = refused ? 'stop' : reconnectPolicy(reason, authReason);
    if (policy === 'refresh_token') {
      // A static token cannot be replaced: a reconnect with it would only be refused again.
      if (this.authRetried || !this.o.getToken) policy = 'stop';
      else this.authRetried = true;
    }
    if (policy === 'stop') {
      this.stop(code, reason, refused ?? new FatalCloseError(code, reason, authReason), authReason);
      return;
    }
    const now = Date.now();
    if (this.openedAt !== undefined && now - this.openedAt >= STABLE_SESSION_MS) this.attempt = 0;
    this.openedAt = undefined;
    this.lostAt ??= now;
    // The gateway's hint or a Retry-After (up but busy) is followed, up to maxReconnectDelayMs (a longer
    // one would be past what a timer keeps), and does not grow the backoff.
    const hintMs = this.reconnectHintMs ?? this.retryAfterMs;
    const delayMs =
      policy === 'refresh_token'
        ? 0
        : hintMs === undefined
          ? this.nextBackoff(now - this.lostAt)
          : Math.min(hintMs, this.o.maxReconnectDelayMs);
    this.reconnectHintMs = undefined;
    this.retryAfterMs = undefined;
    this.emitter.emit('close', { code, reason, willReconnect: true, delayMs, authReason }, () => this.isClosed());
    // A `close` or `state` listener may have closed the client (`close()`): then no reconnect, and
    // no timer left.
    if (this.isClosed()) return;
    this.setState('reconnecting');
    if (this.isClosed()) return;
    this.reconnectIn(delayMs);
  }

  /** The next attempt, in `delayMs` (unless the client is no longer reconnecting by then). */
  reconnectIn(delayMs: number): void {
    this.timers.reconnect = setTimeout(() => {
      if (this.state === 'reconnecting') this.open();
    }, delayMs);
  }

  /**
   * Back online, or the page shown again (browsers): a reconnect waiting for its timer goes sooner,
   * backoff reset, after the first attempt's jitter (at most `minReconnectDelayMs`): the clients of a
   * shared network that comes back do not all open their sockets in the same instant.
   */
  reconnectSoon(): void {
    if (this.state !== 'reconnecting') return;
    clearTimeout(this.timers.reconnect);
    this.attempt = 0;
    this.reconnectIn(this.fullJitter(0));
  }

  /** Whether `close()` was called; a method, as the state may change in a listener between two reads. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  /**
   * The backoff's delay for the next attempt: the ceiling doubles with each failure, except that an
   * attempt that never reached a gateway within `networkRetryWindowMs` of the loss is retried within
   * the first ceiling and does not count (`growsBackoff`). A `backoff` option that throws or gives
   * no delay (NaN, negative, infinite: a 1 ms timer, a reconnect storm) is reported as `error` and
   * the built-in backoff decides this attempt; a delay is at most `maxReconnectDelayMs`.
   */
  nextBackoff(sinceLossMs: number): number {
    const failure = { reachedGateway: !this.neverConnected, sinceLossMs };
    const attempt = growsBackoff(failure, this.o.networkRetryWindowMs) ? this.attempt++ : 0;
    let delayMs: number;
    try {
      delayMs = this.backoff(attempt);
      if (!(delayMs >= 0 && delayMs < Infinity)) throw new RangeError(`backoff gave ${delayMs}, not a delay in ms`);
    } catch (error) {
      this.emitter.emit('error', toError(error));
      delayMs = this.fullJitter(attempt);
    }
    return Math.min(delayMs, this.o.maxReconnectDelayMs);
  }

  /** Stops for good on the gateway's word: `connect()` and pending calls fail with the reason. */
  stop(
    code: number,
    reason: DisconnectReason,
    error: FatalCloseError | ConnectError,
    authReason?: AuthFailureReason,
  ): void {
    const stopped = error instanceof ConnectError ? error : ConnectError.fromClose(error, this.o.url);
    this.stoppedWith = stopped;
    this.emitter.emit('close', { code, reason, willReconnect: false, ...(authReason ? { authReason } : {}) });
    this.calls.fail(
      'all',
      () => new RpcError('unavailable', `client stopped: ${stopped.message}`, undefined, { cause: stopped }),
    );
    this.setState('closed');
    // Unheard, it would be reported as uncaught (reportError): not when a pending connect() got it.
    if (!this.connectRejected || this.emitter.listenerCount('error')) this.emitter.emit('error', error);
    this.flushGroups();
  }

  /** Hands every held batch over now (the client is closed: no event can join them any more). */
  flushGroups(): void {
    for (const flush of this.groupFlushes) this.safely(flush);
  }
}

/**
 * What an `error` listener threw, or an `error` no listener heard: to the page's error handlers (`window.onerror`, the console)
 * where there is `reportError` (browsers), else to `console.error`. Never thrown from the
 * socket's callbacks, where it would end a Node process.
 */
function reportUncaught(error: unknown): void {
  const g = globalThis as { reportError?: (error: unknown) => void };
  if (g.reportError) g.reportError(error);
  else console.error(error);
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function randomId(): string {
  const c = globalThis.crypto as { randomUUID?: () => string } | undefined;
  return c?.randomUUID ? c.randomUUID() : `s-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The offset of a cursor whose last ':' is at `at` (a safe integer of decimal digits, at least
 * one), or -1 when it is not one; without slicing the text. Equal to parseCursor's offset on every
 * cursor that matches CursorSchema, which every event frame's cursor does before it gets here.
 */
function offsetAfter(cursor: string, at: number): number {
  const end = cursor.length;
  if (end === at + 1) return -1;
  let offset = 0;
  for (let i = at + 1; i < end; i++) {
    const c = cursor.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    offset = offset * 10 + c;
  }
  return Number.isSafeInteger(offset) ? offset : -1;
}
