import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type AuthFrame,
  CloseCode,
  classifyDisconnect,
  type HelloFrame,
  PROTOCOL_VERSION,
  parseClientFrame,
  type RpcRequestFrame,
} from '@livebus/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import { AuthError, type Authenticator, type Principal } from '../auth/authenticator';
import type { GatewayConfig } from '../config';
import { type EventBus, liveEventOf } from '../fleet/bus/event-bus';
import type { ControlMessage, InstanceChannel } from '../fleet/instances/instance-channel';
import type { Presence, SessionEntry } from '../fleet/presence/presence';
import type { ListenersManager } from '../listeners/listeners-manager';
import type { Logger } from '../logger';
import type { DisconnectTracker } from '../metrics/disconnect-tracker';
import type { GatewayMetrics } from '../metrics/prometheus';
import type { Dispatch } from '../rpc/dispatcher';
import { toRpcError } from '../rpc/rpc-error';
import type { HandshakeTicket } from '../transport/admission';
import { fromWs } from '../transport/gateway-socket';
import { isOriginAllowed } from '../transport/origin-policy';
import { TokenBucket } from './rate-limiter';
import { Connection, Session } from './session';
import type { SessionHub } from './session-hub';
import { TokenLifetime } from './token-lifetime';

/** Sockets pinged per turn of the heartbeat; more are spread over the ping interval. */
const HEARTBEAT_SLICE = 100;

/** What the connection handler works with. */
export interface ConnectionHandlerDeps {
  config: GatewayConfig;
  logger: Logger;
  auth: Authenticator;
  bus: EventBus;
  hub: SessionHub;
  listeners: ListenersManager;
  dispatch: Dispatch;
  metrics: GatewayMetrics;
  tracker: DisconnectTracker;
  /** The fleet's directory of sessions: session limits and replacement hold across instances. */
  presence: Presence;
  /** Orders to other instances: close a session that reconnected here. */
  channel: InstanceChannel;
  isDraining: () => boolean;
}

/*
 * One connection, from upgrade to close:
 *
 *   upgrade --> handshake --hello--> authenticating --ok--> open --close--> closed
 *      |           |                      |                  |
 *      |           +-- bad frame: 4004    +-- bad token: 4001 +-- frames: rpc, auth, ping, pong
 *      |           +-- no hello in time: 4002 (timer covers authenticating too)
 *      |           +-- other version: 4010                    +-- token expired: 4011
 *      +-- other Origin: HTTP 403
 *
 * Frames that arrive while the token is checked are held and handled after
 * the welcome, so a client may pipeline its first calls behind its hello.
 * Every handler runs behind a guard: an exception closes that one socket with
 * 1011 and is logged as `ws_handler_error`; the process keeps serving.
 */
