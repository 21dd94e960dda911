import winston from 'winston';
import type { GatewayHooks } from './hooks';

/** Stable log event names; operators query them in CloudWatch Logs Insights. Each is documented in docs/operations.md. */
export const LOG_EVENTS = [
  'gateway_listening',
  'gateway_shutdown_start',
  'gateway_shutdown_complete',
  'ecs_task_status',
  'ws_connect',
  'ws_disconnect',
  'ws_auth_failed',
  'ws_bad_frame',
  'ws_slow_consumer',
  'ws_events_missed',
  'ws_rate_limited',
  'user_detach_delay_start',
  'user_detach_cancelled',
  'user_detach_executing',
  'user_attach_error',
  'REGISTRY_CLEANUP_START',
  'REGISTRY_CLEANUP_SUCCESS',
  'REGISTRY_CLEANUP_ERROR',
  'REGISTRY_CLEANUP_SKIPPED',
  'ws_cleanup_complete',
  'registry_op',
  'fallback',
  'rpc_error',
  'redis_status',
  'publish_outbox',
  'ws_resume_error',
  'listener_emit_error',
  'bus_unsubscribe_error',
  'bus_catch_up_stalled',
  'bus_catch_up_recovered',
  'bus_listener_error',
  'ws_handler_error',
  'http_handler_error',
  'http_unavailable',
  'http_client_gone',
  'http_auth_failed',
  'jwks_refresh_error',
  'ws_origin_refused',
  'ws_admission_refused',
  'ws_token_refreshed',
  'ws_token_refresh_failed',
  'ws_token_expired',
  'gateway_config_warning',
  'health_thread_exit',
  'fleet_heartbeat_error',
  'presence_error',
  'handshake_stalled',
  'task_queued',
  'task_finished',
  'task_retry',
  'task_handed_back',
  'task_stalled',
  'task_given_up',
  'task_lock_lost',
  'task_worker_error',
  'task_worker_listening',
  'task_worker_idle',
  'task_worker_shutdown_start',
  'task_worker_shutdown_complete',
  'listener_error',
  'listener_recovered',
  'listener_stalled',
  'listener_change_skipped',
  'listener_lease_acquired',
  'listener_lease_lost',
  'listener_holder_dead',
  'listener_lease_released',
  'listener_lease_error',
  'listener_docs_overflow',
  'workflow_watch_error',
  'redis_clock_error',
  'firestore_warm_up',
  'firestore_closed',
] as const;

/** One of {@link LOG_EVENTS}. */
export type LogEvent = (typeof LOG_EVENTS)[number];

/** Structured fields of a log line (uid, session_id, code, ...). */
export type LogFields = Record<string, unknown>;

/** A log line's level. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** The gateway's logger: one JSON object per line with `event` and `instance_id`. */
export interface Logger {
  error(event: LogEvent, fields?: LogFields): void;
  warn(event: LogEvent, fields?: LogFields): void;
  info(event: LogEvent, fields?: LogFields): void;
  debug(event: LogEvent, fields?: LogFields): void;
  /**
   * Whether a line at `level` is written: callers on hot paths skip building its fields when
   * not. A logger without it is taken to write every level.
   */
  enabled?(level: LogLevel): boolean;
}

/** Whether `logger` writes lines at `level` (a logger that cannot tell is taken to). */
export const logsAt = (logger: Logger, level: LogLevel): boolean => logger.enabled?.(level) !== false;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  format: 'json' | 'pretty';
  instanceId: string;
  /** Where lines go. @default process.stdout (through winston's Console transport) */
  transport?: winston.transport;
}

/** Builds a winston logger writing JSON lines (or coloured lines with `format: 'pretty'`). */
export function createLogger(options: LoggerOptions): Logger {
  const format =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.colorize(),
          winston.format.printf(({ timestamp, level, message, ...rest }) => {
            const fields = Object.entries(rest)
              .filter(([k]) => k !== 'instance_id')
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return `${timestamp} ${level} ${message} ${fields}`;
          }),
        );
  const transport = options.transport ?? new winston.transports.Console();
  const w = winston.createLogger({
    level: options.level,
    format,
    transports: [transport],
  });
  // winston formats a line before its transports filter by level, so lines are filtered up
  // front. Its isLevelEnabled builds arrays and a closure per call: the levels it enables are
  // asked once, and again only when the logger's or the transport's level has changed.
  const on: Record<LogLevel, boolean> = { error: false, warn: false, info: false, debug: false };
  let seenLevel: string | undefined;
  let seenTransportLevel: string | undefined;
  function enabled(level: LogLevel): boolean {
    if (w.level !== seenLevel || transport.level !== seenTransportLevel) {
      seenLevel = w.level;
      seenTransportLevel = transport.level;
      for (const l of LOG_LEVELS) on[l] = w.isLevelEnabled(l);
    }
    return on[level];
  }
  const instanceId = options.instanceId;
  const at =
    (level: LogLevel) =>
    (event: LogEvent, fields: LogFields = {}) => {
      // One object, as winston takes it whole: its (level, message, meta) form would write a
      // `message` field as "<event> <message>". A line's message is its event, or its own.
      // The instance first, so that a line's own `instance_id` (another instance's) is kept.
      if (enabled(level)) w.log({ message: event, instance_id: instanceId, event, ...fields, level });
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), enabled };
}

