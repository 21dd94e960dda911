import type { AppEvent, EventData, EventType } from '@livebus/protocol';
import { checkDelays, checkNumber, MAX_TIMER_MS } from './check-option';
import { outboxDefaults } from './defaults';
import { redisUrlAddress } from './describe-redis-error';
import { Outbox, type OutboxEvent, type OutboxStats } from './outbox';
import { dropNodesOf, isCluster, type RedisClient } from './redis/client';
import { closeRedis, openRedis, REDIS_CONNECT_TIMEOUT_MS } from './redis/open-redis';
import { type Publication, RedisStreamWriter, type StoredEvent } from './redis-stream-writer';
import { type RetentionOptions, resolveRetention } from './retention';

/** Where the publisher's Redis is: a URL (the publisher owns the connection) or a client you own. */
export type PublisherConnection =
  | {
      /**
       * `redis://` or `rediss://` URL; with `cluster`, one seed node of the cluster.
       * Missing, empty or not such a URL: {@link createPublisher} throws a `TypeError`
       * (ioredis would otherwise connect to localhost:6379).
       */
      redisUrl: string;
      /** The URL is a node of a Redis Cluster. @default false */
      cluster?: boolean;
    }
  | {
      /** An ioredis `Redis` or `Cluster`; the publisher neither configures nor closes it. */
      redis: RedisClient;
    };

/** Options of {@link createPublisher}. Retention must match the gateway's STREAM_RETENTION_*. */
export interface PublisherOptions extends RetentionOptions {
  /**
   * Waits between attempts when Redis cannot be reached, reconnecting between
   * them. An event that failed every one waits in the outbox (see `outboxMaxEvents`)
   * and is stored when Redis returns; with the outbox off it rejects with
   * {@link PublishError} `redis_unavailable`.
   * @default outboxDefaults.retryDelaysMs ([1000, 2000, 4000])
   */
  retryDelaysMs?: readonly number[];
  /**
   * Most events waiting for Redis (in flight, retrying or queued). Past it a
   * publish is refused at once with {@link PublishError} `outbox_full`, counted
   * in {@link Publisher.stats} `dropped`; a call larger than the bound alone is accepted when
   * nothing waits. 0: no outbox (reject after the retries).
   * @default outboxDefaults.maxEvents (10 000)
   */
  outboxMaxEvents?: number;
  /**
   * Most bytes of event JSON waiting for Redis (in flight, retrying or queued; UTF-16 units,
   * bytes for ASCII). Past it a publish is refused at once with {@link PublishError}
   * `outbox_full`, as past `outboxMaxEvents`; a call larger than the bound alone is accepted
   * when nothing waits. Bounds the memory held through an outage (the events take about two to
   * three times their JSON). 0: no bound in bytes.
   * @default outboxDefaults.maxBytes (64 MiB)
   */
  outboxMaxBytes?: number;
  /**
   * Told when events are queued, dropped, or drained after an outage, and when
   * Redis becomes `unreachable` (with why: `failure.message` reads "cannot reach
   * Redis at 10.0.0.5:6379 (ECONNREFUSED)"; on a Cluster, the node that failed: "cannot reach
   * Redis Cluster node 10.0.0.7:7003 (seed seed.internal:7000) (ECONNREFUSED)", once for each
   * node that fails; a call stored on another node counts as `reachable`) or `reachable` again:
   * once per change, not per retry (in a partial Cluster outage, a change at each of that node's
   * retries). For logs and metrics. A callback that throws is logged with
   * console.error and changes nothing else.
   */
  onOutboxEvent?: (event: OutboxEvent) => void;
  /**
   * How long one attempt waits for Redis to answer (a frozen or blackholed Redis keeps the
   * connection open and never does). Past it the attempt fails as a lost connection does
   * (`ETIMEDOUT`): retried with `retryDelaysMs`, then held in the outbox (or rejected
   * `redis_unavailable` with the outbox off), and {@link Publisher.stats} says Redis is `down`.
   * Also bounds `close()`'s wait for Redis's answer to `QUIT`. 0: attempts wait for ever; `close()`
   * still settles, giving up on the calls out after 5 s and on `QUIT` after 2 s.
   * @default outboxDefaults.attemptTimeoutMs (5000)
   */
  attemptTimeoutMs?: number;
}

/** Defaults of {@link PublisherOptions} beyond retention. */
export const publisherDefaults = {
  retryDelaysMs: outboxDefaults.retryDelaysMs,
  outboxMaxEvents: outboxDefaults.maxEvents,
  outboxMaxBytes: outboxDefaults.maxBytes,
  attemptTimeoutMs: outboxDefaults.attemptTimeoutMs,
} as const;

