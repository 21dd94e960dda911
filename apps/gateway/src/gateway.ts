import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppEvent } from '@livebus/protocol';
import type { Authenticator } from './auth/authenticator';
import { authenticatorFor } from './auth/authenticator-for';
import type { GatewayConfig } from './config';
import { createConnectionHandler } from './core/connection-handler';
import { SessionHub } from './core/session-hub';
import type { EventBus, StoredEvent } from './fleet/bus/event-bus';
import { MemoryEventBus } from './fleet/bus/memory-event-bus';
import type { DetachDecision } from './fleet/detach/detach-decision';
import { type InstanceChannel, LocalInstanceChannel } from './fleet/instances/instance-channel';
import type { Lease } from './fleet/lease/lease';
import { MemoryPresence } from './fleet/presence/memory-presence';
import type { Presence } from './fleet/presence/presence';
import { MemoryRegistryStore } from './fleet/registry/memory-registry-store';
import type { RegistryStore } from './fleet/registry/registry-store';
import { type GatewayHookEvents, type GatewayHooks, Hooks } from './hooks';
import { registerListenerMetrics } from './listeners/listener-metrics';
import type { ListenerSource, WorkflowSource } from './listeners/listener-source';
import { ListenersManager } from './listeners/listeners-manager';
import type { WorkflowWatchStore } from './listeners/workflow-watch-store';
import { createLogger, type Logger } from './logger';
import { DisconnectTracker } from './metrics/disconnect-tracker';
import { createMetrics, type GatewayMetrics } from './metrics/prometheus';
import { createDispatcher, type Dispatch } from './rpc/dispatcher';
import { createHandlers } from './rpc/handlers';
import { createGatewayTasks } from './tasks/gateway-tasks';
import type { TaskQueue } from './tasks/task-queue';
import { Admission, refuseUpgrade } from './transport/admission';
import { enforceHeaderDeadline } from './transport/http/header-deadline';
import { healthAnswers } from './transport/http/health';
import { type HealthThread, startHealthThread } from './transport/http/health-thread';
import { createHttpHandler } from './transport/http/routes';
import { explainListenError } from './transport/port-in-use';

/** Health of an external dependency as reported on /healthz. */
export type DependencyStatus = 'ok' | 'down' | 'disabled';

/** Ports and collaborators; each defaults to its embedded implementation. */
export interface GatewayDeps {
  logger?: Logger;
  /** Where lifecycle events go. @default a fresh emitter, exposed as {@link Gateway.hooks} */
  hooks?: GatewayHooks;
  registry?: RegistryStore;
  bus?: EventBus;
  auth?: Authenticator;
  sources?: ListenerSource[];
  /** Who holds each user's listeners in the fleet. @default a memory lease (one instance) */
  lease?: Lease;
  /** Documents watched with WORKFLOW.watch; unset: watches are only counted. */
  workflowSource?: WorkflowSource;
  /** The fleet's set of jobs each user watches. @default in memory (one instance) */
  workflowWatches?: WorkflowWatchStore;
  /** Redis health as seen by its client; `disabled` when the gateway runs without Redis. */
  redisStatus?: () => DependencyStatus;
  /** The fleet's directory of sessions. @default in memory: this process is the whole fleet */
  presence?: Presence;
  /**
   * Decides atomically, in the store shared by the fleet, whether a user whose detach
   * delay ran out is gone everywhere, and cleans the registry if so. @default the
   * registry's own cleanup (one instance)
   */
  detachDecision?: DetachDecision;
  /** Orders to other instances (close a replaced session). @default none: one instance */
  channel?: InstanceChannel;
  /** Where `TASK.*` jobs go (BullMQ, from deps.ts); unset: the embedded in-process queue. */
  tasks?: TaskQueue;
  /** Event-loop lag (ms) seen by admission control. @default measured by a timer (tests inject it) */
  eventLoopLagMs?: () => number;
  /** Called last during shutdown (close Redis clients, Firebase apps). */
  onClose?: () => Promise<void>;
  version?: string;
}

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
  /** Upgrades answered `503` + `Retry-After` by admission control since start. */
  upgradesRefused: number;
  draining: boolean;
}

