import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppEvent } from '@livebus/protocol';
import { withRedisTimeout } from '@livebus/publisher';
import { type GatewayPorts, type ResolvedPorts, resolvePorts } from './compose';
import type { GatewayConfig } from './config';
import { type ConnectionHandler, createConnectionHandler } from './core/connection-handler';
import { SessionHub } from './core/session-hub';
import { runShutdown } from './core/shutdown';
import type { StoredEvent } from './fleet/bus/event-bus';
import { InvalidEventError } from './fleet/bus/invalid-event-error';
import { FleetHeartbeat } from './fleet/instances/fleet-heartbeat';
import type { RegistrationMessage } from './fleet/instances/instance-channel';
import { storeLabel } from './fleet/store-label';
import type { GatewayHooks } from './hooks';
import { registerCompanyMetrics } from './listeners/company/company-metrics';
import { createCompanyListeners } from './listeners/company/company-wiring';
import { firestoreRefused, firestoreStatus } from './listeners/firestore-status';
import { warmUpFirestore } from './listeners/firestore-warm-up';
import { registerListenerMetrics } from './listeners/listener-metrics';
import { ListenersManager } from './listeners/listeners-manager';
import { logHooks } from './logger';
import { DeliveryMeters } from './metrics/delivery-meters';
import { DisconnectTracker } from './metrics/disconnect-tracker';
import { countHooks, createMetrics, type GatewayMetrics } from './metrics/prometheus';
import { createDispatcher, type Dispatch } from './rpc/dispatcher';
import { createHandlers } from './rpc/handlers';
import { createGatewayTasks, type GatewayTasks } from './tasks/gateway-tasks';
import { Admission } from './transport/admission';
import { HandshakeSlices } from './transport/handshake-slices';
import { healthAnswers } from './transport/http/health';
import { type HealthThread, startHealthThread } from './transport/http/health-thread';
import type { DependencyStatus, GatewayStats, HttpDeps } from './transport/http/http-deps';
import { createHttpHandler } from './transport/http/routes';
import { explainListenError } from './transport/port-in-use';
import { attachWsTransport, type WsTransportOptions } from './transport/ws';

/** How long an admin read of Redis (`/cluster`, the dashboard) waits before it answers 503. */
const ADMIN_READ_TIMEOUT_MS = 2_000;

