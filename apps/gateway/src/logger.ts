import winston from 'winston';

/** Stable log event names; operators query them in CloudWatch Logs Insights. Each is documented in docs/operations.md. */
export const LOG_EVENTS = [
  'gateway_listening',
  'gateway_shutdown_start',
  'gateway_shutdown_complete',
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
  'ws_handler_error',
  'http_handler_error',
  'http_auth_failed',
  'ws_origin_refused',
  'ws_admission_refused',
  'ws_token_refreshed',
  'ws_token_refresh_failed',
  'ws_token_expired',
  'gateway_config_warning',
  'fleet_heartbeat_error',
  'presence_error',
  'task_queued',
  'task_finished',
  'task_retry',
  'task_handed_back',
  'task_stalled',
  'task_lock_lost',
  'task_worker_error',
  'task_worker_listening',
  'task_worker_idle',
  'task_worker_shutdown_start',
  'task_worker_shutdown_complete',
  'listener_error',
  'listener_stalled',
  'listener_lease_acquired',
  'listener_lease_lost',
  'listener_lease_released',
  'listener_lease_error',
  'listener_docs_overflow',
  'workflow_watch_error',
] as const;

/** One of {@link LOG_EVENTS}. */
export type LogEvent = (typeof LOG_EVENTS)[number];

/** Structured fields of a log line (uid, session_id, code, ...). */
export type LogFields = Record<string, unknown>;

/** The gateway's logger: one JSON object per line with `event` and `instance_id`. */
export interface Logger {
  error(event: LogEvent, fields?: LogFields): void;
  warn(event: LogEvent, fields?: LogFields): void;
  info(event: LogEvent, fields?: LogFields): void;
  debug(event: LogEvent, fields?: LogFields): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
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
  const w = winston.createLogger({
    level: options.level,
    format,
    defaultMeta: { instance_id: options.instanceId },
    transports: [options.transport ?? new winston.transports.Console()],
  });
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (event: LogEvent, fields: LogFields = {}) => {
      // winston formats a line before its transports filter by level: skip that work up front.
      if (w.isLevelEnabled(level)) w.log(level, event, { event, ...fields });
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
