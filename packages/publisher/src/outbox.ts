import { randomBytes } from 'node:crypto';
import type { AppEvent } from '@livebus/protocol';
import { checkDelays, checkNumber, MAX_TIMER_MS } from './check-option';
import { RedisTimeoutError } from './connection-error';
import { outboxDefaults } from './defaults';
import {
  clusterNodeNamed,
  describeRedisError,
  type RedisAddress,
  redisClientAddress,
  redisErrorCode,
} from './describe-redis-error';
import { checkFence, validatedJson } from './invalid-event-error';
import { PublishError } from './publish-error';
import { isCluster, type RedisClient } from './redis/client';
import { userSlot } from './redis/cluster-slot';
import type { CommandDelivery } from './redis/command-delivery';
import { FENCED_REPLY } from './redis/stream-scripts';
import {
  type BatchResult,
  fenceRuns,
  type Publication,
  type PublishFence,
  type RedisStreamWriter,
  type StoredEvent,
  type UserBatch,
} from './redis-stream-writer';
import { isPasswordRefusal, isTransientRedisError } from './transient-redis-error';

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /**
   * Waits between attempts while Redis cannot be reached. Once an event has
   * failed every one of them it is "queued": it stays in the outbox and is
   * retried at the last delay (or as soon as the client reconnects) until
   * Redis takes it. With `maxEvents: 0` it is rejected instead.
   * @default outboxDefaults.retryDelaysMs ([1000, 2000, 4000])
   */
  retryDelaysMs?: readonly number[];
  /**
   * Most events the outbox holds, in flight and waiting. A publish that would
   * exceed it is refused at once with {@link PublishError} `outbox_full` (the
   * events already waiting keep their place), counted in `dropped`; a single call
   * larger than the bound is accepted when nothing waits. 0 turns the
   * outbox off: an event that failed every retry rejects with `redis_unavailable`.
   * @default outboxDefaults.maxEvents (10 000)
   */
  maxEvents?: number;
  /**
   * Most bytes of event JSON the outbox holds, in flight and waiting (each event's JSON as
   * stored, without the frame's envelope; counted in UTF-16 units, which is bytes for ASCII).
   * A publish that would exceed it is refused at once with {@link PublishError} `outbox_full`,
   * as past `maxEvents`; a single call larger than the bound is accepted when nothing waits.
   * Bounds the memory the outbox takes through an outage: the events' objects and their JSON
   * take about two to three times this. 0: no bound in bytes. Not used with `maxEvents: 0`.
   * @default outboxDefaults.maxBytes (64 MiB)
   */
  maxBytes?: number;
  /** Most events sent in one round of calls. @default outboxDefaults.batchEvents (2 000) */
  batchEvents?: number;
  /**
   * Most bytes of event JSON (as {@link maxBytes} counts them: UTF-16 units, bytes for ASCII)
   * sent in one round: a round of large events is cut short of `batchEvents`, which keeps the
   * data one attempt must move within `attemptTimeoutMs` bounded (a round that cannot finish in
   * time is tried again with at least the same events). A round always takes at least one
   * event. 0: no bound in bytes. @default outboxDefaults.batchBytes (4 MiB)
   */
  batchBytes?: number;
  /**
   * How long one attempt (a round of script calls) waits for Redis to answer. Past it the
   * attempt fails as a lost connection does (`ETIMEDOUT`: Redis is `down` in the stats, an
   * `unreachable` event): its events are retried with `retryDelaysMs`, then queued (or
   * rejected `redis_unavailable` with the outbox off). Bounds `close()` too. 0: no limit, except
   * that `close()` gives up on the calls out after 5 s (the default), so that it settles.
   * @default outboxDefaults.attemptTimeoutMs (5000)
   */
  attemptTimeoutMs?: number;
  /**
   * Told of events dropped (`outbox_full`; `closed`: waiting at close, sent or not), of events that moved to
   * waiting (`queued`) and drained, and of Redis becoming `unreachable` (again
   * when the cause changes; on a Cluster, once for each node that fails, and a call stored on any
   * node counts as `reachable`) or `reachable`: once per change, not per retry (in a partial
   * Cluster outage, a change at each of that node's retries). A throw is
   * logged with console.error and does not affect the outbox.
   */
  onEvent?: (event: OutboxEvent) => void;
  /**
   * Where the client connects, for {@link RedisConnectionFailure.message} (a URL
   * or host and port); for a Redis Cluster, its seed node. On a Cluster a failed call's message
   * names the node it went to (the error's address, else the user's node in the slot map), with
   * this as the seed: "cannot reach Redis Cluster node 10.0.0.7:7003 (seed seed.internal:7000)
   * (ECONNREFUSED)"; this alone only when no node is known.
   * @default the standalone client's host and port; none for a Cluster
   */
  redisAddress?: string | RedisAddress;
  /**
   * Called before each retry round while sending fails: a client whose own
   * reconnects gave up must be told to connect again. `stale`: an attempt got no
   * answer within `attemptTimeoutMs` on a connection that still looks up (a frozen
   * Redis, an address that swallows packets: `cause` `timeout`), or was answered `READONLY`
   * (the node became a replica: `readonly`): it should be dropped for a new one. `userIds`: the
   * users whose calls got no answer or were refused so (on a Cluster, only their shards' nodes).
   */
  reconnect?: (stale?: boolean, cause?: 'timeout' | 'readonly', userIds?: readonly string[]) => void;
  /**
   * Why the client cannot carry the events any more, when it is closed and not the outbox's to
   * open again (a client its caller owns, closed with `quit()`): an attempt that fails while this
   * says so is not retried, nor queued, and its calls reject with `redis_unavailable` and this
   * message. Nothing would ever send them, and an event must not be stored after its owner's shutdown.
   */
  clientClosed?: () => string | undefined;
}

/** What the outbox tells {@link OutboxOptions.onEvent}. */
export type OutboxEvent =
  | { kind: 'queued'; events: number; waiting: number }
  | { kind: 'dropped'; reason: 'outbox_full' | 'closed'; events: number; waiting: number }
  | { kind: 'drained'; events: number; downMs: number }
  | { kind: 'unreachable'; failure: RedisConnectionFailure; waiting: number }
  | { kind: 'reachable'; downMs: number };

/** Why Redis cannot be reached, as {@link OutboxStats} and the `unreachable` event carry it. */
export interface RedisConnectionFailure {
  /** `ECONNREFUSED`, `ENOTFOUND`, `ETIMEDOUT`, `WRONGPASS`, `NOAUTH`, a TLS code... (see `redisErrorCode`). */
  code: string;
  /**
   * "cannot reach Redis at 10.0.0.5:6379 (ECONNREFUSED)": host and port only, never a password; on
   * a Cluster, of the node that failed, with the seed ({@link OutboxOptions.redisAddress}).
   */
  message: string;
  /** When this cause was first seen (ms since the epoch). */
  sinceMs: number;
}