/** A running (or ready to run) gateway. */
export interface Gateway {
  readonly config: GatewayConfig;
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Lifecycle events (sessions, detaches, registry cleanups, leases, admission): observe, never steer. */
  readonly hooks: GatewayHooks;
  /** Starts listening on `config.host:config.port` (and the health port, if any); resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Where the health thread listens (HEALTH_PORT), once listening; undefined without one. */
  healthAddress(): AddressInfo | undefined;
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

type Publish = (userId: string, event: AppEvent) => Promise<StoredEvent>;

/**
 * Builds a gateway on the given ports (see compose.ts: `composePorts` builds them from
 * the configuration; what is unset is the embedded in-memory adapter). Wires them and
 * nothing else: no side effects, nothing listens, no timer runs and no environment is
 * read until {@link Gateway.listen}.
 */
export function createGateway(config: GatewayConfig, given: GatewayPorts = {}): Gateway {
  const ports = resolvePorts(config, given);
  const { logger, hooks, bus, auth, presence, channel } = ports;
  logHooks(hooks, logger);
  if (config.production && auth.mode === 'none') {
    throw new TypeError('an AUTH_MODE=none authenticator is refused in production');
  }
  const startedAt = Date.now();
  const state: GatewayState = { draining: false, timers: [], healthThread: undefined };
  const publish: Publish = (userId, event) => bus.publish(userId, event);

  // The connections are made below; a detach, later, asks them which entries are left over.
  const listeners = createListeners(config, ports, (uid) => connections.removeLeftEntries(uid));
  const metrics = createMetrics({
    connections: () => connections.count,
    sessions: () => hub.sessionCount,
    users: () => hub.userCount,
    listeners: () => listeners.counters().attached,
    workflowListeners: () => listeners.counters().workflows,
    pendingDetaches: () => listeners.counters().pendingDetaches,
    bus: () => bus.stats(),
    eventsDelivered: () => hub.deliveredCount,
  });
  countHooks(hooks, metrics);
  registerListenerMetrics(metrics.registry, () => listeners.sourceStats());
  const tracker = new DisconnectTracker({ maxUsers: config.metricsMaxUsers });
  const meters = createMeters(ports, metrics, () => hub);
  const hub = new SessionHub({ bus, logger, maxBufferedBytes: config.maxBufferedBytes, latency: meters.latency });
  // Company listeners (LISTENERS_FILE `company`): one per company in the fleet, fanned out to followers.
  const companies = ports.companies
    ? createCompanyListeners({
        config,
        companies: ports.companies,
        registry: ports.registry,
        bus,
        hooks,
        logger,
        principals: (uid) => hub.sessionsOf(uid).map((s) => s.principal),
        ...(ports.liveness ? { liveness: ports.liveness } : {}),
      })
    : undefined;
  if (companies) registerCompanyMetrics(metrics.registry, () => companies.follows.stats());

  // TASK.*: off unless TASKS_ENABLED (unset: UNIFIED_REGISTRY_ENABLED); see tasks/gateway-tasks.ts and docs/tasks.md.
  const tasks = createGatewayTasks(config, { queue: ports.tasks, publish, logger, registry: metrics.registry });
  const dispatch = createRpcDispatch(config, ports, {
    listeners,
    hub,
    tasks,
    metrics,
    publish,
    companies,
    // Called by RPCs only, once `connections` (made below, with this dispatch) exists.
    admittingChanged: (message) => connections.onRegistration(message),
  });

  const admission = new Admission({
    maxHandshakes: config.admissionMaxHandshakes,
    maxLagMs: config.admissionMaxLagMs,
    retryAfterS: config.admissionRetryAfterS,
    ...(ports.eventLoopLagMs ? { lagMs: ports.eventLoopLagMs } : {}),
    onRefusing: (summary) => hooks.emit('admission.refused', summary),
  });

  // Upgrades, and each hello after its presence write and before its welcome, share the loop in slices (transport/handshake-slices.ts).
  const slices = new HandshakeSlices({
    onError: (error) => logger.error('ws_handler_error', { where: 'upgrade', error: String(error) }),
  });
  const connections = createConnectionHandler({
    config,
    logger,
    hooks,
    auth,
    bus,
    hub,
    listeners,
    dispatch,
    tracker,
    presence,
    channel,
    registry: ports.registry,
    isDraining: () => state.draining,
    slices,
  });

  const fleetHeartbeat = createFleetHeartbeat(config, ports, { hub, meters, connections, startedAt });

  const stats = (): GatewayStats => readStats({ connections, hub, listeners, admission, state });

  const httpDeps: HttpDeps = {
    ...httpReadouts(config, ports, { listeners, hub, tasks, stats, startedAt }),
    ...(companies ? { companyStats: () => companies.follows.stats() } : {}),
    dispatch,
    metrics,
    tracker,
    delivery: () => meters.snapshot(),
    throughputHistory: () => meters.throughput.history(),
    isDraining: () => state.draining,
  };
  const health = healthAnswers({ ...httpDeps, isListening: () => server.listening });

  const server = createGatewayServer(config, createHttpHandler(httpDeps), {
    logger,
    admission,
    core: connections,
    isDraining: () => state.draining,
    slices,
  });

  const wired: Wired = {
    config,
    ports,
    state,
    server,
    admission,
    connections,
    listeners,
    companies,
    tasks,
    metrics,
    meters,
    tracker,
    fleetHeartbeat,
    health,
    sessionBeat: () => sessionBeat(config, ports, connections, hub),
  };

  return {
    config,
    server,
    metrics,
    hooks,
    publish,
    stats,
    shutdown: (reason) => shutdownGateway(wired, reason),
    listen: () => listenGateway(wired),
    idle: () =>
      connections
        .settled()
        .then(() => listeners.idle())
        .then(() => companies?.follows.idle())
        .then(() => companies?.manager.idle()),
    healthAddress: () => state.healthThread?.address,
  };
}

/** This instance in the fleet: its sessions' presence kept alive, the instance announced. */
function createFleetHeartbeat(
  config: GatewayConfig,
  ports: ResolvedPorts,
  parts: { hub: SessionHub; meters: DeliveryMeters; connections: ConnectionHandler; startedAt: number },
): FleetHeartbeat {
  const { hub, meters, connections } = parts;
  return new FleetHeartbeat({
    presence: ports.presence,
    instanceId: config.instanceId,
    instanceTtlMs: config.instanceTtlMs,
    local: () => ({
      held: hub.sessionIdsByUser(),
      sessions: hub.sessionCount,
      users: hub.userCount,
      ...meters.announced(),
    }),
    reannounce: (uid) => connections.reannounce(uid),
    startedAt: parts.startedAt,
    version: ports.version,
    logger: ports.logger,
  });
}

/** Delivery latency and events in/out of the session hub (read lazily: the hub is made after). */
function createMeters(ports: ResolvedPorts, metrics: GatewayMetrics, hub: () => SessionHub): DeliveryMeters {
  return new DeliveryMeters({
    registry: metrics.registry,
    counts: () => ({ in: hub().receivedCount, out: hub().deliveredCount }),
    ...(ports.clockOffset ? { clockOffset: ports.clockOffset } : {}),
    ...(ports.snapshotDelay ? { snapshotDelay: ports.snapshotDelay } : {}),
    logger: ports.logger,
  });
}

/** What listen and shutdown change. */
interface GatewayState {
  draining: boolean;
  timers: NodeJS.Timeout[];
  healthThread: HealthThread | undefined;
}

/** The wired parts of one gateway, as listen and shutdown see them. */
interface Wired {
  config: GatewayConfig;
  ports: ResolvedPorts;
  state: GatewayState;
  server: Server;
  admission: Admission;
  connections: ConnectionHandler;
  listeners: ListenersManager;
  /** Company listeners (LISTENERS_FILE `company`); undefined without. */
  companies: ReturnType<typeof createCompanyListeners> | undefined;
  tasks: GatewayTasks;
  metrics: GatewayMetrics;
  meters: DeliveryMeters;
  tracker: DisconnectTracker;
  fleetHeartbeat: FleetHeartbeat;
  health: ReturnType<typeof healthAnswers>;
  /** The session heartbeat: pings, and the unified registry entries of present users kept alive. */
  sessionBeat: () => void;
}

/** The instance's counts, for `GET /debug`, the health answers and the fleet heartbeat. */
function readStats(parts: {
  connections: Pick<ConnectionHandler, 'count'>;
  hub: Pick<SessionHub, 'sessionCount' | 'userCount'>;
  listeners: Pick<ListenersManager, 'counters'>;
  admission: Pick<Admission, 'refused'>;
  state: Pick<GatewayState, 'draining'>;
}): GatewayStats {
  const c = parts.listeners.counters();
  return {
    connections: parts.connections.count,
    sessions: parts.hub.sessionCount,
    users: parts.hub.userCount,
    listeners: c.attached,
    workflowListeners: c.workflows,
    pendingDetaches: c.pendingDetaches,
    detachCancelled: c.detachCancelled,
    detachExecuted: c.detachExecuted,
    upgradesRefused: parts.admission.refused,
    draining: parts.state.draining,
  };
}

/** The HTTP server: the routes, and the /ws upgrade behind admission control. */
function createGatewayServer(
  config: GatewayConfig,
  handler: RequestListener,
  ws: Omit<WsTransportOptions, 'config'>,
): Server {
  const server = createServer(handler);
  // Admission first (transport/ws.ts): a refused upgrade costs a 503 of a few bytes, before any WebSocket work.
  attachWsTransport(server, { config, ...ws });
  // Keep-alive longer than the ALB's idle timeout (60 s) so the ALB, not us, closes idle HTTP connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

/** Starts the health thread (HEALTH_PORT) first, then the main port, then the timers. */
async function listenGateway(w: Wired): Promise<AddressInfo> {
  const { config, server, state } = w;
  // The health port first: it must answer (not ready) by the time the main port accepts clients.
  if (config.healthPort !== undefined) {
    const healthPort = config.healthPort;
    state.healthThread = await startHealthThread({
      port: healthPort,
      host: config.host,
      snapshot: () => ({ healthz: w.health.healthz(), readiness: w.health.readiness() }),
      onExit: (code) => w.ports.logger.error('health_thread_exit', { code, port: healthPort }),
    }).catch((error: unknown) => {
      throw explainListenError(error, 'HEALTH_PORT', healthPort);
    });
  }
  // Before the main port listens (readiness says not ready until then): the first user does not open the channel.
  if (w.ports.firestoreWarmUp) await warmUpFirestore(w.ports.firestoreWarmUp, w.ports.hooks);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    await state.healthThread?.stop();
    state.healthThread = undefined;
    throw explainListenError(error, 'PORT', config.port);
  });
  state.healthThread?.refresh(); // listening now: ready, if Redis is
  w.metrics.start();
  w.meters.start();
  w.admission.start();
  await w.ports.channel.listen((message) =>
    message.type === 'replace'
      ? w.connections.onControl(message)
      : message.type === 'registration'
        ? w.connections.onRegistration(message)
        : w.listeners.onControl(message),
  );
  state.timers.push(setInterval(w.sessionBeat, config.pingIntervalMs));
  w.fleetHeartbeat.start();
  w.listeners.start();
  w.companies?.manager.start();
  w.companies?.follows.start();
  state.timers.push(setInterval(() => w.tracker.sweep(), 30_000));
  for (const t of state.timers) t.unref();
  const address = server.address() as AddressInfo;
  logListening(w.ports, config, address);
  return address;
}

