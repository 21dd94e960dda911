import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AppEvent,
  CloseCode,
  classifyDisconnect,
  type HelloFrame,
  PROTOCOL_VERSION,
  parseClientFrame,
  type RpcRequestFrame,
  serializeFrame,
} from '@livebus/protocol';
import { WebSocket, WebSocketServer } from 'ws';
import { AuthError, type Authenticator } from './auth/authenticator';
import { NoneAuthenticator } from './auth/none-authenticator';
import type { EventBus, StoredEvent } from './bus/event-bus';
import { MemoryEventBus } from './bus/memory-event-bus';
import type { GatewayConfig } from './config';
import { createHttpHandler } from './http/routes';
import type { ListenerSource } from './listeners/listener-source';
import { ListenersManager } from './listeners/listeners-manager';
import { createLogger, type Logger } from './logger';
import { DisconnectTracker } from './metrics/disconnect-tracker';
import { createMetrics, type GatewayMetrics } from './metrics/prometheus';
import { MemoryRegistryStore } from './registry/memory-registry-store';
import type { RegistryStore } from './registry/registry-store';
import { createDispatcher, type Dispatch } from './rpc/dispatcher';
import { createHandlers } from './rpc/handlers';
import { toRpcError } from './rpc/rpc-error';
import { Connection, Session } from './session';

/** Health of an external dependency as reported on /healthz. */
export type DependencyStatus = 'ok' | 'down' | 'disabled';

/** Ports and collaborators; each defaults to its embedded implementation. */
export interface GatewayDeps {
  logger?: Logger;
  registry?: RegistryStore;
  bus?: EventBus;
  auth?: Authenticator;
  sources?: ListenerSource[];
  /** Redis health as seen by its client; `disabled` when the gateway runs without Redis. */
  redisStatus?: () => DependencyStatus;
  /** Called last during shutdown (close Redis clients, Firebase apps). */
  onClose?: () => Promise<void>;
  version?: string;
}

/** A running (or ready to run) gateway. */
export interface Gateway {
  readonly config: GatewayConfig;
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Starts listening on `config.host:config.port`; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Publishes an event to a user's sessions (the in-process publisher API). */
  publish(userId: string, event: AppEvent): Promise<StoredEvent>;
  /**
   * Graceful shutdown: readiness 503, refuse new connections, notify and close
   * every client with 1012 and a jittered reconnect hint, flush pending detaches.
   */
  shutdown(reason?: string): Promise<void>;
  /** Waits until queued attach/detach work has settled (tests). */
  idle(): Promise<void>;
  /** Snapshot for /debug and tests. */
  stats(): GatewayStats;
}

/** Counters shown on /healthz and /debug. */
export interface GatewayStats {
  connections: number;
  sessions: number;
  users: number;
  listeners: number;
  workflowListeners: number;
  pendingDetaches: number;
  detachCancelled: number;
  detachExecuted: number;
  draining: boolean;
}

