import { describeRedisError, type OutboxEvent, type RedisClient } from '@livebus/publisher';
import type { Logger } from '../logger';
import { RedisProbe } from './redis-probe';

/** The client events {@link RedisStatusLog} listens to (an ioredis `Redis` or `Cluster`). */
export interface StatusEmitter {
  on(event: 'ready' | 'close' | 'end' | 'reconnecting', listener: () => void): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

/** Options of {@link RedisStatusLog}. */
export interface RedisStatusLogOptions {
  /** First wait before repeating "still down"; each repeat doubles it. @default 1_000 */
  firstRepeatMs?: number;
  /** Longest wait between two "still down" lines. @default 60_000 */
  maxRepeatMs?: number;
  /** The clock, for tests that must not wait minutes. @default Date.now */
  now?: () => number;
  /** REDIS_URL, so that `error` names the host and port as configured (never the password). */
  redisUrl?: string | undefined;
}

/**
 * Logs `redis_status` when Redis goes down or comes back, and while it stays
 * down repeats it with a doubling interval (1 s, 2 s, 4 s, ... 60 s): ioredis
 * reports every reconnect attempt (several a second during an outage), which
 * would bury everything else in the log. Each "down" line carries `error`, why
 * the last attempt failed ("cannot reach Redis at HOST:PORT (ECONNREFUSED)"),
 * once the client has said.
 */
export class RedisStatusLog {
  #state: 'starting' | 'up' | 'down' = 'starting';
  #downSince = 0;
  #attempts = 0;
  #repeatMs: number;
  #nextAt = 0;
  readonly #first: number;
  readonly #max: number;
  readonly #now: () => number;
  #why: string | undefined;

  constructor(
    readonly logger: Logger,
    client: StatusEmitter,
    options: RedisStatusLogOptions = {},
  ) {
    this.#first = options.firstRepeatMs ?? 1_000;
    this.#max = options.maxRepeatMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#repeatMs = this.#first;
    client.on('ready', () => this.#up());
    client.on('close', () => this.#down());
    client.on('end', () => this.#down());
    client.on('reconnecting', () => this.#retrying());
    const where = options.redisUrl;
    client.on('error', (error) => {
      this.#why = describeRedisError(error, { where });
    });
  }

  /**
   * Redis did not answer a PING on a connection that looks up, or answered that it is loading its
   * dataset (see `RedisProbe`), told every round: `down`, with why, then repeated on the same doubling schedule as a reconnecting
   * client's (no `reconnecting` events come from a connection that stays up); {@link answering}
   * when it answers again is `up`.
   */
  unanswered(why: string): void {
    this.#why = why;
    if (this.#state === 'down') this.#retrying();
    else this.#down();
  }

  /** Redis answers again after {@link unanswered}. */
  answering(): void {
    if (this.#state === 'down') this.#up();
  }

  #reason(): { error?: string } {
    return this.#why ? { error: this.#why } : {};
  }

  #up(): void {
    if (this.#state === 'up') return;
    const fields = this.#state === 'down' ? { down_ms: this.#now() - this.#downSince, attempts: this.#attempts } : {};
    this.#state = 'up';
    this.#why = undefined;
    this.logger.info('redis_status', { status: 'up', ...fields });
  }

  #down(): void {
    if (this.#state === 'down') return;
    this.#state = 'down';
    this.#downSince = this.#now();
    this.#attempts = 0;
    this.#repeatMs = this.#first;
    this.#nextAt = this.#downSince + this.#repeatMs;
    this.logger.warn('redis_status', { status: 'down', ...this.#reason() });
  }

  #retrying(): void {
    if (this.#state !== 'down') return;
    this.#attempts++;
    const now = this.#now();
    if (now < this.#nextAt) return;
    this.logger.warn('redis_status', {
      status: 'down',
      down_ms: now - this.#downSince,
      attempts: this.#attempts,
      ...this.#reason(),
    });
    this.#repeatMs = Math.min(this.#repeatMs * 2, this.#max);
    this.#nextAt = now + this.#repeatMs;
  }
}

/**
 * Logs the publish outbox once per outage, not once per event: `queued` when
 * the first event starts waiting, `drained` when Redis took them back, and
 * `dropped` at most every 5 s with the count since the last line; the count not logged yet
 * goes out before `drained`, and with the drops of a close (the last line a process writes),
 * so that every dropped event is in some line. Redis going
 * `unreachable` and `reachable` is left to {@link RedisStatusLog}: the outbox
 * shares the client it watches.
 */
export function outboxLogger(logger: Logger, now: () => number = Date.now): (event: OutboxEvent) => void {
  let queuing = false;
  let queued = 0;
  let dropped = 0;
  let droppedReason = '';
  let droppedLoggedAt = Number.NEGATIVE_INFINITY;
  const logDropped = (waiting: number) => {
    logger.error('publish_outbox', { status: 'dropped', reason: droppedReason, dropped, waiting });
    droppedLoggedAt = now();
    dropped = 0;
  };
  return (event) => {
    if (event.kind === 'queued') {
      queued += event.events;
      if (!queuing) logger.warn('publish_outbox', { status: 'queued', waiting: event.waiting });
      queuing = true;
    } else if (event.kind === 'drained') {
      if (dropped > 0) logDropped(0);
      if (queuing || queued > 0) logger.info('publish_outbox', { status: 'drained', queued, down_ms: event.downMs });
      queuing = false;
      queued = 0;
    } else if (event.kind === 'dropped') {
      // Drops of another reason than the ones counted so far get a line of their own.
      if (dropped > 0 && event.reason !== droppedReason) logDropped(event.waiting);
      dropped += event.events;
      droppedReason = event.reason;
      if (event.reason === 'closed' || now() - droppedLoggedAt >= 5_000) logDropped(event.waiting);
    }
  };
}

/**
 * Logs a Redis client's state changes ({@link RedisStatusLog}) and starts a {@link RedisProbe}
 * that tells the same log when Redis stops answering on a connection that looks up: what the
 * gateway and the worker both watch their main connection with. Stop the probe on close.
 */
export function watchRedis(logger: Logger, client: RedisClient, redisUrl: string | undefined): RedisProbe {
  const status = new RedisStatusLog(logger, client, redisUrl === undefined ? {} : { redisUrl });
  const probe = new RedisProbe(client, {
    onChange: (answering) => answering && status.answering(),
    onUnanswered: (why) => status.unanswered(why),
    // Loading its dataset: up, serving nothing yet; logged as down with why, the connection kept.
    onLoading: (why) => status.unanswered(why),
  });
  probe.start();
  return probe;
}