/** Drains the gateway once (later calls return at once); see core/shutdown.ts for the sequence. */
async function shutdownGateway(w: Wired, reason = 'requested'): Promise<void> {
  const { config, ports, state, server } = w;
  if (state.draining) return;
  state.draining = true;
  state.healthThread?.refresh(); // readiness 503 on the health port too, now
  await runShutdown(
    {
      stopTimers: () => {
        for (const t of state.timers) clearInterval(t);
        state.timers = [];
        w.fleetHeartbeat.stop();
        w.meters.stop();
        w.admission.stop();
      },
      stopAccepting: () => new Promise<void>((resolve) => server.close(() => resolve())),
      connections: w.connections,
      flushListeners: async (reconnectWindowMs) => {
        await w.companies?.follows.close();
        // One instance (no Redis): nowhere else to come back to, no reason to wait.
        const fleet = config.redisUrl !== undefined;
        await Promise.all([w.listeners.flush(fleet ? reconnectWindowMs : 0), w.companies?.manager.flush()]);
      },
      dropIdleHttp: () => server.closeIdleConnections(),
      dropAllHttp: () => server.closeAllConnections(),
      closeTasks: () => w.tasks.close(),
      retire: () => ports.presence.retire(config.instanceId),
      closePorts: () => Promise.allSettled([ports.bus.close(), ports.registry.close(), ports.channel.close()]),
      ...(ports.onClose ? { onClose: ports.onClose } : {}),
      stopHealth: async () => state.healthThread?.stop(),
    },
    { reason, graceMs: config.shutdownGraceMs, logger: ports.logger },
  );
}