/**
 * Writes the log lines of the lifecycle moments (src/hooks.ts) that have one, with the
 * event names, levels and fields operators query (docs/operations.md, docs/runbook.md):
 * components emit hooks and never format these lines themselves. Subscribed once per
 * gateway; returns the function that unsubscribes. The session and admission moments
 * subscribe with `propagate`: a logger that throws fails the code that emitted, as the
 * inline log call they replace did (a socket handler's guard closes that socket 1011).
 */
export function logHooks(hooks: GatewayHooks, logger: Logger): () => void {
  const propagate = { propagate: true };
  const offs = [
    hooks.on('detach.delay_start', (e) =>
      logger.info('user_detach_delay_start', { uid: e.uid, session_id: e.sessionId, delay_ms: e.delayMs }),
    ),
    hooks.on('detach.cancelled', (e) => {
      if (e.late) logger.info('user_detach_cancelled', { uid: e.uid, late: true });
      else if (e.elsewhere) logger.info('user_detach_cancelled', { uid: e.uid, elsewhere: true });
      else logger.info('user_detach_cancelled', { uid: e.uid, session_id: e.sessionId });
    }),
    hooks.on('detach.executing', (e) => logger.info('user_detach_executing', { uid: e.uid, listeners: e.listeners })),
    hooks.on('detach.complete', (e) => logger.info('ws_cleanup_complete', { uid: e.uid })),
    hooks.on('registry.cleanup', (e) => {
      switch (e.phase) {
        case 'skipped':
          return logger.info('REGISTRY_CLEANUP_SKIPPED', { uid: e.uid, reason: e.reason });
        case 'start':
          return logger.info('REGISTRY_CLEANUP_START', { uid: e.uid, attempt: e.attempt });
        case 'success':
          return logger.info('REGISTRY_CLEANUP_SUCCESS', { uid: e.uid, attempt: e.attempt, outcome: e.outcome });
        case 'error':
          return logger.error('REGISTRY_CLEANUP_ERROR', { uid: e.uid, attempt: e.attempt, error: e.error });
      }
    }),
    hooks.on('lease.acquired', (e) =>
      logger.info('listener_lease_acquired', {
        uid: e.uid,
        token: e.token,
        listeners: e.listeners,
        ...(e.from ? { from: e.from } : {}),
      }),
    ),
    hooks.on('lease.holder_dead', (e) =>
      logger.warn('listener_holder_dead', { holder: e.holder, reason: e.reason, users: e.users }),
    ),
    hooks.on('firestore.warm_up', (e) =>
      e.outcome === 'ok'
        ? logger.info('firestore_warm_up', { ms: e.ms, outcome: e.outcome })
        : logger.warn('firestore_warm_up', { ms: e.ms, outcome: e.outcome, ...(e.error ? { error: e.error } : {}) }),
    ),
    hooks.on('lease.lost', (e) =>
      logger.warn(
        'listener_lease_lost',
        e.token === undefined ? { uid: e.uid, reason: e.reason } : { uid: e.uid, token: e.token, reason: e.reason },
      ),
    ),
    hooks.on('lease.released', (e) =>
      logger.info('listener_lease_released', { uid: e.uid, token: e.token, handover: e.handover }),
    ),
    // Once per connection each: their fields are built only for a level that is written.
    hooks.on(
      'session.open',
      (e) => {
        if (!logsAt(logger, 'info')) return;
        logger.info('ws_connect', {
          uid: e.uid,
          session_id: e.sessionId,
          service: e.service,
          resume_from: e.resumeFrom,
        });
      },
      propagate,
    ),
    hooks.on(
      'session.close',
      (e) => {
        if (!logsAt(logger, 'info')) return;
        logger.info(
          'ws_disconnect',
          e.authenticated
            ? { uid: e.uid, session_id: e.sessionId, code: e.code, reason: e.reason, type: e.type }
            : { code: e.code, reason: e.reason, type: e.type, authenticated: false },
        );
      },
      propagate,
    ),
    hooks.on(
      'session.auth_failed',
      (e) => {
        const fields = { reason: e.reason, code: e.code, error: e.error };
        // An authenticator that failed (not a refused token) is the operator's problem: error.
        if (e.reason === 'error') logger.error('ws_auth_failed', fields);
        else logger.warn('ws_auth_failed', fields);
      },
      propagate,
    ),
    hooks.on(
      'session.token_refreshed',
      (e) => logger.info('ws_token_refreshed', { uid: e.uid, session_id: e.sessionId, expires_at_ms: e.expiresAtMs }),
      propagate,
    ),
    hooks.on(
      'session.token_refresh_failed',
      (e) =>
        logger.warn('ws_token_refresh_failed', {
          uid: e.uid,
          session_id: e.sessionId,
          reason: e.reason,
          ...(e.error === undefined ? {} : { error: e.error }),
        }),
      propagate,
    ),
    hooks.on(
      'session.token_expired',
      (e) => logger.info('ws_token_expired', { uid: e.uid, session_id: e.sessionId }),
      propagate,
    ),
    hooks.on(
      'admission.refused',
      (e) =>
        logger.warn('ws_admission_refused', {
          refused: e.refused,
          reason: e.reason,
          handshakes: e.handshakes,
          lag_ms: e.lagMs,
        }),
      propagate,
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}