/** Publishes events to users of a livebus fleet through Redis. */
export interface Publisher {
  /** Validates and publishes one event; resolves with it as stored (its cursor and ts). */
  publish(userId: string, event: AppEvent): Promise<StoredEvent>;
  /** The same, with the event's type and data apart (typed by the protocol's event table). */
  publish<E extends EventType>(userId: string, type: E, data: EventData<E>): Promise<StoredEvent>;
  /** Validates all, then publishes all; results in the order given. */
  publishMany(items: readonly Publication[]): Promise<StoredEvent[]>;
  /**
   * The outbox's counters (waiting now; queued, dropped and stored since start),
   * whether Redis is `up` or `down`, and the last reason it could not be reached.
   */
  stats(): OutboxStats;
  /**
   * Waits at most `timeoutMs` (`Infinity`: until none is left) for every accepted event to be
   * stored. True when every event it waited for was stored; false when time ran out or one of
   * them was rejected instead (Redis refused it, it failed its retries with the outbox off, or
   * `close()` dropped it: its publish says why). Rejects with a `TypeError` for a `timeoutMs`
   * that is missing, `NaN` or negative (it used to return at once).
   */
  flush(timeoutMs: number): Promise<boolean>;
  /**
   * Closes the connection if the publisher opened it (`QUIT`, given up after `attemptTimeoutMs`,
   * 2 s when it is 0: it settles even when Redis does not answer). Events sent and not answered yet
   * settle with Redis's answer (`redis_unavailable` if none comes within `attemptTimeoutMs`, 5 s
   * when it is 0), events sent before that wait for a retry reject with `redis_unavailable`
   * (either may be stored: `maybeStored`); events not sent yet, and later publishes, reject with
   * `closed` (call `flush` first). Every event
   * rejected so (later publishes aside) counts in `stats().dropped` and is told to
   * `onOutboxEvent` as `dropped` with reason `closed`.
   */
  close(): Promise<void>;
}

/**
 * Refuses a connection that would silently go elsewhere: `process.env.REDIS_URL!`
 * with the variable unset passes `undefined`, which ioredis reads as localhost:6379,
 * so a production app's events could land in a developer's Redis. The URL itself
 * is not quoted (it may hold a password).
 */
function checkConnection(connection: PublisherConnection | undefined): void {
  if (connection && 'redis' in connection) {
    if (connection.redis && typeof connection.redis.on === 'function') return;
    throw new TypeError('createPublisher: `redis` must be an ioredis Redis or Cluster client');
  }
  const url = (connection as { redisUrl?: unknown } | undefined)?.redisUrl;
  if (typeof url !== 'string' || url.trim() === '') {
    throw new TypeError(
      'createPublisher: `redisUrl` is missing or empty (is REDIS_URL set?); refusing to fall back to localhost:6379',
    );
  }
  if (!redisUrlAddress(url)) {
    throw new TypeError('createPublisher: `redisUrl` must be a redis:// or rediss:// URL with a host name');
  }
}

/** Why a publish through an ended client of the caller's (`{ redis }`) failed, and what to do. */
const CLIENT_CLOSED =
  'the Redis client given to createPublisher is closed (quit(), disconnect(), or its retryStrategy gave up); the publisher never reopens a client it does not own: call its connect() to publish again';

function connect(connection: PublisherConnection): { client: RedisClient; owned: boolean } {
  if ('redis' in connection) return { client: connection.redis, owned: false };
  // The fleet's connection policy (openRedis): a command fails as soon as a reconnect
  // attempt fails instead of queueing, since the outbox retries with the caller's delays.
  // Errors surface as rejected publishes and in the outbox's `unreachable` event.
  const client = openRedis(connection.redisUrl, { cluster: connection.cluster === true, role: 'publisher' });
  return { client, owned: true };
}

/**
 * A publisher for a backend (a worker, an API) that sends events to users
 * connected to any gateway of the fleet. Events are validated against the
 * protocol before Redis sees them (`InvalidEventError`, never retried).
 *
 * Events go through an {@link Outbox}: in order per user, retried through a
 * Redis outage, and held (bounded) until Redis returns.
 *
 * A reply lost with the connection does not store an event twice: the publisher numbers its
 * batches, a retry sends the same batch, and the append answers one it stored already with its
 * cursors (`stats().deduplicated`; limits in docs/reliability.md, "Exactly once through a lost
 * reply").
 *
 * @throws TypeError when `redisUrl` is missing, empty or not a `redis://` /
 * `rediss://` URL (or `redis` is not a client), or when a numeric option is out of its range
 * (NaN, negative, a fraction where a count or Redis's milliseconds are meant, `retryDelaysMs`
 * empty): at once, naming the option, not at the first publish.
 */