/**
 * Builds a gateway. No side effects: nothing listens, no timer runs and no
 * environment is read until {@link Gateway.listen}.
 */
export function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Gateway {
  const logger =
    deps.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, instanceId: config.instanceId });
  const hooks = deps.hooks ?? new Hooks<GatewayHookEvents>();
  const registry = deps.registry ?? new MemoryRegistryStore();
  const bus =
    deps.bus ??
    new MemoryEventBus({
      retentionEvents: config.streamRetentionEvents,
      retentionMs: config.streamRetentionMs,
      retentionBytes: config.streamRetentionBytes,
    });
  const auth = deps.auth ?? authenticatorFor(config);
  if (config.production && auth.mode === 'none') {
    throw new TypeError('an AUTH_MODE=none authenticator is refused in production');
  }
  const redisStatus = deps.redisStatus ?? (() => 'disabled' as const);
  const presence = deps.presence ?? new MemoryPresence({ instanceTtlMs: config.instanceTtlMs });
  const channel = deps.channel ?? new LocalInstanceChannel();
  const version = deps.version ?? '0.0.0';
  const startedAt = Date.now();
  const lastFirestoreErrors = { value: 0 };

  let draining = false;
  let timers: NodeJS.Timeout[] = [];
  let healthThread: HealthThread | undefined;

  const decision = deps.detachDecision;
  const listeners = new ListenersManager({
    sources: deps.sources ?? [],
    detachDelayMs: config.detachDelayMs,
    logger,
    cleanupRegistry: (uid, detachStartedAt) =>
      deps.detachDecision
        ? deps.detachDecision.cleanupIfAbsent(uid)
        : registry.cleanupUser(uid, detachStartedAt.toISOString()).then(() => 'cleaned' as const),
    // Of the instances a user left at once, only the one whose claim wins cleans up.
    ...(decision ? { claimCleanup: (uid: string) => decision.claim(uid, config.instanceId) } : {}),
    // Sessions of this instance are the manager's own count; only other instances' entries matter here.
    presentElsewhere: async (uid) => (await presence.sessions(uid)).some((s) => s.instanceId !== config.instanceId),
    emit: (uid, event) =>
      publish(uid, event).catch((error: unknown) => {
        logger.error('listener_emit_error', { uid, error: String(error) });
        throw error; // the source retries from its resume mark
      }),
    // What a killed holder published but never stored is in the user's stream.
    readSince: (uid, cursor) => bus.readSince(uid, cursor),
    onDetachOutcome: (outcome) => metrics.detaches.inc({ outcome }),
    instanceId: config.instanceId,
    leaseTtlMs: config.listenerLeaseTtlMs,
    ...(deps.lease ? { lease: deps.lease } : {}),
    ...(deps.workflowSource ? { workflowSource: deps.workflowSource } : {}),
    ...(deps.workflowWatches ? { workflowWatches: deps.workflowWatches } : {}),
  });

  const metrics = createMetrics({
    connections: () => connections.count,
    sessions: () => hub.sessionCount,
    users: () => hub.userCount,
    listeners: () => listeners.counters().attached,
    workflowListeners: () => listeners.counters().workflows,
    pendingDetaches: () => listeners.counters().pendingDetaches,
    retainedBytes: () => bus.stats().retainedBytes,
    eventsDelivered: () => hub.deliveredCount,
  });
  registerListenerMetrics(metrics.registry, () => listeners.sourceStats());
  const tracker = new DisconnectTracker({ maxUsers: config.metricsMaxUsers });
  const hub = new SessionHub({
    bus,
    logger,
    maxBufferedBytes: config.maxBufferedBytes,
  });

  // TASK.*: off unless UNIFIED_REGISTRY_ENABLED; see tasks/gateway-tasks.ts and docs/tasks.md.
  const tasks = createGatewayTasks(config, {
    queue: deps.tasks,
    publish: (uid, event) => publish(uid, event),
    logger,
    registry: metrics.registry,
  });

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
      hasLiveSession: (uid) => hub.has(uid),
      // Here first (no round trip); else any instance of the fleet. Presence away: as far as we know, no.
      isOnline: async (uid) =>
        hub.has(uid) ||
        (await presence.sessions(uid).then(
          (s) => s.length > 0,
          () => false,
        )),
      publish: (uid, event) => publish(uid, event),
      tasks: tasks.service,
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

  const admission = new Admission({
    maxHandshakes: config.admissionMaxHandshakes,
    maxLagMs: config.admissionMaxLagMs,
    retryAfterS: config.admissionRetryAfterS,
    ...(deps.eventLoopLagMs ? { lagMs: deps.eventLoopLagMs } : {}),
    onRefusing: ({ refused, reason, handshakes, lagMs }) =>
      logger.warn('ws_admission_refused', { refused, reason, handshakes, lag_ms: lagMs }),
  });

  const connections = createConnectionHandler({
    config,
    logger,
    auth,
    bus,
    hub,
    listeners,
    dispatch,
    metrics,
    tracker,
    presence,
    channel,
    isDraining: () => draining,
  });

  /**
   * The fleet heartbeat: keeps this instance's sessions alive in the presence
   * directory (a killed instance's expire within INSTANCE_TTL_MS) and announces
   * the instance for the cluster view. Entries that expired anyway (a stalled
   * process) are written again.
   */
  async function fleetBeat(): Promise<void> {
    try {
      const lost = await presence.refresh(config.instanceId, hub.userIds());
      await Promise.all(lost.map((uid) => connections.reannounce(uid)));
      await presence.announce(
        { id: config.instanceId, sessions: hub.sessionCount, users: hub.userCount, startedAt, version },
        config.instanceTtlMs,
      );
    } catch (error) {
      logger.warn('fleet_heartbeat_error', { error: String(error) });
    }
  }

  function heartbeat(): void {
    connections.heartbeat();
    if (config.unifiedRegistryEnabled) {
      for (const uid of hub.userIds()) {
        registry.touchUnified(uid, config.unifiedRegistryTtlS).catch(() => {
          // Redis down: /healthz reports it; the next beat tries again.
        });
      }
    }
  }

  const stats = (): GatewayStats => {
    const c = listeners.counters();
    return {
      connections: connections.count,
      sessions: hub.sessionCount,
      users: hub.userCount,
      listeners: c.attached,
      workflowListeners: c.workflows,
      pendingDetaches: c.pendingDetaches,
      detachCancelled: c.detachCancelled,
      detachExecuted: c.detachExecuted,
      upgradesRefused: admission.refused,
      draining,
    };
  };

  const health = healthAnswers({
    config,
    listenerCounters: () => listeners.counters(),
    stats,
    redisStatus,
    startedAt,
    version,
    isDraining: () => draining,
    taskHealth: () => tasks.health(),
    isListening: () => server.listening,
  });

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
      listenerStats: () => listeners.sourceStats(),
      ...(config.listeners
        ? {
            firestoreReads: () => listeners.sourceStats()?.reads.total ?? 0,
            // Listeners that failed since the dashboard's last look (the emulator or network away) show as down.
            firestoreStatus: () => {
              const errors = Object.values(listeners.sourceStats()?.errors ?? {}).reduce((a, b) => a + b, 0);
              const failing = errors > lastFirestoreErrors.value;
              lastFirestoreErrors.value = errors;
              return failing ? 'down' : 'ok';
            },
          }
        : {}),
      redisStatus,
      registry,
      publish,
      publishMany: (items) => bus.publishMany(items),
      busStats: () => bus.stats(),
      startedAt,
      version,
      clusterInstances: () => presence.instances(),
      isDraining: () => draining,
      debugSessions: () => ({ users: hub.describe(), pending_detaches: listeners.pendingDetaches() }),
      taskHealth: () => tasks.health(),
      ...(tasks.depth ? { taskQueueDepth: tasks.depth } : {}),
    }),
  );
  // Admission first: a refused upgrade costs a 503 of a few bytes, before any WebSocket work.
  server.on('upgrade', (req, socket, head) => {
    const decision = admission.check();
    if (!decision.admit) {
      refuseUpgrade(socket, decision.retryAfterS);
      return;
    }
    // Whatever ends the socket (a refused or failed handshake, a close) ends its count too.
    socket.once('close', decision.ticket.done);
    connections.handleUpgrade(req, socket, head, decision.ticket);
  });
  // A peer that never completes its request or upgrade is dropped within the handshake timeout.
  enforceHeaderDeadline(server, config.handshakeTimeoutMs);
  // Keep-alive longer than the ALB's idle timeout (60 s) so the ALB, not us, closes idle HTTP connections.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function shutdown(reason = 'requested'): Promise<void> {
    if (draining) return;
    draining = true;
    healthThread?.refresh(); // readiness 503 on the health port too, now
    const deadline = Date.now() + config.shutdownGraceMs;
    logger.info('gateway_shutdown_start', { reason, connections: connections.count, grace_ms: config.shutdownGraceMs });
    for (const t of timers) clearInterval(t);
    timers = [];
    admission.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Spread reconnects over a window so the remaining instances are not hit all at once.
    const spreadMs = Math.min(5_000, Math.max(500, config.shutdownGraceMs / 2));
    connections.closeAll(spreadMs);
    // Wait for close handshakes, but not past a share of the grace period.
    const closeBy = deadline - Math.min(2_000, config.shutdownGraceMs / 2);
    while (connections.count > 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, 20));
    connections.terminateAll();
    await withDeadline(
      connections.settled().then(() => listeners.flush()),
      deadline - Date.now(),
    );
    server.closeAllConnections();
    await withDeadline(closed, Math.max(0, deadline - Date.now()));
    await withDeadline(tasks.close(), Math.max(0, deadline - Date.now()));
    await presence.retire(config.instanceId).catch(() => {});
    await Promise.allSettled([bus.close(), registry.close(), channel.close()]);
    await deps.onClose?.().catch(() => {});
    await healthThread?.stop().catch(() => {});
    logger.info('gateway_shutdown_complete', { took_ms: config.shutdownGraceMs - (deadline - Date.now()) });
  }

  return {
    config,
    server,
    metrics,
    hooks,
    publish,
    shutdown,
    stats,
    idle: () => connections.settled().then(() => listeners.idle()),
    healthAddress: () => healthThread?.address,
    async listen() {
      // The health port first: it must answer (not ready) by the time the main port accepts clients.
      if (config.healthPort !== undefined) {
        const healthPort = config.healthPort;
        healthThread = await startHealthThread({
          port: healthPort,
          host: config.host,
          snapshot: () => ({ healthz: health.healthz(), readiness: health.readiness() }),
        }).catch((error: unknown) => {
          throw explainListenError(error, 'HEALTH_PORT', healthPort);
        });
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch(async (error: unknown) => {
        await healthThread?.stop();
        healthThread = undefined;
        throw explainListenError(error, 'PORT', config.port);
      });
      healthThread?.refresh(); // listening now: ready, if Redis is
      metrics.start();
      admission.start();
      await channel.listen((message) => connections.onControl(message));
      timers.push(setInterval(heartbeat, config.pingIntervalMs));
      timers.push(setInterval(() => void fleetBeat(), Math.max(100, Math.floor(config.instanceTtlMs / 3))));
      void fleetBeat();
      timers.push(setInterval(() => tracker.sweep(), 30_000));
      for (const t of timers) t.unref();
      const address = server.address() as AddressInfo;
      if (config.production && !config.allowedOrigins) {
        logger.warn('gateway_config_warning', {
          variable: 'ALLOWED_ORIGINS',
          message: 'unset: WebSocket upgrades are accepted from any Origin; list your front-end origins',
        });
      }
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