/** Counters of an {@link Outbox}, for metrics and tests. */
export interface OutboxStats {
  /** Events accepted and not yet stored (in flight, retrying or queued). */
  waiting: number;
  /** Events that failed every retry and waited in the outbox, since start. */
  queued: number;
  /**
   * Events let go without Redis taking them, since start: refused (outbox full), or waiting at
   * close (never sent: rejected `closed`; sent and not answered, in flight or waiting for a retry:
   * rejected `redis_unavailable`, and Redis may have stored one of those). Each is told in a
   * `dropped` event too.
   */
  dropped: number;
  /** Events stored, since start. */
  stored: number;
  /**
   * Attempts that failed for a passing reason (connection lost, a Redis Cluster
   * failing over: see `isTransientRedisError`) and were retried, since start:
   * one per event per failed attempt.
   */
  retried: number;
  /**
   * Events of a retried batch that Redis had stored already (the reply was lost,
   * e.g. with a master that died): answered from the user's meta, not stored
   * again, since start.
   */
  deduplicated: number;
  /** Capacity; 0 when the outbox is off. */
  maxEvents: number;
  /** Bytes of event JSON of the events waiting (see {@link OutboxOptions.maxBytes}). */
  waitingBytes: number;
  /** Capacity in bytes of event JSON; 0: no bound in bytes. */
  maxBytes: number;
  /** `down` from a failed attempt to reach Redis until it is reached again; `unknown` before the first attempt. */
  redis: 'unknown' | 'up' | 'down';
  /**
   * The last reason Redis could not be reached (kept after it returns, for the record); on a
   * Cluster, of the node that failed last; undefined if none yet.
   */
  lastRedisFailure: RedisConnectionFailure | undefined;
}

/** What a round's failed batches ask of the connection once the round is over. */
interface RoundOutcome {
  /** A batch failed for a passing reason (its user backs off). */
  unreachable: boolean;
  /** The users whose batch was answered `READONLY` (their connection is on a replica). */
  readOnly: string[];
  /** Calls whose events failed for a passing reason, with the most attempts any of their users' batches has failed now. */
  failed: Map<Entry, number>;
  /** {@link Outbox}'s count of `ready` when the round was sent: a failure after a later one is retried at once. */
  readies: number;
  /** When the round was sent: a failed batch's retry delay counts from there. */
  sentAt: number;
  /**
   * The client was ready when the round was sent: its commands were written to the connection,
   * not queued for one to come (on a Cluster, the cluster client's state: a node's is not looked at).
   */
  connected: boolean;
}

/** A call of `publish`/`publishMany`: settles once each of its events is stored (or refused). */
interface Entry {
  items: Item[];
  left: number;
  /** Rounds that failed for want of Redis, the first included. */
  failures: number;
  isQueued: boolean;
  /** Made by {@link Outbox.sendOne}: resolves with its one event, not a list. */
  single: boolean;
  /**
   * Its last failed batch's error and, on a Cluster, that user's node and what that node said
   * during the attempt (`why`: its own error, when the batch's says no more than that it gave up):
   * what its rejection says.
   */
  failure?: { error: unknown; node: string | undefined; why: unknown };
  /** An attempt of it was sent and got no answer: Redis may have stored (or may yet store) its events. */
  maybeStored?: boolean;
  /**
   * Rejected by `close()` with part of it sent: the part never sent was counted dropped then; the
   * part sent is counted once answered, in `stored` or (its attempt failed) in `dropped`.
   */
  closedPartlySent?: boolean;
  resolve: (stored: StoredEvent[] | StoredEvent) => void;
  reject: (error: unknown) => void;
}

interface Item {
  userId: string;
  event: AppEvent;
  /** The event's JSON, made once when it was validated: counted against `maxBytes`, sent as is. */
  json: string;
  fence: PublishFence | undefined;
  entry: Entry;
  stored: StoredEvent | undefined;
  /**
   * The batch it was first sent in (0: not sent yet; batches are numbered from 1) and its place
   * there: a retry sends that batch again, as it was. Two numbers, not an object per event.
   */
  batchSeq: number;
  batchIndex: number;
  /** On a Redis Cluster, the node that held the user's keys when the event came (`host:port`), for {@link NODE_SHARE}. */
  node: string | undefined;
}

const nothing = () => {};

/**
 * With `attemptTimeoutMs: 0` (attempts wait for ever), how long `close()` waits for the calls out
 * before it gives up on them (`redis_unavailable`, `ETIMEDOUT`): the default attempt timeout.
 */
const CLOSE_WAIT_MS = outboxDefaults.attemptTimeoutMs;

/**
 * On a Redis Cluster, the share of the outbox's bounds (events and bytes) that the users of one
 * node may hold: the rest is kept for the other nodes' users, so a shard that stops answering
 * (its users' events pile up) refuses its own users' publishes first rather than everyone's.
 */
const NODE_SHARE = 0.9;

/** Most nodes whose last error the outbox keeps (a Cluster's nodes; see `#nodeErrors`). */
const MAX_NODE_ERRORS = 64;

/** A batch sent before, as {@link batchSizes} keys it. */
const batchKey = (item: Item) => `${item.batchSeq}\n${item.userId}`;

/** Events and bytes of JSON of `items`, by the key `keyOf` gives (none: not counted). */
function sizesBy(
  items: readonly Item[],
  keyOf: (item: Item) => string | undefined,
): Map<string, { events: number; bytes: number }> {
  const sizes = new Map<string, { events: number; bytes: number }>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === undefined) continue;
    const size = sizes.get(key);
    if (size) {
      size.events++;
      size.bytes += item.json.length;
    } else sizes.set(key, { events: 1, bytes: item.json.length });
  }
  return sizes;
}

/** Of each batch sent before that waits to be sent again. */
const batchSizes = (items: readonly Item[]) => sizesBy(items, (i) => (i.batchSeq === 0 ? undefined : batchKey(i)));

/** Of a call's events not sent yet, by user (all of them waiting). */
const callSizesByUser = (entry: Entry) =>
  sizesBy(entry.items, (i) => (i.batchSeq !== 0 || i.stored ? undefined : i.userId));

/**
 * The one way events leave a publisher (and the gateway's `POST /publish`) for
 * Redis: a bounded FIFO of events. A single sender takes events from the front,
 * one atomic batch per user per round (many users' batches in one script call
 * on a standalone Redis, one call per user on a Cluster), and only takes more when
 * the round is over (on a Cluster, at once for the users with no call out: a shard that does not
 * answer holds its own users only); an event Redis could not take stays in front of its user's later
 * ones, and that user waits out its retry delay, so each user's events are stored in the
 * order they were published, even across an outage. The other users' events go on
 * meanwhile: a Cluster shard failing over holds its own users only. With Redis away
 * every user fails in turn, and the outbox waits for the first one due (or for the
 * client to reconnect); the events are stored as soon as Redis returns.
 *
 * Exactly once through a lost reply: the outbox has a random id, numbers each
 * user's batch as it first sends it, and sends a failed batch again as it was (the
 * user's later events wait for the next round); the append script records each
 * publisher's last batch in the user's meta and answers a batch it has stored
 * already with its cursors, storing nothing (docs/reliability.md).
 */