export function createPublisher(connection: PublisherConnection, options: PublisherOptions = {}): Publisher {
  checkConnection(connection);
  const attemptTimeoutMs = options.attemptTimeoutMs ?? publisherDefaults.attemptTimeoutMs;
  const outboxMaxBytes = options.outboxMaxBytes ?? publisherDefaults.outboxMaxBytes;
  const outboxMaxEvents = options.outboxMaxEvents ?? publisherDefaults.outboxMaxEvents;
  const retryDelaysMs = options.retryDelaysMs ?? publisherDefaults.retryDelaysMs;
  const where = 'createPublisher';
  checkNumber(where, 'attemptTimeoutMs', attemptTimeoutMs, { min: 0, max: MAX_TIMER_MS, zero: 'no limit' });
  checkNumber(where, 'outboxMaxBytes', outboxMaxBytes, { min: 0, zero: 'no bound in bytes' });
  checkNumber(where, 'outboxMaxEvents', outboxMaxEvents, { min: 0, integer: true, zero: 'no outbox' });
  checkDelays(where, 'retryDelaysMs', retryDelaysMs, outboxMaxEvents > 0);
  resolveRetention(options, where);
  const { client, owned } = connect(connection);
  const writer = new RedisStreamWriter(client, options);
  const outbox = new Outbox(client, writer, {
    retryDelaysMs,
    attemptTimeoutMs,
    maxEvents: outboxMaxEvents,
    maxBytes: outboxMaxBytes,
    ...(options.onOutboxEvent ? { onEvent: options.onOutboxEvent } : {}),
    // The URL as given (a host name, not the IP it resolved to); for a Cluster, its seed node.
    ...('redisUrl' in connection ? { redisAddress: connection.redisUrl } : {}),
    // Only a connection of ours is touched: one that stopped answering is dropped for a new one (its
    // commands fail, the retry resends), one not connected yet is connected. A client of the caller's
    // that ended is never opened again: ioredis does not say whether its owner closed it (quit(),
    // disconnect()) or its retryStrategy gave up, and reopening the first stores events after the
    // owner's shutdown and keeps the process from exiting.
    reconnect: (stale, _cause, userIds) => {
      if (!owned) return;
      // On a Cluster, only the nodes of the users whose calls went unanswered: the other shards'
      // calls in flight stand. ioredis connects to a node again at its next slots refresh.
      if (stale && isCluster(client) && userIds) dropNodesOf(client, userIds);
      // `connect`: connected, its ready check (INFO) not answered. ioredis's connectTimeout ends
      // at the TCP connect and the ready check has no timeout of its own: a frozen Redis accepts
      // the connection (its kernel does) and never answers, and the client would stay so for
      // ever, the publishes behind it waiting even once the name points at a new primary.
      // (`connecting` is bounded by connectTimeout: ioredis drops it by itself.)
      else if (stale && (client.status === 'ready' || client.status === 'connect')) client.disconnect(true);
      else if (client.status === 'end' || client.status === 'wait') client.connect().catch(() => {});
    },
    // Its events fail at once rather than wait, in the outbox, for a connect() that may never come.
    ...(owned ? {} : { clientClosed: () => (client.status === 'end' ? CLIENT_CLOSED : undefined) }),
  });

  function publish(userId: string, event: AppEvent): Promise<StoredEvent>;
  function publish<E extends EventType>(userId: string, type: E, data: EventData<E>): Promise<StoredEvent>;
  function publish(userId: string, eventOrType: AppEvent | EventType, data?: unknown): Promise<StoredEvent> {
    const event = (typeof eventOrType === 'string' ? { event: eventOrType, data } : eventOrType) as AppEvent;
    // Never throws: a refused event is a rejected promise, as from an async function.
    try {
      return outbox.sendOne(userId, event);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return {
    publish,
    publishMany: (items) => {
      // Never throws either: `publishMany(undefined)` would otherwise throw reading its length.
      if (!Array.isArray(items)) {
        const got = items === null ? 'null' : typeof items;
        return Promise.reject(new TypeError(`publishMany: items must be an array of { userId, event }, got ${got}`));
      }
      try {
        return outbox.send(items);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    stats: () => outbox.stats(),
    // Checked here for the name the caller knows: NaN (`flush()`) would make a deadline that is already past.
    flush: async (timeoutMs) => {
      if (timeoutMs !== Number.POSITIVE_INFINITY) checkNumber('flush', 'timeoutMs', timeoutMs, { min: 0 });
      return outbox.drain(timeoutMs);
    },
    close: async () => {
      // The round in flight settles first (bounded by attemptTimeoutMs), on the open connection.
      await outbox.close();
      // QUIT waits for Redis's answer: bounded, so a frozen Redis cannot hold up a shutdown.
      if (owned) await closeRedis(client, attemptTimeoutMs || REDIS_CONNECT_TIMEOUT_MS);
    },
  };
}