/** Pings every connection and keeps the unified registry entries of present users alive. */
function sessionBeat(
  config: GatewayConfig,
  ports: ResolvedPorts,
  connections: ConnectionHandler,
  hub: SessionHub,
): void {
  connections.heartbeat();
  if (config.unifiedRegistryEnabled) {
    for (const uid of hub.userIds()) {
      ports.registry.touchUnified(uid, config.unifiedRegistryTtlS).catch(() => {
        // Redis down: /healthz reports it; the next beat tries again.
      });
    }
  }
}

/** What the HTTP routes read from the gateway's parts (the rest of {@link HttpDeps} is added by the caller). */
function httpReadouts(
  config: GatewayConfig,
  ports: ResolvedPorts,
  parts: {
    listeners: ListenersManager;
    hub: SessionHub;
    tasks: GatewayTasks;
    stats: () => GatewayStats;
    startedAt: number;
  },
): Omit<HttpDeps, 'dispatch' | 'metrics' | 'tracker' | 'isDraining' | 'delivery' | 'throughputHistory'> {
  const { listeners, hub, tasks } = parts;
  const { bus, presence } = ports;
  const depth = tasks.depth;
  return {
    config,
    logger: ports.logger,
    auth: ports.auth,
    stats: parts.stats,
    listenerCounters: () => listeners.counters(),
    listenerStats: () => listeners.sourceStats(),
    ...(config.listeners ? firestoreReadouts(listeners) : {}),
    redisStatus: ports.redisStatus,
    registry: ports.registry,
    publish: (userId, event) => bus.publish(userId, event),
    publishMany: (items) => bus.publishMany(items),
    busStats: () => bus.stats(),
    startedAt: parts.startedAt,
    version: ports.version,
    // Bounded: a Redis that stopped answering fails the admin read (503) instead of holding it.
    clusterInstances: () => withRedisTimeout(presence.instances(), ADMIN_READ_TIMEOUT_MS),
    debugSessions: () => ({ users: hub.describe(), pending_detaches: listeners.pendingDetaches() }),
    taskHealth: () => tasks.health(),
    ...(depth ? { taskQueueDepth: () => withRedisTimeout(depth(), ADMIN_READ_TIMEOUT_MS) } : {}),
  };
}