/**
 * Builds a gateway. No side effects: nothing listens, no timer runs and no
 * environment is read until {@link Gateway.listen}.
 */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger =
    deps.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, instanceId: config.instanceId });
  const registry = deps.registry ?? new MemoryRegistryStore();
  const bus =
    deps.bus ??
    new MemoryEventBus({ retentionEvents: config.streamRetentionEvents, retentionMs: config.streamRetentionMs });
  const auth = deps.auth ?? new NoneAuthenticator();
  const redisStatus = deps.redisStatus ?? (() => 'disabled' as const);
  const startedAt = Date.now();

  const connections = new Set<Connection>();
  /** Live sessions per user, and the user's bus subscription. */
  const users = new Map<string, { sessions: Map<string, Session>; unsubscribe: () => void }>();
  let draining = false;
  let timers: NodeJS.Timeout[] = [];

  const listeners = new ListenersManager({
    sources: deps.sources ?? [],
    detachDelayMs: config.detachDelayMs,
    logger,
    cleanupRegistry: (uid) => registry.cleanupUser(uid),
    emit: (uid, event) => {
      publish(uid, event).catch((error: unknown) => logger.error('event_published', { uid, error: String(error) }));
    },
    onDetachOutcome: (outcome) => metrics.detaches.inc({ outcome }),
  });

  let sessionCount = 0;
  const metrics = createMetrics({
    connections: () => connections.size,
    sessions: () => sessionCount,
    users: () => users.size,
    listeners: () => listeners.counters().attached,
    workflowListeners: () => listeners.counters().workflows,
    pendingDetaches: () => listeners.counters().pendingDetaches,
  });
  const tracker = new DisconnectTracker({ maxUsers: config.metricsMaxUsers });

  const dispatch: Dispatch = createDispatcher({
    timeoutMs: config.rpcTimeoutMs,
    handlers: createHandlers({
      registry,
      listeners,
      logger,
      instanceId: config.instanceId,
      unifiedRegistryEnabled: config.unifiedRegistryEnabled,
      unifiedRegistryTtlS: config.unifiedRegistryTtlS,
      registryDebug: config.registryDebug,
      hasLiveSession: (uid) => users.has(uid),
      publish: (uid, event) => publish(uid, event),
    }),
    observe: (method, outcome, seconds, error) => {
      metrics.rpcCalls.inc({ method, outcome });
      metrics.rpcSeconds.observe({ method }, seconds);
      if (error?.code === 'internal') logger.error('rpc_error', { method, error: String(error.cause ?? error) });
      else if (error?.cause) logger.warn('rpc_error', { method, code: error.code, error: String(error.cause) });
    },
  });

  function publish(userId: string, event: AppEvent): Promise<StoredEvent> {
    return bus.publish(userId, event);
  }

  // ---- fan-out -------------------------------------------------------------

  function deliver(session: Session, event: StoredEvent, text: string): void {
    if (event.cursor <= session.lastCursor) return; // already written (replay/live overlap)
    if (session.pending) {
      session.pending.push(event);
      return;
    }
    const conn = session.connection;
    if (conn.ws.bufferedAmount > config.maxBufferedBytes) {
      slowConsumer(conn);
      return;
    }
    if (conn.sendText(text)) {
      session.lastCursor = event.cursor;
      metrics.eventsDelivered.inc();
    }
  }

  function slowConsumer(conn: Connection): void {
    if (conn.localCloseReason) return;
    conn.localCloseReason = 'slow_consumer';
    logger.warn('ws_slow_consumer', {
      uid: conn.session?.uid,
      session_id: conn.session?.id,
      buffered_bytes: conn.ws.bufferedAmount,
    });
    conn.ws.close(CloseCode.SlowConsumer, 'slow consumer');
    // The close frame waits behind the full buffer; do not wait for it forever.
    setTimeout(() => conn.ws.terminate(), 1_000).unref();
  }

  function userEntry(uid: string) {
    let entry = users.get(uid);
    if (!entry) {
      const sessions = new Map<string, Session>();
      const unsubscribe = bus.subscribe(uid, (event) => {
        // Validated and serialised once per event, whatever the number of sessions.
        const text = serializeFrame(event);
        for (const s of sessions.values()) deliver(s, event, text);
      });
      entry = { sessions, unsubscribe };
      users.set(uid, entry);
    }
    return entry;
  }

  // ---- connection lifecycle ------------------------------------------------

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });

  function bearerOf(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    return header?.startsWith('Bearer ') ? header.slice(7).trim() || undefined : undefined;
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws' || draining) {
      const status = draining ? '503 Service Unavailable' : '404 Not Found';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, bearerOf(req)));
  }

  function onConnection(ws: WebSocket, bearer: string | undefined): void {
    const conn = new Connection(ws, bearer);
    connections.add(conn);
    conn.handshakeTimer = setTimeout(() => {
      if (conn.phase === 'handshake' || conn.phase === 'authenticating')
        ws.close(CloseCode.AuthTimeout, 'auth timeout');
    }, config.handshakeTimeoutMs);
    const touch = () => {
      conn.lastSeen = Date.now();
    };
    ws.on('pong', touch);
    ws.on('ping', touch);
    ws.on('message', (data, isBinary) => {
      touch();
      onMessage(conn, data as Buffer, isBinary);
    });
    ws.on('error', () => {
      // 'close' follows; oversize frames surface here as RangeError and close with 1009.
    });
    ws.on('close', (code, reason) => onClose(conn, code, reason.toString()));
  }

  function badFrame(conn: Connection, message: string, issues?: { path: string; message: string }[], close = false) {
    logger.warn('ws_bad_frame', { uid: conn.session?.uid, session_id: conn.session?.id, message });
    conn.send(
      issues ? { type: 'error', code: 'bad_frame', message, issues } : { type: 'error', code: 'bad_frame', message },
    );
    if (close) conn.ws.close(CloseCode.BadFrame, 'bad frame');
  }

  function onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.phase === 'closed') return;
    if (isBinary) {
      badFrame(conn, 'binary frames are not accepted');
      conn.ws.close(CloseCode.UnsupportedData, 'binary frame');
      return;
    }
    if (conn.phase === 'authenticating') {
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
      if (frame.type === 'hello') void onHello(conn, frame);
      else badFrame(conn, 'the first frame must be hello', undefined, true);
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
        void onRpc(session, frame);
        return;
    }
  }

  async function onRpc(session: Session, frame: RpcRequestFrame): Promise<void> {
    try {
      const result = await dispatch(
        { principal: session.principal, sessionId: session.id, transport: 'ws' },
        frame.method,
        frame.args,
      );
      session.connection.send({ type: 'rpc_result', id: frame.id, result });
    } catch (error) {
      session.connection.send({ type: 'rpc_error', id: frame.id, error: toRpcError(error).toWire() });
    }
  }

  async function onHello(conn: Connection, hello: HelloFrame): Promise<void> {
    conn.phase = 'authenticating';
    let principal: Awaited<ReturnType<Authenticator['authenticate']>>;
    try {
      principal = await auth.authenticate({ token: hello.token ?? conn.bearer, userId: hello.user_id });
    } catch (error) {
      const reason = error instanceof AuthError ? error.reason : 'invalid';
      // Never log the token itself.
      logger.warn('ws_auth_failed', { reason, error: error instanceof Error ? error.message : 'unknown' });
      if (!(error instanceof AuthError)) logger.error('ws_auth_failed', { error: String(error) });
      conn.ws.close(CloseCode.AuthFailed, 'auth failed');
      return;
    }
    if (conn.phase !== 'authenticating' || conn.ws.readyState !== WebSocket.OPEN) return; // closed meanwhile
    if (draining) {
      conn.ws.close(CloseCode.ServiceRestart, 'service restart');
      return;
    }
    const entry = users.get(principal.uid);
    const sessionId = hello.session_id ?? randomUUID();
    const replaced = entry?.sessions.get(sessionId);
    if (!replaced && (entry?.sessions.size ?? 0) >= config.maxSessionsPerUser) {
      conn.ws.close(CloseCode.TooManySessions, 'too many sessions');
      return;
    }
    if (replaced) {
      // Same tab reconnecting before its old socket timed out: the new one wins.
      detachSession(replaced);
      replaced.connection.ws.close(CloseCode.Replaced, 'replaced');
    }

    const lastCursor = hello.last_cursor;
    const session = new Session(sessionId, principal, hello.route ?? '', conn, lastCursor ?? 0);
    conn.session = session;
    conn.phase = 'open';
    clearTimeout(conn.handshakeTimer);
    userEntry(principal.uid).sessions.set(sessionId, session);
    sessionCount++;
    const attached = listeners.sessionOpened(principal.uid, sessionId);
    logger.info('ws_connect', {
      uid: principal.uid,
      session_id: sessionId,
      service: principal.service,
      resume_from: lastCursor,
    });

    try {
      // Live events are buffered in session.pending while the replay is read.
      const read = lastCursor === undefined ? undefined : await bus.readSince(principal.uid, lastCursor);
      const head = read ? read.cursor : await bus.head(principal.uid);
      if (conn.session !== session || conn.phase !== 'open') return;
      const status = read === undefined ? 'fresh' : read.status;
      if (status !== 'resumed') session.lastCursor = head;
      conn.send({
        type: 'welcome',
        v: PROTOCOL_VERSION,
        session_id: sessionId,
        user_id: principal.uid,
        instance_id: config.instanceId,
        heartbeat: { ping_interval_ms: config.pingIntervalMs, ping_timeout_ms: config.pingTimeoutMs },
        resume: { status, cursor: head, replayed: read?.events.length ?? 0 },
      });
      const backlog = [...(read?.events ?? []), ...(session.pending ?? [])];
      session.pending = undefined;
      for (const event of backlog) deliver(session, event, serializeFrame(event));
    } catch (error) {
      logger.error('ws_bad_frame', { uid: principal.uid, session_id: sessionId, error: String(error) });
      conn.ws.close(CloseCode.InternalError, 'internal error');
      return;
    }
    for (const early of conn.early.splice(0)) onMessage(conn, early, false);
    await attached;
  }

  /** Removes a session from its user (idempotent); the last one starts the detach delay. */
  function detachSession(session: Session): void {
    const entry = users.get(session.uid);
    if (!entry || entry.sessions.get(session.id) !== session) return;
    entry.sessions.delete(session.id);
    sessionCount--;
    if (entry.sessions.size === 0) {
      entry.unsubscribe();
      users.delete(session.uid);
    }
    listeners.sessionClosed(session.uid, session.id);
  }

  function onClose(conn: Connection, code: number, reason: string): void {
    if (conn.phase === 'closed') return;
    conn.phase = 'closed';
    clearTimeout(conn.handshakeTimer);
    connections.delete(conn);
    const type = classifyDisconnect(code, conn.localCloseReason ?? reason);
    metrics.disconnects.inc({ reason: type });
    const session = conn.session;
    if (session) {
      tracker.record(session.uid, type);
      logger.info('ws_disconnect', { uid: session.uid, session_id: session.id, code, reason, type });
      detachSession(session);
    } else {
      logger.info('ws_disconnect', { code, reason, type, authenticated: false });
    }
  }

  // ---- heartbeat and housekeeping -----------------------------------------

  function heartbeat(): void {
    const now = Date.now();
    for (const conn of connections) {
      if (now - conn.lastSeen > config.pingTimeoutMs) {
        conn.localCloseReason = 'ping_timeout';
        conn.ws.terminate();
      } else if (conn.ws.readyState === WebSocket.OPEN) {
        conn.ws.ping();
      }
    }
    if (config.unifiedRegistryEnabled) {
      for (const uid of users.keys()) {
        registry.touchUnified(uid, config.unifiedRegistryTtlS).catch(() => {
          // Redis down: /healthz reports it; the next beat tries again.
        });
      }
    }
  }

  const stats = (): GatewayStats => {
    const c = listeners.counters();
    return {
      connections: connections.size,
      sessions: sessionCount,
      users: users.size,
      listeners: c.attached,
      workflowListeners: c.workflows,
      pendingDetaches: c.pendingDetaches,
      detachCancelled: c.detachCancelled,
      detachExecuted: c.detachExecuted,
      draining,
    };
  };

  const server = createServer(
    createHttpHandler({
      config,
      logger,
      auth,
      dispatch,
      metrics,
      tracker,
      stats,
      listenerCounters: () => listeners.counters(),
      redisStatus,
      registry,
      publish,
      startedAt,
      version: deps.version ?? '0.0.0',
      isDraining: () => draining,
      debugSessions: () => ({
        users: [...users].map(([uid, e]) => ({
          uid,
          sessions: [...e.sessions.values()].map((s) => ({ session_id: s.id, route: s.route, cursor: s.lastCursor })),
        })),
        pending_detaches: listeners.pendingDetaches(),
      }),
    }),
  );
  server.on('upgrade', onUpgrade);
  // Keep-alive longer than the ALB's idle timeout (60 s) so the ALB, not us, closes idle HTTP connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function shutdown(reason = 'requested'): Promise<void> {
    if (draining) return;
    draining = true;
    const deadline = Date.now() + config.shutdownGraceMs;
    logger.info('gateway_shutdown_start', { reason, connections: connections.size, grace_ms: config.shutdownGraceMs });
    for (const t of timers) clearInterval(t);
    timers = [];
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Spread reconnects over a window so the remaining instances are not hit all at once.
    const spreadMs = Math.min(5_000, Math.max(500, config.shutdownGraceMs / 2));
    for (const conn of connections) {
      conn.localCloseReason = 'service_restart';
      const hint = Math.floor(Math.random() * spreadMs);
      conn.send({ type: 'notice', kind: 'shutting_down', message: 'instance is restarting', reconnect_after_ms: hint });
      conn.ws.close(CloseCode.ServiceRestart, 'service restart');
    }
    // Wait for close handshakes, but not past a share of the grace period.
    const closeBy = deadline - Math.min(2_000, config.shutdownGraceMs / 2);
    while (connections.size > 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, 20));
    for (const conn of connections) conn.ws.terminate();
    await withDeadline(listeners.flush(), deadline - Date.now());
    server.closeAllConnections();
    await withDeadline(closed, Math.max(0, deadline - Date.now()));
    await Promise.allSettled([bus.close(), registry.close()]);
    await deps.onClose?.().catch(() => {});
    logger.info('gateway_shutdown_complete', { took_ms: config.shutdownGraceMs - (deadline - Date.now()) });
  }

  return {
    config,
    server,
    metrics,
    publish,
    shutdown,
    stats,
    idle: () => listeners.idle(),
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      metrics.start();
      timers.push(setInterval(heartbeat, config.pingIntervalMs));
      timers.push(
        setInterval(() => {
          bus.sweep();
          tracker.sweep();
        }, 30_000),
      );
      for (const t of timers) t.unref();
      const address = server.address() as AddressInfo;
      logger.info('gateway_listening', {
        host: address.address,
        port: address.port,
        redis: redisStatus(),
        auth: auth.mode,
        registry: registry.kind,
        bus: bus.kind,
      });
      return address;
    },
  };
}

function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Math.max(0, ms));
    promise.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}