export function createConnectionHandler(deps: ConnectionHandlerDeps) {
  const { config, logger, auth, bus, hub, listeners, dispatch, metrics, tracker, presence, channel } = deps;
  const connections = new Set<Connection>();
  /** Closed sessions still being removed from presence; shutdown waits for them before flushing detaches. */
  const closings = new Set<Promise<void>>();
  /** Admission control's count of each connection still in its handshake (admission.ts). */
  const tickets = new WeakMap<Connection, HandshakeTicket>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const lifetime = new TokenLifetime({
    refreshLeadMs: config.tokenRefreshLeadMs,
    clockToleranceMs: config.tokenClockToleranceMs,
    graceMs: config.tokenExpiryGraceMs,
    onExpiring: (session, expiresAtMs) => {
      session.connection.send({
        type: 'notice',
        kind: 'token_expiring',
        message: 'token expires soon; send an auth frame with a fresh token',
        expires_at_ms: expiresAtMs,
      });
    },
    onExpired: (session) => {
      logger.info('ws_token_expired', { uid: session.uid, session_id: session.id });
      session.connection.close(CloseCode.TokenExpired, 'token expired', 'token_expired');
    },
  });

  /** Last resort: whatever a handler throws ends only its own socket. */
  function guarded(conn: Connection, where: string, run: () => void | Promise<void>): void {
    const fail = (error: unknown) => {
      logger.error('ws_handler_error', {
        where,
        uid: conn.session?.uid,
        session_id: conn.session?.id,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      try {
        conn.close(CloseCode.InternalError, 'internal error');
      } catch {
        conn.terminate();
      }
    };
    try {
      const result = run();
      if (result) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  /** Why an upgrade is refused before the WebSocket opens, as an HTTP status line; undefined to accept. */
  function upgradeRefusal(req: IncomingMessage): string | undefined {
    if ((req.url ?? '').split('?')[0] !== '/ws') return '404 Not Found';
    if (deps.isDraining()) return '503 Service Unavailable';
    if (!isOriginAllowed(req.headers.origin, config.allowedOrigins)) {
      logger.warn('ws_origin_refused', { origin: String(req.headers.origin).slice(0, 200) });
      return '403 Forbidden';
    }
    return undefined;
  }

  /** `ticket`: admission control counts this connection until its welcome (or failure). */
  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ticket?: HandshakeTicket): void {
    try {
      const refusal = upgradeRefusal(req);
      if (refusal) {
        socket.end(`HTTP/1.1 ${refusal}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      const header = req.headers.authorization;
      const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() || undefined : undefined;
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, bearer, ticket));
    } catch (error) {
      logger.error('ws_handler_error', { where: 'upgrade', error: String(error) });
      socket.destroy();
    }
  }

  function onConnection(ws: WebSocket, bearer: string | undefined, ticket: HandshakeTicket | undefined): void {
    const limiter =
      config.rateLimitFramesPerS > 0 ? new TokenBucket(config.rateLimitFramesPerS, config.rateLimitBurst) : undefined;
    const conn = new Connection(fromWs(ws), bearer, limiter);
    connections.add(conn);
    if (ticket) tickets.set(conn, ticket);
    conn.handshakeTimer = setTimeout(() => {
      if (conn.phase === 'handshake' || conn.phase === 'authenticating')
        conn.close(CloseCode.AuthTimeout, 'auth timeout');
    }, config.handshakeTimeoutMs);
    const touch = () => {
      conn.lastSeen = Date.now();
    };
    ws.on('pong', touch);
    ws.on('ping', touch);
    ws.on('message', (data, isBinary) => {
      touch();
      guarded(conn, 'message', () => onMessage(conn, data as Buffer, isBinary));
    });
    ws.on('error', () => {
      // 'close' follows; oversize frames surface here as RangeError and close with 1009.
    });
    ws.on('close', (code, reason) => guarded(conn, 'close', () => onClose(conn, code, reason.toString())));
  }

  function badFrame(conn: Connection, message: string, issues?: { path: string; message: string }[], close = false) {
    logger.warn('ws_bad_frame', { uid: conn.session?.uid, session_id: conn.session?.id, message });
    conn.send(
      issues ? { type: 'error', code: 'bad_frame', message, issues } : { type: 'error', code: 'bad_frame', message },
    );
    if (close) conn.close(CloseCode.BadFrame, 'bad frame');
  }

  /**
   * Over the limit: the frame is dropped and the client told so, once; a client
   * that keeps sending a whole burst's worth of frames into a full bucket is closed.
   */
  function rateLimited(conn: Connection): void {
    conn.refused++;
    if (conn.refused === 1) {
      conn.send({ type: 'error', code: 'rate_limited', message: 'too many frames; slow down' });
      logger.warn('ws_rate_limited', { uid: conn.session?.uid, session_id: conn.session?.id });
    }
    if (conn.refused >= config.rateLimitBurst) conn.close(CloseCode.RateLimited, 'rate limited', 'rate_limited');
  }

  function onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.phase === 'closed') return;
    if (isBinary) {
      badFrame(conn, 'binary frames are not accepted');
      conn.close(CloseCode.UnsupportedData, 'binary frame');
      return;
    }
    if (conn.limiter && !conn.limiter.take()) {
      rateLimited(conn);
      return;
    }
    conn.refused = 0;
    if (conn.phase === 'authenticating') {
      conn.early ??= [];
      if (conn.early.length >= 32) badFrame(conn, 'too many frames before welcome', undefined, true);
      else conn.early.push(data);
      return;
    }
    const parsed = parseClientFrame(data, { maxBytes: config.maxPayloadBytes });
    if (!parsed.ok) {
      // Before the handshake nothing is trusted: close. After it, report and keep the session.
      badFrame(conn, parsed.error.message, [...parsed.error.issues], conn.phase === 'handshake');
      return;
    }
    const frame = parsed.value;
    if (conn.phase === 'handshake') {
      if (frame.type !== 'hello') badFrame(conn, 'the first frame must be hello', undefined, true);
      else if (frame.v !== PROTOCOL_VERSION) {
        badFrame(conn, `this gateway speaks protocol version ${PROTOCOL_VERSION}`, [
          { path: 'v', message: `unsupported version ${frame.v}` },
        ]);
        conn.close(CloseCode.UnsupportedVersion, 'unsupported version');
      } else {
        // Admission control counts the handshake until the welcome is sent or the hello fails.
        const ticket = tickets.get(conn);
        ticket?.helloReceived();
        guarded(conn, 'hello', () => onHello(conn, frame, ticket?.done).finally(ticket?.done));
      }
      return;
    }
    const session = conn.session;
    if (!session) return;
    switch (frame.type) {
      case 'hello':
        badFrame(conn, 'hello was already received');
        return;
      case 'ping':
        conn.send(frame.ts === undefined ? { type: 'pong' } : { type: 'pong', ts: frame.ts });
        return;
      case 'pong':
        return;
      case 'rpc':
        guarded(conn, 'rpc', () => onRpc(session, frame));
        return;
      case 'auth':
        guarded(conn, 'auth', () => onAuth(session, frame));
        return;
    }
  }

  async function onRpc(session: Session, frame: RpcRequestFrame): Promise<void> {
    try {
      const ctx = { principal: session.principal, sessionId: session.id, transport: 'ws' as const };
      const result = await dispatch(ctx, frame.method, frame.args);
      session.connection.send({ type: 'rpc_result', id: frame.id, result });
    } catch (error) {
      session.connection.send({ type: 'rpc_error', id: frame.id, error: toRpcError(error).toWire() });
    }
  }

  /** A fresh token on the open socket: same user, the session lives on; another user, close 4003. */
  async function onAuth(session: Session, frame: AuthFrame): Promise<void> {
    const conn = session.connection;
    let principal: Principal;
    try {
      principal = await auth.authenticate({ token: frame.token });
    } catch (error) {
      logger.warn('ws_token_refresh_failed', {
        uid: session.uid,
        session_id: session.id,
        reason: error instanceof AuthError ? error.reason : 'error',
        error: error instanceof Error ? error.message : String(error),
      });
      // The session keeps its current deadline: the client may try again until then.
      conn.send({ type: 'error', code: 'not_authenticated', message: 'the fresh token was refused' });
      return;
    }
    if (conn.session !== session || conn.phase !== 'open') return;
    if (principal.uid !== session.uid) {
      logger.warn('ws_token_refresh_failed', { uid: session.uid, session_id: session.id, reason: 'other_user' });
      conn.close(CloseCode.Forbidden, 'forbidden');
      return;
    }
    session.principal = principal;
    lifetime.track(session);
    logger.info('ws_token_refreshed', {
      uid: session.uid,
      session_id: session.id,
      expires_at_ms: principal.expiresAtMs,
    });
    conn.send({
      type: 'notice',
      kind: 'token_refreshed',
      message: 'token refreshed',
      ...(principal.expiresAtMs === undefined ? {} : { expires_at_ms: principal.expiresAtMs }),
    });
  }

  async function authenticate(conn: Connection, hello: HelloFrame): Promise<Principal | undefined> {
    try {
      return await auth.authenticate({ token: hello.token ?? conn.bearer, userId: hello.user_id });
    } catch (error) {
      // Never log the token itself.
      if (error instanceof AuthError) {
        logger.warn('ws_auth_failed', { reason: error.reason, code: error.code, error: error.message });
      } else {
        logger.error('ws_auth_failed', { reason: 'error', code: 'internal_error', error: String(error) });
      }
      // The reason is one of the protocol's auth failure reasons: the client shows it, and it says nothing secret.
      conn.close(CloseCode.AuthFailed, error instanceof AuthError ? error.code : 'internal_error');
      return undefined;
    }
  }

  async function onHello(conn: Connection, hello: HelloFrame, handshakeDone?: () => void): Promise<void> {
    conn.phase = 'authenticating';
    const principal = await authenticate(conn, hello);
    if (!principal || conn.phase !== 'authenticating' || !conn.socket.isOpen) return;
    if (deps.isDraining()) {
      conn.close(CloseCode.ServiceRestart, 'service restart');
      return;
    }
    const uid = principal.uid;
    const sessionId = hello.session_id ?? randomUUID();
    const session = new Session(sessionId, principal, hello.route ?? '', conn, hello.last_cursor);
    // The fleet decides, atomically: the session limit counts every instance, and a session id
    // already held (the same tab reconnecting) is taken over wherever its old socket is.
    let added: Awaited<ReturnType<Presence['add']>>;
    try {
      added = await presence.add(uid, entryOf(session), { maxSessions: config.maxSessionsPerUser });
    } catch (error) {
      logger.warn('presence_error', { uid, session_id: sessionId, op: 'add', error: String(error) });
      conn.close(CloseCode.TryAgainLater, 'try again later');
      return;
    }
    if (conn.phase !== 'authenticating' || !conn.socket.isOpen) {
      // Closed while presence was written: take the entry back (fenced: a newer holder keeps it).
      void removePresence(session);
      return;
    }
    if (added.refused) {
      conn.close(CloseCode.TooManySessions, 'too many sessions');
      return;
    }
    const replaced = hub.get(uid, sessionId);
    if (added.replaced && added.replaced.instanceId !== config.instanceId) {
      channel
        .send(added.replaced.instanceId, { type: 'replace', uid, session_id: sessionId })
        .catch((error: unknown) =>
          logger.warn('presence_error', { uid, session_id: sessionId, op: 'replace', error: String(error) }),
        );
    }

    const lastCursor = hello.last_cursor;
    conn.session = session;
    conn.phase = 'open';
    conn.appPing = hello.app_ping === true;
    clearTimeout(conn.handshakeTimer);
    // A cleared Timeout held for the connection's life costs about 200 bytes (with its closure).
    conn.handshakeTimer = undefined;
    const subscribed = hub.add(session);
    const attached = listeners.sessionOpened(uid, sessionId);
    if (replaced) {
      // The same tab reconnecting before its old socket timed out: the new one takes its place.
      // Opened before closed, so the user never drops to zero sessions and no detach starts.
      listeners.sessionClosed(uid, sessionId);
      replaced.connection.close(CloseCode.Replaced, 'replaced');
    }
    logger.info('ws_connect', { uid, session_id: sessionId, service: principal.service, resume_from: lastCursor });

    try {
      // Live events wait in session.pending while the replay is read; the replay is read
      // only once the subscription is live, so nothing published in between is missed.
      await subscribed;
      const read = lastCursor === undefined ? undefined : await bus.readSince(uid, lastCursor);
      const head = read ? read.cursor : await bus.head(uid);
      if (conn.session !== session || conn.phase !== 'open') return;
      const status = read === undefined ? 'fresh' : read.status;
      if (status !== 'resumed') session.lastCursor = head;
      conn.send({
        type: 'welcome',
        v: PROTOCOL_VERSION,
        session_id: sessionId,
        user_id: uid,
        instance_id: config.instanceId,
        heartbeat: { ping_interval_ms: config.pingIntervalMs, ping_timeout_ms: config.pingTimeoutMs },
        resume: { status, cursor: head, replayed: read?.events.length ?? 0 },
      });
      // After the welcome: a token accepted within the clock tolerance is asked for at once,
      // and a notice before the welcome would reach a client not yet able to answer it.
      lifetime.track(session);
      const backlog = [...(read?.events.map((e) => liveEventOf(e)) ?? []), ...(session.pending ?? [])];
      session.pending = undefined;
      for (const event of backlog) hub.deliver(session, event);
    } catch (error) {
      logger.error('ws_resume_error', { uid, session_id: sessionId, error: String(error) });
      conn.close(CloseCode.InternalError, 'internal error');
      return;
    }
    handshakeDone?.();
    const early = conn.early;
    conn.early = undefined;
    for (const frame of early ?? []) guarded(conn, 'message', () => onMessage(conn, frame, false));
    await attached;
  }

  function onClose(conn: Connection, code: number, reason: string): void {
    if (conn.phase === 'closed') return;
    conn.phase = 'closed';
    clearTimeout(conn.handshakeTimer);
    connections.delete(conn);
    const type = classifyDisconnect(code, conn.localCloseReason ?? reason);
    metrics.disconnects.inc({ reason: type });
    const session = conn.session;
    if (!session) {
      logger.info('ws_disconnect', { code, reason, type, authenticated: false });
      return;
    }
    lifetime.untrack(session);
    tracker.record(session.uid, type);
    logger.info('ws_disconnect', { uid: session.uid, session_id: session.id, code, reason, type });
    // A replaced session is no longer the hub's: its successor already took over its listeners
    // and its presence entry.
    if (hub.remove(session)) {
      // The detach decision reads presence: this session must be gone from it before the delay starts.
      const closing = removePresence(session).finally(() => {
        closings.delete(closing);
        listeners.sessionClosed(session.uid, session.id);
      });
      closings.add(closing);
    }
  }

  function entryOf(session: Session): SessionEntry {
    return { sessionId: session.id, instanceId: config.instanceId, route: session.route, connectedAt: Date.now() };
  }

  async function removePresence(session: Session): Promise<void> {
    try {
      await presence.remove(session.uid, session.id, config.instanceId);
    } catch (error) {
      // It expires with this instance's heartbeat lapse, after INSTANCE_TTL_MS.
      logger.warn('presence_error', { uid: session.uid, session_id: session.id, op: 'remove', error: String(error) });
    }
  }

  /** Another instance took over one of our sessions (same session id): close the old socket. */
  function onControl(message: ControlMessage): void {
    const session = hub.get(message.uid, message.session_id);
    if (session) session.connection.close(CloseCode.Replaced, 'replaced');
  }

  /** Writes the user's sessions of this instance to presence again (their entries expired during a stall). */
  async function reannounce(uid: string): Promise<void> {
    for (const session of hub.sessionsOf(uid)) await presence.add(uid, entryOf(session));
  }

  /** Timer of the heartbeat's next slice, while one is spread over the interval. */
  let nextSlice: NodeJS.Timeout | undefined;

  /**
   * Pings every socket and terminates those silent for longer than the ping
   * timeout. Clients that cannot see protocol pings (browsers) also get a `ping`
   * frame: their liveness then does not depend on their own, possibly throttled, timers.
   *
   * Spread over the interval in slices of {@link HEARTBEAT_SLICE} sockets: one
   * callback pinging 1 000 sockets kept the event loop busy for about 80 ms,
   * and every event waiting behind it had that much more latency.
   */
  function heartbeat(): void {
    clearTimeout(nextSlice);
    nextSlice = undefined;
    const all = [...connections];
    const slices = Math.ceil(all.length / HEARTBEAT_SLICE);
    // Done within 80 % of the interval, so two sweeps never overlap.
    const stepMs = slices > 1 ? Math.floor((config.pingIntervalMs * 0.8) / (slices - 1)) : 0;
    const run = (slice: number) => {
      nextSlice = undefined;
      const now = Date.now();
      for (const conn of all.slice(slice * HEARTBEAT_SLICE, (slice + 1) * HEARTBEAT_SLICE)) {
        if (conn.phase === 'closed') continue;
        if (now - conn.lastSeen > config.pingTimeoutMs) {
          conn.terminate('ping_timeout');
        } else if (conn.socket.isOpen) {
          conn.socket.ping();
          if (conn.appPing && conn.phase === 'open') conn.send({ type: 'ping', ts: now });
        }
      }
      if (slice + 1 < slices) {
        nextSlice = setTimeout(() => run(slice + 1), stepMs);
        nextSlice.unref();
      }
    };
    if (slices > 0) run(0);
  }

  /** Shutdown: a notice with a jittered reconnect hint, then close 1012, to every connection. */
  function closeAll(spreadMs: number): void {
    clearTimeout(nextSlice);
    for (const conn of connections) {
      const hint = Math.floor(Math.random() * spreadMs);
      conn.send({ type: 'notice', kind: 'shutting_down', message: 'instance is restarting', reconnect_after_ms: hint });
      conn.close(CloseCode.ServiceRestart, 'service restart', 'service_restart');
    }
  }

  /** Settles once every closed session has been handed to the listeners manager. */
  async function settled(): Promise<void> {
    while (closings.size > 0) await Promise.allSettled([...closings]);
  }

  function terminateAll(): void {
    clearTimeout(nextSlice);
    for (const conn of connections) conn.terminate();
  }

  return {
    handleUpgrade,
    heartbeat,
    onControl,
    reannounce,
    closeAll,
    terminateAll,
    settled,
    get count() {
      return connections.size;
    },
  };
}

/** The connection handler of a gateway. */
export type ConnectionHandler = ReturnType<typeof createConnectionHandler>;