/** The listeners manager: attaches the sources of present users, detaches the departed after the delay. */
function createListeners(
  config: GatewayConfig,
  ports: ResolvedPorts,
  removeLeftEntries: (uid: string) => Promise<number>,
): ListenersManager {
  const { logger, hooks, bus, presence, detachDecision: decision } = ports;
  return new ListenersManager({
    sources: ports.sources ?? [],
    ...(ports.listenerStats ? { stats: ports.listenerStats } : {}),
    detachDelayMs: config.detachDelayMs,
    logger,
    cleanupRegistry: (uid) => decision.cleanupIfAbsent(uid),
    // Of the instances a user left at once, only the one whose claim wins cleans up.
    claimCleanup: (uid: string) => decision.claim(uid, config.instanceId),
    // Sessions of this instance are the manager's own count; only other instances' entries matter here.
    presentElsewhere: async (uid) => (await presence.sessions(uid)).some((s) => s.instanceId !== config.instanceId),
    removeLeftEntries,
    // Fenced by the lease the listener runs under: a stale holder's append is refused.
    emit: (uid, event, fence) =>
      bus.publish(uid, event, fence ? { fence } : {}).catch((error: unknown) => {
        // Never publishable (too large for a frame): the source skips it on purpose (listener_change_skipped).
        if (error instanceof InvalidEventError) {
          logger.warn('listener_emit_error', { uid, reason: 'invalid_event', error: error.message });
        } else if ((error as { code?: unknown }).code !== 'fenced') {
          // Fenced: the source hands the listeners back (lease.lost); anything else is an error.
          logger.error('listener_emit_error', { uid, error: String(error) });
        }
        throw error; // the source retries from its resume mark, skips an invalid event, or stops when fenced
      }),
    // What a killed holder published but never stored is in the user's stream (holes
    // and all: after a Redis failover the offsets skip even when nothing is missing).
    readSince: (uid, cursor) => (bus.readRetained ? bus.readRetained(uid, cursor) : bus.readSince(uid, cursor)),
    hooks,
    instanceId: config.instanceId,
    leaseTtlMs: config.listenerLeaseTtlMs,
    lease: ports.lease,
    // WORKFLOW.watch received here reaches the holder of the user's lease at once.
    channel: ports.channel,
    // A dead holder's users are taken over within LISTENER_FAILOVER_MS (docs/listeners.md).
    ...(ports.liveness ? { liveness: ports.liveness, failoverMs: config.listenerFailoverMs } : {}),
    workflowWatches: ports.workflowWatches,
    workflowWatchesMax: config.workflowMaxWatchesPerUser,
    ...(ports.workflowSource ? { workflowSource: ports.workflowSource } : {}),
  });
}