export class Outbox {
  readonly #writer: RedisStreamWriter;
  readonly #delays: readonly number[];
  readonly #max: number;
  readonly #maxBytes: number;
  /** Bytes of JSON of the items held ({@link OutboxOptions.maxBytes}). */
  #bytes = 0;
  readonly #batch: number;
  readonly #batchBytes: number;
  readonly #attemptTimeoutMs: number;
  readonly #onEvent: (event: OutboxEvent) => void;
  readonly #reconnect: NonNullable<OutboxOptions['reconnect']>;
  readonly #clientClosed: NonNullable<OutboxOptions['clientClosed']>;
  readonly #client: RedisClient;
  readonly #items: Item[] = [];
  readonly #stats = { queued: 0, dropped: 0, stored: 0, retried: 0, deduplicated: 0 };
  /** Events accepted that left without being stored (their call rejected), since start: for {@link drain}. */
  #unstored = 0;
  /** This outbox's id in the users' meta: random, new for each outbox (each publisher, each gateway start). */
  readonly id = randomBytes(9).toString('base64url');
  #seq = 0;
  #sending = false;
  /** The sender's loop while it runs: `close()` waits for it (the round in flight, then it stops). */
  #running: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #downSince = 0;
  /**
   * Users whose last batch failed for a passing reason (their Cluster shard failing over, or
   * Redis away): each waits out its own retry delay, the other users' events go on meanwhile.
   */
  readonly #backoff = new Map<string, { failures: number; dueAt: number }>();
  /**
   * The sender sleeps because every user waiting is backing off or has a call out (a publish of
   * another may wake it).
   */
  #nothingToSend = false;
  /**
   * On a Redis Cluster (one call per user, each to its own shard) rounds overlap: the next one
   * goes without waiting for the calls still out, of the users that have none out. A shard that
   * stops answering then holds its own users only; on a standalone Redis, one connection, the
   * next round waits for the last (and takes what queued meanwhile).
   */
  readonly #overlap: boolean;
  /** On a Cluster, the events and bytes of JSON held for the users of each node ({@link NODE_SHARE}). */
  readonly #byNode = new Map<string, { events: number; bytes: number }>();
  /** On a Cluster, the node that holds a user's keys now; undefined before the client knows the slots. */
  readonly #nodeOf: ((userId: string) => string | undefined) | undefined;
  /** Users with a call out (overlapping rounds): their next events wait for its answer. */
  readonly #inFlight = new Set<string>();
  /**
   * The rounds whose calls are not all answered yet: `close()` waits for them. Each with what gives
   * up on its calls still out (they fail `ETIMEDOUT`), for a close with no `attemptTimeoutMs`.
   */
  readonly #rounds = new Map<Promise<boolean>, () => void>();
  /** Calls answered since the queue was last cleared of stored and refused events (overlapping rounds). */
  #unsettled = false;
  /** A wake of the sender is set for the next turn of the event loop ({@link #wakeAfterAnswers}). */
  #wakeSet = false;
  /** Times the client reported `ready`: a call sent before the last one that fails is due again at once. */
  #readies = 0;
  /** A batch was stored since the last one failed for a passing reason: an outage that ended can be told `drained`. */
  #storedSinceFailure = true;
  /**
   * Whether Redis took this client's password once: it was ready (its ready check passed, with
   * the password), or a round stored events. A password refused after that is a rotation.
   */
  #passwordTaken = false;
  #lastError: unknown;
  #redis: OutboxStats['redis'] = 'unknown';
  #failure: RedisConnectionFailure | undefined;
  /**
   * The causes told since Redis went down, by the node their message names (on a Cluster; '' for
   * the client as a whole, and for a standalone Redis): each is told once, and a failure of a
   * node already told is its cause again, as the last failure.
   */
  readonly #causes = new Map<string, RedisConnectionFailure>();
  #redisDownSince = 0;
  readonly #address: string | RedisAddress | undefined;
  readonly #onReady = () => {
    this.#passwordTaken = true;
    this.#reached();
    this.#readies++;
    // A reconnect ends every wait at once: a short blip costs the blip, not the next retry delay.
    // The failures stay counted: a connection that flaps goes on at the later delays.
    for (const b of this.#backoff.values()) b.dueAt = 0;
    this.#wake?.();
  };
  readonly #onClientError = (error: unknown) => this.#unreachable(error);
  /**
   * On a Cluster, each node's last error of its own (a connect refused, a reset), as ioredis tells
   * it (`node error`, by the node's `host:port`, as the slot map names it), and when: a failed
   * call's error only says that ioredis gave up ("Too many Cluster redirections. Last error:
   * Connection is closed.").
   */
  readonly #nodeErrors = new Map<string, { error: unknown; at: number }>();
  readonly #onNodeError = (error: unknown, node: unknown) => {
    if (typeof node !== 'string') return;
    this.#nodeErrors.delete(node);
    // A cluster has few nodes; bounded all the same, against addresses that change over months.
    if (this.#nodeErrors.size >= MAX_NODE_ERRORS)
      this.#nodeErrors.delete(this.#nodeErrors.keys().next().value as string);
    this.#nodeErrors.set(node, { error, at: Date.now() });
  };