/** The RPC methods (over WebSocket and `POST /rpc`), timed out and measured. */
function createRpcDispatch(
  config: GatewayConfig,
  ports: ResolvedPorts,
  parts: {
    listeners: ListenersManager;
    hub: SessionHub;
    tasks: GatewayTasks;
    metrics: GatewayMetrics;
    publish: Publish;
    companies: ReturnType<typeof createCompanyListeners> | undefined;
    /** A registry entry changed here for a session not open here (it may be being admitted). */
    admittingChanged: (message: RegistrationMessage) => void;
  },
): Dispatch {
  const { logger, registry, presence } = ports;
  const { hub, metrics } = parts;
  return createDispatcher({
    timeoutMs: config.rpcTimeoutMs,
    handlers: createHandlers({
      registry,
      listeners: parts.listeners,
      logger,
      instanceId: config.instanceId,
      unifiedRegistryEnabled: config.unifiedRegistryEnabled,
      unifiedRegistryTtlS: config.unifiedRegistryTtlS,
      registryDebug: config.registryDebug,
      registryMaxSessionsPerUser: config.registryMaxSessionsPerUser,
      hasLiveSession: (uid) => hub.has(uid),
      // Here first (no round trip); else any instance of the fleet. Presence away: as far as we know, no.
      isOnline: async (uid) =>
        hub.has(uid) ||
        (await presence.sessions(uid).then(
          (s) => s.length > 0,
          () => false,
        )),
      publish: parts.publish,
      registered: (uid, sessionId, entry, tellHolder = true) => {
        // As the registry store writes it: the same JSON goes back after a stall.
        const json = entry && JSON.stringify(entry);
        const session = hub.get(uid, sessionId);
        if (session) {
          session.registration = json;
          return;
        }
        // A hello of the id being admitted here reads the entry again once its session opens.
        parts.admittingChanged({ type: 'registration', uid, session_id: sessionId });
        if (tellHolder) tellRegistration(ports, config.instanceId, { uid, session_id: sessionId });
      },
      tasks: parts.tasks.service,
      ...(parts.companies ? { companies: parts.companies.follows } : {}),
    }),
    observe: (method, outcome, seconds, error) => {
      metrics.rpcCalls.inc({ method, outcome });
      metrics.rpcSeconds.observe({ method }, seconds);
      if (error?.code === 'internal') logger.error('rpc_error', { method, error: String(error.cause ?? error) });
      else if (error?.cause) logger.warn('rpc_error', { method, code: error.code, error: String(error.cause) });
    },
  });
}

/**
 * A registry entry changed through this instance for a session another instance holds (a
 * backend's `POST /rpc`, another tab's call): its holder is told, to read the entry it writes
 * back after a stall. Best effort: a holder not told writes back the entry it last saw.
 */