  constructor(client: RedisClient, writer: RedisStreamWriter, options: OutboxOptions = {}) {
    this.#client = client;
    this.#writer = writer;
    this.#delays = options.retryDelaysMs ?? outboxDefaults.retryDelaysMs;
    this.#max = options.maxEvents ?? outboxDefaults.maxEvents;
    this.#maxBytes = options.maxBytes ?? outboxDefaults.maxBytes;
    this.#batch = options.batchEvents ?? outboxDefaults.batchEvents;
    const batchBytes = options.batchBytes ?? outboxDefaults.batchBytes;
    this.#batchBytes = batchBytes > 0 ? batchBytes : Number.POSITIVE_INFINITY;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? outboxDefaults.attemptTimeoutMs;
    checkNumber('Outbox', 'maxEvents', this.#max, { min: 0, integer: true, zero: 'no outbox' });
    checkDelays('Outbox', 'retryDelaysMs', this.#delays, this.#max > 0);
    checkNumber('Outbox', 'maxBytes', this.#maxBytes, { min: 0, zero: 'no bound in bytes' });
    checkNumber('Outbox', 'batchEvents', this.#batch, { min: 1, integer: true });
    checkNumber('Outbox', 'batchBytes', batchBytes, { min: 0, zero: 'no bound in bytes' });
    checkNumber('Outbox', 'attemptTimeoutMs', this.#attemptTimeoutMs, { min: 0, max: MAX_TIMER_MS, zero: 'no limit' });
    this.#onEvent = options.onEvent ? guarded(options.onEvent) : nothing;
    this.#reconnect = options.reconnect ?? nothing;
    this.#clientClosed = options.clientClosed ?? (() => undefined);
    this.#address = options.redisAddress ?? redisClientAddress(client);
    this.#overlap = isCluster(client);
    this.#nodeOf = isCluster(client) ? (userId) => client.slots[userSlot(userId)]?.[0] : undefined;
    // A reconnect ends the wait at once: a short blip costs the blip, not the next retry delay.
    client.on('ready', this.#onReady);
    this.#passwordTaken = client.status === 'ready';
    // The client's own errors say why (ECONNREFUSED, ENOTFOUND, WRONGPASS); a failed command
    // only says it gave up. Listened to only where someone already listens: a first listener
    // would silence the "[ioredis] Unhandled error event" lines of a client the caller owns.
    if (client.listenerCount('error') > 0) client.on('error', this.#onClientError);
    // Not an `error` event: listening silences nothing.
    if (isCluster(client)) client.on('node error', this.#onNodeError);
  }

  /**
   * Validates the events (throwing `InvalidEventError` before anything is
   * queued), queues them behind every earlier one, and resolves with them as
   * stored, in the order given.
   */
  send(publications: readonly Publication[]): Promise<StoredEvent[]> {
    return this.#enqueue(publications, false) as Promise<StoredEvent[]>;
  }

  /**
   * {@link send} for one event, resolving with it as stored: `publish()`'s way, without a
   * list made for its argument and its result.
   */
  sendOne(userId: string, event: AppEvent): Promise<StoredEvent> {
    return this.#enqueue([{ userId, event }], true) as Promise<StoredEvent>;
  }

  #enqueue(publications: readonly Publication[], single: boolean): Promise<StoredEvent[] | StoredEvent> {
    if (this.#closed) return Promise.reject(new PublishError('closed', 'the publisher is closed'));
    // Every event is validated before any is queued; the items are made from them after.
    const events = new Array<AppEvent>(publications.length);
    const jsons = new Array<string>(publications.length);
    let bytes = 0;
    try {
      for (let k = 0; k < publications.length; k++) {
        const p = publications[k] as Publication;
        const valid = validatedJson(p.userId, p.event);
        if (p.fence) checkFence(p.userId, p.fence);
        events[k] = valid.event;
        jsons[k] = valid.json;
        bytes += valid.json.length;
      }
    } catch (error) {
      // A rejection, not a throw: callers chain on the promise.
      return Promise.reject(error);
    }
    const valid = publications;
    if (valid.length === 0) return Promise.resolve([]);
    const nodes = this.#nodeOf && this.#max > 0 ? publications.map((p) => this.#nodeOf?.(p.userId)) : undefined;
    const full = this.#full(valid.length, bytes) ?? (nodes && this.#fullForNode(nodes, jsons));
    if (full) {
      this.#stats.dropped += valid.length;
      this.#onEvent({ kind: 'dropped', reason: 'outbox_full', events: valid.length, waiting: this.#items.length });
      return Promise.reject(new PublishError('outbox_full', `${full}; try again later`));
    }
    this.#bytes += bytes;
    if (nodes) for (let k = 0; k < nodes.length; k++) this.#countNode(nodes[k], 1, (jsons[k] as string).length);
    return new Promise<StoredEvent[] | StoredEvent>((resolve, reject) => {
      const entry: Entry = { items: [], left: valid.length, failures: 0, isQueued: false, single, resolve, reject };
      for (let k = 0; k < valid.length; k++) {
        const p = valid[k] as Publication;
        entry.items.push({
          userId: p.userId,
          event: events[k] as AppEvent,
          json: jsons[k] as string,
          fence: p.fence || undefined,
          entry,
          stored: undefined,
          batchSeq: 0,
          batchIndex: 0,
          node: nodes?.[k],
        });
      }
      this.#items.push(...entry.items);
      if (!this.#sending) this.#running = this.#run();
      // The sender sleeps until a user backing off is due: this user may go now.
      else if (this.#nothingToSend && valid.some((p) => this.#mayGo(p.userId))) this.#wake?.();
    });
  }

  /** Why `events` more events of `bytes` bytes of JSON would exceed a bound; undefined when they fit. */
  #full(events: number, bytes: number): string | undefined {
    // One call larger than a bound (in events or in bytes) still goes alone when nothing waits: it
    // could never go otherwise, and "try again later" would be a lie.
    if (this.#max === 0 || this.#items.length === 0) return undefined;
    if (this.#items.length + events > this.#max) return `the outbox holds ${this.#items.length} of ${this.#max} events`;
    if (this.#maxBytes > 0 && this.#bytes + bytes > this.#maxBytes) {
      return `the outbox holds ${this.#bytes} of ${this.#maxBytes} bytes of events`;
    }
    return undefined;
  }

  /**
   * On a Cluster: why these events would take one node's users past {@link NODE_SHARE} of the
   * bounds; undefined when they fit. A call is refused whole, as past the bounds themselves.
   */
  #fullForNode(nodes: readonly (string | undefined)[], jsons: readonly string[]): string | undefined {
    // One event (publish()): no map of what each node adds.
    if (nodes.length === 1) {
      const node = nodes[0];
      return node !== undefined && this.#overNodeShare(node, 1, (jsons[0] as string).length)
        ? this.#nodeFull(node)
        : undefined;
    }
    const adding = new Map<string, { events: number; bytes: number }>();
    nodes.forEach((node, k) => {
      if (node === undefined) return;
      const add = adding.get(node) ?? { events: 0, bytes: 0 };
      add.events++;
      add.bytes += (jsons[k] as string).length;
      adding.set(node, add);
    });
    for (const [node, add] of adding) if (this.#overNodeShare(node, add.events, add.bytes)) return this.#nodeFull(node);
    return undefined;
  }

  /**
   * Whether `events` more events of `bytes` bytes would take `node`'s users past {@link NODE_SHARE}:
   * as the bounds themselves (#full), a call larger than the share goes alone when nothing waits
   * (and one event always fits).
   */
  #overNodeShare(node: string, events: number, bytes: number): boolean {
    if (this.#items.length === 0) return false;
    const held = this.#byNode.get(node);
    const maxBytes = this.#maxBytes * NODE_SHARE;
    return (
      (held?.events ?? 0) + events > Math.max(1, Math.floor(this.#max * NODE_SHARE)) ||
      (maxBytes > 0 && (held?.bytes ?? 0) + bytes > maxBytes)
    );
  }

  #nodeFull(node: string): string {
    const held = this.#byNode.get(node) ?? { events: 0, bytes: 0 };
    return `the users of the Redis node ${node} hold ${held.events} of the outbox's ${this.#max} events and ${held.bytes} bytes (at most ${NODE_SHARE * 100} % of either for one node's users; the rest is kept for the other nodes' users)`;
  }

  /** Counts events joining (`sign` 1) or leaving (-1) the outbox against their node. */
  #countNode(node: string | undefined, sign: 1 | -1, bytes: number): void {
    if (node === undefined) return;
    const held = this.#byNode.get(node);
    // Kept at zero rather than deleted: a Cluster has few nodes, and a quiet one would be made anew per publish.
    if (held) {
      held.events += sign;
      held.bytes += sign * bytes;
    } else if (sign > 0) this.#byNode.set(node, { events: 1, bytes });
  }

  /** An event leaves the outbox (stored, refused, dropped): its bytes and node count no more. */
  #release(item: Item): void {
    this.#bytes -= item.json.length;
    if (item.node !== undefined) this.#countNode(item.node, -1, item.json.length);
  }

  /** Counters since start and what waits now. */
  stats(): OutboxStats {
    return {
      waiting: this.#items.length,
      maxEvents: this.#max,
      waitingBytes: this.#bytes,
      maxBytes: this.#max === 0 ? 0 : this.#maxBytes,
      ...this.#stats,
      redis: this.#redis,
      lastRedisFailure: this.#failure,
    };
  }

  /**
   * Waits (at most `timeoutMs`; `Infinity`: for ever) until nothing waits. True when every event
   * it waited for (waiting at the call, or accepted during the wait) was stored; false when time
   * ran out, or when one of them left rejected instead (refused by Redis, failed its retries with
   * the outbox off, or dropped by `close()`: its publish rejected). Events rejected before the
   * call do not count. Rejects with a TypeError for a `timeoutMs` not a number >= 0: NaN would
   * return at once.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    if (timeoutMs !== Number.POSITIVE_INFINITY) checkNumber('Outbox.drain', 'timeoutMs', timeoutMs, { min: 0 });
    const unstored = this.#unstored;
    const until = Date.now() + timeoutMs;
    while (this.#items.length > 0 && Date.now() < until) await sleep(Math.min(20, until - Date.now()));
    return this.#items.length === 0 && this.#unstored === unstored;
  }

  /**
   * Refuses new events and rejects every waiting one never sent with `closed`. The round in
   * flight (bounded by `attemptTimeoutMs`) settles with its outcome: stored, refused, or
   * `redis_unavailable` if the attempt failed (no retry follows); so do events sent before that
   * wait for a retry. The events rejected `closed` or `redis_unavailable` here are counted in
   * `dropped` and told as a `dropped` event (`closed`). Resolves once the round has settled:
   * within `attemptTimeoutMs`, or 5 s with `attemptTimeoutMs: 0` (the calls out then fail `ETIMEDOUT`).
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#client.off('ready', this.#onReady);
      this.#client.off('error', this.#onClientError);
      this.#client.off('node error', this.#onNodeError);
      this.#wake?.();
      this.#dropUnsent();
    }
    if (this.#attemptTimeoutMs > 0 || this.#rounds.size === 0) {
      await this.#running;
      return;
    }
    // No attempt timeout: a frozen Redis would never answer the calls out, and a shutdown would
    // wait for ever. Given up after CLOSE_WAIT_MS, as an attempt that timed out.
    const timer = setTimeout(() => {
      for (const giveUp of [...this.#rounds.values()]) giveUp();
    }, CLOSE_WAIT_MS);
    try {
      await this.#running;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * At close: rejects with `closed` every call none of whose events was ever sent. An event sent
   * before (the round in flight, or one waiting to be sent again after a failed attempt, which
   * Redis may still run) stays for the round's outcome or {@link abandonFailed}; a call with
   * events of both kinds is rejected `redis_unavailable` now, as some of it may be stored.
   */
  #dropUnsent(): void {
    // Numbered when its batch is made, before the call goes: an event of the round in flight that
    // is in none of its batches (behind its user's batch, under another fence) was never sent.
    const sent = (i: Item) => i.batchSeq !== 0;
    const left = this.#items.filter((i) => !sent(i));
    const kept = this.#items.filter(sent);
    this.#items.length = 0;
    this.#items.push(...kept);
    for (const i of left) this.#release(i);
    this.#unstored += left.length;
    if (left.length > 0) {
      this.#stats.dropped += left.length;
      this.#onEvent({ kind: 'dropped', reason: 'closed', events: left.length, waiting: 0 });
    }
    for (const entry of new Set(left.map((i) => i.entry))) {
      if (entry.left < 0) continue;
      entry.left = -1;
      entry.closedPartlySent = entry.items.some(sent);
      entry.reject(
        entry.closedPartlySent
          ? new PublishError(
              'redis_unavailable',
              mayBeStored('the publisher was closed with part of this call sent', true),
              { maybeStored: true },
            )
          : new PublishError('closed', 'the publisher was closed before Redis took the event'),
      );
    }
  }

  /**
   * After close: rejects the events sent before that Redis did not take (their attempt failed, in
   * the last round or an earlier one, and they waited for a retry: no retry follows), counted as
   * dropped (`closed`), as the events never sent are: the `dropped` counts add up to every event
   * the outbox let go, though Redis may have stored one whose attempt got no answer.
   */
  #abandonFailed(): void {
    const left = this.#items.splice(0);
    this.#bytes = 0;
    this.#byNode.clear();
    const entries = new Set<Entry>();
    let dropped = 0;
    for (const item of left) {
      if (item.stored) continue;
      // Left by a call rejected already (this close, or a refusal the sender did not clear yet).
      this.#unstored++;
      if (item.entry.left < 0) {
        // The sent part of a call this close rejected: let go now, as its part never sent was.
        if (item.entry.closedPartlySent) dropped++;
        continue;
      }
      entries.add(item.entry);
      dropped++;
    }
    if (dropped > 0) {
      this.#stats.dropped += dropped;
      this.#onEvent({ kind: 'dropped', reason: 'closed', events: dropped, waiting: 0 });
    }
    for (const entry of entries) {
      entry.left = -1;
      const maybeStored = entry.maybeStored === true;
      entry.reject(
        new PublishError(
          'redis_unavailable',
          mayBeStored(`${this.#whyUnavailable(entry)}; the publisher was closed before a retry`, maybeStored),
          { cause: entry.failure?.error ?? this.#lastError, attempts: entry.failures, maybeStored },
        ),
      );
    }
  }

  async #run(): Promise<void> {
    this.#sending = true;
    try {
      // One microtask later: the publish() calls made in the same tick (a loop, a Promise.all)
      // share the first round, one batch per user, rather than the first going alone.
      await Promise.resolve();
      for (;;) {
        if (this.#unsettled) this.#afterAnswers();
        // A call out whose events all left the queue (its publishMany was refused for another
        // user) still holds its user: the sender waits for its answer rather than stop.
        if (this.#closed || (this.#items.length === 0 && this.#rounds.size === 0)) break;
        const round = this.#nextRound();
        if (round.length === 0) {
          // Every user waiting is backing off (Redis away) or has a call out: until the first is
          // due, a call is answered, Redis is back, or a publish of a user who may go comes.
          this.#forgetBackoffsOfUsersGone();
          let due = Number.POSITIVE_INFINITY;
          for (const [userId, b] of this.#backoff) if (!this.#inFlight.has(userId)) due = Math.min(due, b.dueAt);
          this.#nothingToSend = true;
          await this.#sleep(due - Date.now());
          this.#nothingToSend = false;
          continue;
        }
        // After a failure: a client whose own reconnects gave up is told to connect again.
        if (this.#downSince) this.#reconnect();
        const sent = this.#sendRound(round);
        if (this.#overlap) {
          // While Redis fails, one turn of the event loop at least between rounds (see below): a
          // failed answer wakes the sender at once, and with a retry delay of 0 it would not let go.
          if (this.#downSince) await this.#sleep(0);
          continue;
        }
        const unreachable = await sent;
        // With Redis away every user fails in turn, and the outbox waits for the first one due.
        // One turn of the event loop at least between a failed round and the next: a retry
        // delay of 0, on a client that fails every command at once, would never let go.
        if (unreachable && !this.#closed) await this.#sleep(0);
      }
      // Closing: the calls out settle with their outcome first.
      if (this.#rounds.size > 0) {
        await Promise.all(this.#rounds.keys());
        this.#settle();
      }
    } finally {
      this.#sending = false;
      if (this.#closed) this.#abandonFailed();
    }
  }

  /** Calls were answered: stored and refused events leave the queue, and an outage that ended is told. */
  #afterAnswers(): void {
    this.#unsettled = false;
    const before = this.#items.length;
    this.#settle();
    if (this.#backoff.size > 0) this.#forgetBackoffsOfUsersGone();
    // Drained once the users who failed have been stored (not when their events only left, refused),
    // and not after close: the caller hears of the outcome from the calls themselves.
    if (this.#downSince && this.#backoff.size === 0 && this.#storedSinceFailure && !this.#closed) {
      this.#onEvent({ kind: 'drained', events: before - this.#items.length, downMs: Date.now() - this.#downSince });
      this.#downSince = 0;
    }
  }

  /**
   * Wakes the sender once the answers that came together (one read of a node's replies) are all
   * applied: one pass over the queue and one round for them all, not one per answer.
   */
  #wakeAfterAnswers(): void {
    if (this.#wakeSet) return;
    this.#wakeSet = true;
    setImmediate(() => {
      this.#wakeSet = false;
      if (this.#nothingToSend) this.#wake?.();
    });
  }

  /** Whether a user's events may go in the next round (no call out, no retry delay to wait). */
  #mayGo(userId: string): boolean {
    return !this.#inFlight.has(userId) && !this.#backoff.has(userId);
  }

  /** Waits `ms` (at most), or until Redis is back ({@link #onReady}) or the outbox closes. */
  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      // Infinity: only a wake ends it (a call answered, a publish, Redis back, close).
      const timer = ms === Number.POSITIVE_INFINITY ? undefined : setTimeout(resolve, Math.max(0, ms));
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  /** Backoffs of users with nothing left waiting (stored, refused or dropped since). */
  #forgetBackoffsOfUsersGone(): void {
    const waiting = new Set<string>();
    for (const item of this.#items) waiting.add(item.userId);
    for (const userId of this.#backoff.keys()) if (!waiting.has(userId)) this.#backoff.delete(userId);
  }

  /**
   * A user's batch failed for a passing reason: it waits its next delay before it goes again,
   * counted from `since`, when the failed call went (0: due at once).
   */
  #backOff(userId: string, since: number): void {
    const failures = (this.#backoff.get(userId)?.failures ?? 0) + 1;
    const delay = this.#delays[Math.min(failures - 1, this.#delays.length - 1)] ?? 0;
    this.#backoff.set(userId, { failures, dueAt: since === 0 ? 0 : since + delay });
  }

  /**
   * The next round: the events from the front, in order, up to `batchEvents` and `batchBytes` of
   * JSON (at least one), leaving out the users backing off (all of their events: each user's
   * order is kept). A batch sent again goes whole or not at all (a batch cut in two would be
   * stored in part and the rest answered as a duplicate), counted whole against the bounds where
   * its first event stands: the round stays within them, as its first send did.
   */
  #nextRound(): Item[] {
    const items = this.#items;
    const backingOff = this.#backoff.size > 0;
    const now = backingOff ? Date.now() : 0;
    // Overlapping rounds: the users with a call out wait for its answer. The calls out do not count
    // against this round's bounds: a shard that stops answering would hold every user through them.
    const out = this.#inFlight.size > 0;
    const round: Item[] = [];
    // Batches sent again that are in this round, by user, with their number: their other events follow.
    let again: Map<string, number> | undefined;
    // Events and bytes of every batch waiting to be sent again (made once, at the first one met).
    let sizes: Map<string, { events: number; bytes: number }> | undefined;
    // Calls (publishMany) whose events of a user are in this round, by call: their other events of that user follow.
    let calls: Map<Entry, Set<string>> | undefined;
    // Events and bytes of each call's events not sent yet, by user (made once per call met).
    let callSizes: Map<Entry, Map<string, { events: number; bytes: number }>> | undefined;
    let owed = 0;
    let events = 0;
    let bytes = 0;
    let full = false;
    for (const item of items) {
      // The rest of a batch sent again, or of a call's events of one user, whose first is in: counted with it.
      const rest =
        item.batchSeq !== 0
          ? again?.get(item.userId) === item.batchSeq
          : calls?.get(item.entry)?.has(item.userId) === true;
      if (rest) {
        round.push(item);
        owed--;
        if (full && owed === 0) break;
        continue;
      }
      if (full) continue;
      if (backingOff && (this.#backoff.get(item.userId)?.dueAt ?? 0) > now) continue;
      if (out && this.#inFlight.has(item.userId)) continue;
      let size = { events: 1, bytes: item.json.length };
      if (item.batchSeq !== 0) {
        sizes ??= batchSizes(items);
        size = sizes.get(batchKey(item)) ?? size;
      } else if (item.entry.items.length > 1) {
        // A call's events of one user go in one round, as one append, when a round can hold them.
        callSizes ??= new Map();
        let byUser = callSizes.get(item.entry);
        if (!byUser) {
          byUser = callSizesByUser(item.entry);
          callSizes.set(item.entry, byUser);
        }
        const call = byUser.get(item.userId) ?? size;
        if (call.events <= this.#batch && call.bytes <= this.#batchBytes) size = call;
      }
      if (round.length > 0 && (events + size.events > this.#batch || bytes + size.bytes > this.#batchBytes)) {
        full = true;
        if (owed === 0) break;
        continue;
      }
      events += size.events;
      bytes += size.bytes;
      round.push(item);
      if (item.batchSeq !== 0) {
        again ??= new Map();
        again.set(item.userId, item.batchSeq);
        owed += size.events - 1;
      } else if (size.events > 1) {
        calls ??= new Map();
        const users = calls.get(item.entry) ?? new Set<string>();
        users.add(item.userId);
        calls.set(item.entry, users);
        owed += size.events - 1;
      }
    }
    return round;
  }

  /**
   * One batch per user of the round (that user's events, in order, atomically), as few
   * script calls as the writer can make of them, each user's outcome applied as its call is
   * answered. Resolves once every call is (or the attempt timed out): true when a batch failed
   * for a passing reason (its user then waits out its retry delay).
   */
  #sendRound(round: Item[]): Promise<boolean> {
    const byUser = new Map<string, Item[]>();
    for (const item of round) {
      const list = byUser.get(item.userId);
      if (list) list.push(item);
      else byUser.set(item.userId, [item]);
    }
    const users: Item[][] = [];
    const batches: UserBatch[] = [];
    for (const all of byUser.values()) {
      const retry = (all[0] as Item).batchSeq !== 0;
      const items = this.#batchOf(all);
      const first = items[0] as Item;
      const events = new Array<AppEvent>(items.length);
      for (let k = 0; k < items.length; k++) events[k] = (items[k] as Item).event;
      const json = new Array<string>(items.length);
      for (let k = 0; k < items.length; k++) json[k] = (items[k] as Item).json;
      const batch: UserBatch = { userId: first.userId, events, json, seq: first.batchSeq };
      // A first send's positions are 0..n-1, the default; a retry may carry fewer events.
      if (retry) batch.positions = items.map((i) => i.batchIndex);
      if (first.fence) batch.fence = first.fence;
      users.push(items);
      batches.push(batch);
      if (this.#overlap) this.#inFlight.add(first.userId);
    }
    const outcome: RoundOutcome = {
      unreachable: false,
      readOnly: [],
      failed: new Map(),
      readies: this.#readies,
      sentAt: Date.now(),
      connected: this.#client.status === 'ready',
    };
    // Each batch's answer; on a standalone Redis all are applied together once the round is over.
    const results = new Array<BatchResult | Error | undefined>(batches.length);
    // For each failed batch, whether its call may have reached Redis, as the writer saw it.
    const deliveries = new Array<CommandDelivery | undefined>(batches.length);
    let left = batches.length;
    let giveUpAtClose = nothing;
    const sent = new Promise<boolean>((resolve) => {
      const answer = (
        u: number,
        result: BatchResult | Error = new Error('the writer gave no result for this user'),
      ) => {
        if (results[u] !== undefined) return;
        results[u] = result;
        // Overlapping rounds: each user's outcome at once (its publish settles, it may go again); a
        // call refused leaves the queue before its caller hears of it, as at the end of a round.
        if (this.#overlap) {
          this.#applyResult(users[u] as Item[], result, outcome, deliveries[u]);
          this.#failCalls(outcome.failed);
          if ((users[u] as Item[]).some((i) => i.entry.left < 0)) this.#afterAnswers();
        }
        if (--left > 0) return;
        clearTimeout(timer);
        this.#rounds.delete(sent);
        if (!this.#overlap) {
          for (let k = 0; k < batches.length; k++) {
            this.#applyResult(users[k] as Item[], results[k] as BatchResult | Error, outcome, deliveries[k]);
          }
          // After the refusals: a call refused for one user is not also queued or failed for another.
          this.#failCalls(outcome.failed);
        }
        this.#afterAnswers();
        // The connection is on a replica: a primary that failed over behind a DNS name keeps the
        // connections made before (the script reports READONLY itself, so the client's own
        // reconnect-on-READONLY does not see it). A new connection resolves the name again.
        if (outcome.readOnly.length > 0) this.#reconnect(true, 'readonly', outcome.readOnly);
        resolve(outcome.unreachable);
      };
      const answerAll = (error: unknown) => {
        for (let u = 0; u < batches.length; u++) answer(u, error as Error);
      };
      // The connection is closed next: not replaced.
      giveUpAtClose = () => answerAll(new RedisTimeoutError(CLOSE_WAIT_MS));
      // Past the attempt's time, the calls not answered fail as a lost connection does; the others stand.
      const timer =
        this.#attemptTimeoutMs > 0
          ? setTimeout(() => {
              // A connection that stopped answering is not used again: its commands would only queue behind.
              const silent = batches.filter((_, u) => results[u] === undefined).map((b) => b.userId);
              this.#reconnect(true, 'timeout', silent);
              answerAll(new RedisTimeoutError(this.#attemptTimeoutMs));
            }, this.#attemptTimeoutMs)
          : undefined;
      this.#writer
        .appendBatches(
          this.id,
          batches,
          (indexes, out) => {
            for (const u of indexes) answer(u, out[u]);
          },
          deliveries,
        )
        .then((out) => {
          for (let u = 0; u < out.length; u++) answer(u, out[u]);
        }, answerAll);
    });
    // A round has one batch at least: each of its users' first item is in its batch.
    this.#rounds.set(sent, giveUpAtClose);
    return sent;
  }

  /**
   * One user's batch was answered (stored, refused, or failed for a passing reason). `delivery`:
   * of a failed one, whether its call may have reached Redis, when the writer could see it.
   */
  #applyResult(
    items: Item[],
    result: BatchResult | Error,
    outcome: RoundOutcome,
    delivery: CommandDelivery | undefined,
  ): void {
    const userId = (items[0] as Item).userId;
    this.#unsettled = true;
    if (this.#overlap) {
      this.#inFlight.delete(userId);
      // The sender may send this user's next events now; it clears the queue of what was answered.
      if (this.#nothingToSend) this.#wakeAfterAnswers();
    }
    if (isBatchResult(result)) {
      items.forEach((item, k) => {
        item.stored = result.events[k];
      });
      if (result.duplicate) this.#stats.deduplicated += items.length;
      this.#storedSinceFailure = true;
      this.#passwordTaken = true;
      this.#reached();
      this.#backoff.delete(userId);
      return;
    }
    if (this.#unanswered(result, outcome, delivery)) for (const item of items) item.entry.maybeStored = true;
    const closed = this.#clientClosed();
    if (closed !== undefined) {
      this.#backoff.delete(userId);
      for (const item of items) {
        if (item.entry.left < 0) continue;
        item.entry.left = -1;
        const attempts = item.entry.failures + 1;
        const maybeStored = item.entry.maybeStored === true;
        item.entry.reject(
          new PublishError('redis_unavailable', mayBeStored(closed, maybeStored), {
            cause: result,
            attempts,
            maybeStored,
          }),
        );
      }
      return;
    }
    // A password Redis refuses is a rotation once it took this client's password (held and
    // retried as an outage); before that, a wrong password (a deployment's mistake): refused at
    // once, saying so, rather than every publish waiting in the outbox for a password that never comes.
    if (isTransientRedisError(result) && (this.#passwordTaken || !isPasswordRefusal(result))) {
      outcome.unreachable = true;
      if (result.message.startsWith('READONLY')) {
        // Overlapping rounds: at once, not after the slowest call of the round (its retry would go on the replica).
        if (this.#overlap) this.#reconnect(true, 'readonly', [userId]);
        else outcome.readOnly.push(userId);
      }
      this.#storedSinceFailure = false;
      this.#stats.retried += items.length;
      this.#lastError = result;
      // On a Cluster, the node the call went to (the slot map's now, else when the event came).
      const node = this.#overlap ? (this.#nodeOf?.(userId) ?? (items[0] as Item).node) : undefined;
      const why = this.#nodeSaid(result, node, outcome.sentAt);
      for (const item of items) item.entry.failure = { error: result, node, why };
      this.#unreachable(why, node);
      this.#downSince ||= Date.now();
      // A call of many users failing in several rounds one after the other counts the most
      // attempts any of its users' batches has failed, not their sum.
      const attempts = (this.#backoff.get(userId)?.failures ?? 0) + 1;
      for (const item of items) outcome.failed.set(item.entry, Math.max(outcome.failed.get(item.entry) ?? 0, attempts));
      // Each user whose batch failed waits its own delays, its events in order; the other users'
      // events go on (a Cluster shard failing over holds its users only).
      // The delay counts from when the call went (an attempt that timed out waited already); none
      // if the client reconnected since (as after any reconnect).
      this.#backOff(userId, this.#readies !== outcome.readies ? 0 : outcome.sentAt);
      return;
    }
    // Refused: its shard answered; the user's later events go on without a delay.
    this.#backoff.delete(userId);
    for (const item of items) {
      if (item.entry.left < 0) continue;
      item.entry.left = -1;
      item.entry.reject(refusal(result, item.entry.failures + 1, item.entry.maybeStored === true));
    }
  }

  /**
   * Whether a failed attempt may have reached Redis without its answer coming back: it timed out
   * (a command written, or queued and written later: Redis may run it late), or a write of it got
   * no answer (its connection lost with it out). Not when Redis answered every write (a reply
   * such as `LOADING`, `READONLY`, or a Cluster's `MOVED` and `CLUSTERDOWN`: nothing ran), nor
   * when the command only waited for a connection that never came (on a Cluster, a node down
   * while the others are up). The writer says which (`delivery`); when it could not see (a
   * client that auto-pipelines), the client's state decides: the connection may have had the
   * command if it was ready when the round went, or became ready since, which writes what it queued.
   */
  #unanswered(result: Error, outcome: RoundOutcome, delivery: CommandDelivery | undefined): boolean {
    if (result instanceof RedisTimeoutError) return true;
    if (delivery?.unanswered !== undefined) return delivery.unanswered;
    if ((result as Error | null)?.name === 'ReplyError') return false;
    return outcome.connected || this.#readies !== outcome.readies || this.#client.status === 'ready';
  }

  /** Tells each failed call of {@link RoundOutcome.failed} (then forgets them). */
  #failCalls(failed: Map<Entry, number>): void {
    for (const [entry, attempts] of failed) this.#failed(entry, attempts);
    failed.clear();
  }

  /**
   * What of a user's items in this round goes in one call: a batch sent before and
   * not stored (a retry: the same batch, with its number, minus events refused
   * since), else the items not sent yet up to the first change of fence (one call is
   * fenced by one lease, or none), as a new batch with a number of its own. The
   * rest wait for the next round, behind it, which keeps the user's order.
   */
  #batchOf(items: Item[]): Item[] {
    const retry = (items[0] as Item).batchSeq;
    if (retry !== 0) return items.filter((i) => i.batchSeq === retry);
    // Most users' items carry no fence at all: then they are one run, no need to split them.
    let fenced = false;
    for (const i of items) fenced ||= i.fence !== undefined;
    const run = fenced ? (fenceRuns(items, (i) => i.fence)[0] as Item[]) : items;
    const seq = ++this.#seq;
    run.forEach((item, index) => {
      item.batchSeq = seq;
      item.batchIndex = index;
    });
    return run;
  }

  /**
   * A call's events failed for a passing reason, `attempts` being the most attempts any of its
   * users' batches has failed: a call of many users, failing in several rounds one after the
   * other, has waited no retry delay more for it.
   */
  #failed(entry: Entry, attempts: number): void {
    entry.failures = Math.max(entry.failures, attempts);
    // Closed: rejected when the round is over (#abandonFailed), neither retried nor queued.
    if (this.#closed || entry.failures <= this.#delays.length || entry.isQueued || entry.left < 0) return;
    if (this.#max === 0) {
      entry.left = -1;
      entry.reject(
        new PublishError(
          'redis_unavailable',
          mayBeStored(`${this.#whyUnavailable(entry)} after ${entry.failures} attempt(s)`, entry.maybeStored === true),
          {
            cause: entry.failure?.error ?? this.#lastError,
            attempts: entry.failures,
            maybeStored: entry.maybeStored === true,
          },
        ),
      );
      return;
    }
    entry.isQueued = true;
    this.#stats.queued += entry.items.length;
    this.#onEvent({ kind: 'queued', events: entry.items.length, waiting: this.#items.length });
  }

  /**
   * Why a call's events could not be stored, for its rejection: on a Cluster, the node of its
   * user whose batch failed last (not the seed: one shard away is not the seed's fault); else
   * the cause known (the client's own error says more than a failed command).
   */
  #whyUnavailable(entry: Entry): string {
    if (this.#overlap && entry.failure) return this.#describe(entry.failure.why, entry.failure.node);
    return this.#failure?.message ?? this.#describe(this.#lastError, undefined);
  }

  /**
   * What says why a call failed on `node`: its error, or, when that only says ioredis gave up (no
   * code of its own), the node's own error of the attempt (since `sentAt`), e.g. `ECONNREFUSED`.
   */
  #nodeSaid(error: unknown, node: string | undefined, sentAt: number): unknown {
    if (node === undefined || !isVague(error)) return error;
    const said = this.#nodeErrors.get(node);
    return said && said.at >= sentAt && !isVague(said.error) ? said.error : error;
  }

  /** {@link describeRedisError} for this client: on a Cluster, naming `node` (or the error's), with the seed. */
  #describe(error: unknown, node: string | undefined): string {
    return describeRedisError(
      error,
      this.#overlap ? { where: this.#address, cluster: true, node } : { where: this.#address },
    );
  }

  /**
   * Redis could not be reached: records why (the last failure) and says so once per cause, not
   * per retry; on a Cluster each node that fails is a cause of its own, told once per outage, and
   * its failure is the last one again whenever it fails again. "Gave up" errors (a failed
   * command, a closed connection) never replace a cause already known from the client (of their
   * node). `node`: on a Cluster, the node the failed call went to.
   */
  #unreachable(error: unknown, node?: string): void {
    if (this.#closed) return;
    const code = redisErrorCode(error);
    // Errors that only say "gave up" never replace a precise cause already known of their node.
    // So does an attempt that timed out (it only says no answer came) when the client said why.
    const vague = isVague(error) || error instanceof RedisTimeoutError;
    // On a Cluster, the node the message names: each node that fails is a cause of its own.
    const at = this.#overlap ? (clusterNodeNamed(error, node) ?? '') : '';
    if (this.#redis === 'down') {
      const known = this.#causes.get(at);
      if (known && (vague || code === known.code)) {
        // The last failure is that node's, its cause told already.
        this.#failure = known;
        return;
      }
      // Naming no node, a vague error says less than any cause known.
      if (vague && at === '' && this.#causes.size > 0) return;
    } else {
      this.#redisDownSince = Date.now();
      this.#causes.clear();
    }
    this.#redis = 'down';
    const failure = { code, message: this.#describe(error, node), sinceMs: Date.now() };
    this.#causes.set(at, failure);
    this.#failure = failure;
    this.#onEvent({ kind: 'unreachable', failure, waiting: this.#items.length });
  }

  /** Redis answered (ready, or a round went through): says so if it was away. */
  #reached(): void {
    if (this.#redis === 'up') return;
    const wasDown = this.#redis === 'down';
    this.#redis = 'up';
    if (wasDown && !this.#closed) this.#onEvent({ kind: 'reachable', downMs: Date.now() - this.#redisDownSince });
  }

  /** Drops stored and refused events from the queue and resolves the entries they complete. */
  #settle(): void {
    let kept = 0;
    let dropped = 0;
    for (const item of this.#items) {
      const entry = item.entry;
      if (entry.left < 0) {
        if (entry.closedPartlySent) {
          // The sent part of a call `close()` rejected: counted by what became of it, so kept while
          // its answer is still to come (a Cluster's rounds overlap: another node answered first).
          if (!item.stored && this.#inFlight.has(item.userId)) {
            this.#items[kept++] = item;
            continue;
          }
          if (item.stored) this.#stats.stored++;
          else dropped++;
        }
        this.#release(item);
        if (!item.stored) this.#unstored++;
        continue;
      }
      if (item.stored) {
        this.#release(item);
        this.#stats.stored++;
        entry.left--;
        if (entry.left === 0) {
          entry.resolve(
            entry.single ? (entry.items[0]?.stored as StoredEvent) : entry.items.map((i) => i.stored as StoredEvent),
          );
        }
        continue;
      }
      this.#items[kept++] = item;
    }
    this.#items.length = kept;
    if (dropped > 0) {
      this.#stats.dropped += dropped;
      this.#onEvent({ kind: 'dropped', reason: 'closed', events: dropped, waiting: 0 });
    }
  }
}

/** An error that says no more than that the client gave up: no code of its own (see `redisErrorCode`). */
function isVague(error: unknown): boolean {
  const code = redisErrorCode(error);
  return code === 'MaxRetriesPerRequestError' || code === 'ClusterAllFailedError' || code === 'unknown';
}

/**
 * Why Redis refused a publish: `fenced` (a fenced publish whose lease is gone) or `redis_error`.
 * `maybeStored`: an earlier attempt of it got no answer (Redis may run it late).
 */
function refusal(error: unknown, attempts: number, maybeStored: boolean): PublishError {
  const message = (error as Error).message ?? String(error);
  const options = { cause: error, attempts, maybeStored };
  if (message.startsWith(FENCED_REPLY)) {
    return new PublishError('fenced', mayBeStored(`the publish was refused: ${message}`, maybeStored), options);
  }
  return new PublishError('redis_error', mayBeStored(`Redis refused the publish: ${message}`, maybeStored), options);
}

/** A rejection's message, saying so when Redis may have stored the event ({@link PublishError.maybeStored}). */
function mayBeStored(message: string, maybeStored: boolean): string {
  return maybeStored ? `${message} (the event may be stored)` : message;
}

/**
 * The caller's `onEvent`, made safe to call from anywhere: it runs inside ioredis' `error`
 * emit and the sender's loop, where a throw would end the process or stop the outbox. A
 * throw is logged (console.error) and otherwise ignored.
 */
function guarded(onEvent: (event: OutboxEvent) => void): (event: OutboxEvent) => void {
  return (event) => {
    try {
      onEvent(event);
    } catch (error) {
      console.error(`@livebus/publisher: onOutboxEvent threw on a "${event.kind}" event (ignored):`, error);
    }
  };
}

function isBatchResult(result: BatchResult | Error): result is BatchResult {
  return Array.isArray((result as BatchResult).events);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