function tellRegistration(ports: ResolvedPorts, me: string, message: Omit<RegistrationMessage, 'type'>): void {
  const { presence, channel, logger } = ports;
  presence
    .sessions(message.uid)
    .then((sessions) => {
      const holder = sessions.find((s) => s.sessionId === message.session_id)?.instanceId;
      if (holder && holder !== me) return channel.send(holder, { type: 'registration', ...message });
    })
    .catch((error: unknown) =>
      logger.warn('presence_error', {
        uid: message.uid,
        session_id: message.session_id,
        op: 'registration',
        error: String(error),
      }),
    );
}

/** The dashboard's and /healthz's Firestore readouts (LISTENERS_FILE set). */
function firestoreReadouts(
  listeners: ListenersManager,
): Pick<HttpDeps, 'firestoreReads' | 'firestoreStatus' | 'firestoreRefused'> {
  return {
    firestoreReads: () => listeners.sourceStats()?.reads.total ?? 0,
    // A listener that failed in the last moments (the emulator or network away) shows as down, to every viewer alike.
    firestoreStatus: (): DependencyStatus => firestoreStatus(listeners.sourceStats()),
    firestoreRefused: () => firestoreRefused(listeners.sourceStats()),
  };
}

/** The NODE_ENV values the gateway knows; any other is warned of at start (a typo of production?). */
const KNOWN_NODE_ENVS: readonly string[] = ['production', 'development', 'test'];

/** The start-up lines: what an operator checks first (which backends, which auth). */
function logListening(ports: ResolvedPorts, config: GatewayConfig, address: AddressInfo): void {
  const { logger } = ports;
  if (config.production && !config.allowedOrigins) {
    logger.warn('gateway_config_warning', {
      variable: 'ALLOWED_ORIGINS',
      message: 'unset: WebSocket upgrades are accepted from any Origin; list your front-end origins',
    });
  }
  if (config.production && config.authMode === 'jwt' && !config.jwtRequireExp) {
    logger.warn('gateway_config_warning', {
      variable: 'JWT_REQUIRE_EXP',
      message:
        'false: tokens without exp are accepted and never expire; a leaked one works until the secret or key changes',
    });
  }
  if (config.nodeEnv !== undefined && !KNOWN_NODE_ENVS.includes(config.nodeEnv)) {
    logger.warn('gateway_config_warning', {
      variable: 'NODE_ENV',
      message: `"${config.nodeEnv}" is not production: the production safeguards are off (AUTH_MODE=none allowed, ADMIN_TOKEN not required, JWT_REQUIRE_EXP off by default); set NODE_ENV=production for a deployment`,
    });
  }
  if (!config.adminToken) {
    // Only outside production (it is required there): the quick start, a test, a staging host.
    logger.warn('gateway_config_warning', {
      variable: 'ADMIN_TOKEN',
      message:
        'unset: POST /publish, /metrics, /ws-metrics, /debug, /cluster and the dashboard answer anyone who reaches this port; set it anywhere that port is reachable by others',
    });
  }
  if (config.tasksEnabled && config.taskMaxDocumentBytes >= config.maxPayloadBytes) {
    // A document travels inside one RPC frame: one near the limit is closed 1009 (413 on /rpc)
    // for its frame, never told `invalid_params` with the limit.
    logger.warn('gateway_config_warning', {
      variable: 'TASK_MAX_DOCUMENT_BYTES',
      message: `${config.taskMaxDocumentBytes} does not fit in a frame of MAX_PAYLOAD_BYTES (${config.maxPayloadBytes}); keep it well below, leaving room for the JSON escaping of the document`,
    });
  }
  logger.info('gateway_listening', {
    host: address.address,
    port: address.port,
    redis: ports.redisStatus(),
    auth: ports.auth.mode,
    registry: storeLabel(ports.registry),
    bus: storeLabel(ports.bus),
  });
}
