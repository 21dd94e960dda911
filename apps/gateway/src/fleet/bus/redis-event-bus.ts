import { type Cursor, eventTable, formatCursor, parseCursor } from '@livebus/protocol';
import {
  isCluster,
  Outbox,
  type OutboxOptions,
  type OutboxStats,
  type RedisClient,
  RedisStreamReader,
  RedisStreamWriter,
  type RetentionOptions,
  readStoredFramePosition,
  resolveRetention,
  userKeys,
} from '@livebus/publisher';
import { closeRedis, endSlotRefreshes, fleetUserKeys } from '@livebus/publisher/redis';
import type { Cluster, Redis } from 'ioredis';
import { MAX_TIMER_MS } from '../../core/small-times';
import type { Logger } from '../../logger';
import { leaseValue } from '../lease/redis-lease';
import {
  type EventBus,
  type EventBusStats,
  type EventListener,
  type ListenOptions,
  type LiveEvent,
  liveEventOf,
  type Publication,
  type PublishOptions,
  type ReadResult,
  type StoredEvent,
  type TargetListener,
  type Unsubscribe,
} from './event-bus';
import { LiveFrame, offsetInEpoch, offsetInEpochBytes, ownBytes } from './live-frame';
import { guardShardedSubscribers, isLostSubscriptionError } from './sharded-subscriber-guard';
import { SlotMovedError, SlotMoves } from './slot-moves';
import { TurnWrites } from './turn-writes';

/** Options of {@link RedisEventBus}: the retention every publisher of the fleet must share. */
export interface RedisEventBusOptions extends RetentionOptions {
  /** Quit the client on close(): for a bus that was given a client of its own. @default false */
  ownsClient?: boolean;
  /**
   * How `publish` rides out a Redis outage: retry delays, outbox size, and who
   * hears of queued and dropped events. The same outbox as `@livebus/publisher`'s.
   * @default the publisher's: 1 s, 2 s, 4 s; 10 000 events
   */
  outbox?: OutboxOptions;
  /** A monotonic clock in ms, for tests: how long ago a user's position last moved, how long a catch-up has held its events. @default performance.now */
  clock?: () => number;
  /**
   * Longest wait for one step of a subscription or a catch-up before it is tried again (see
   * {@link STEP_TIMEOUT_MS}); tests make it long to show what does not wait it out. @default 5_000
   */
  stepTimeoutMs?: number;
  /**
   * Where the bus says what it cannot fix by itself: a user's catch-up that keeps failing
   * (`bus_catch_up_stalled`, then `bus_catch_up_recovered`, see {@link STALL_FAILURES}) and a
   * listener that threw (`bus_listener_error`). @default writes nothing
   */
  logger?: Logger;
  /**
   * Told of the subscriber connection when it is made; what it returns is called on close. The
   * gateway's Redis probe watches it there and replaces it with the main connection (a subscriber
   * with no ready check looks up on a frozen Redis): a reconnect as any other, caught up after.
   */
  watchSubscriber?: (subscriber: RedisClient) => () => void;
}

/** A logger that writes nothing: the default of a bus given none. */
const SILENT: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/**
 * A stream found made anew whose position moved less than this long before its key expiry
 * (the meta's) cannot have expired by itself: Redis lost it. The expiry is set again only
 * every 30 s of appends (STREAM_EXPIRY_MARGIN_MS / 2), so it may count from up to that long
 * before the last event; the rest is slack.
 */
const EXPIRY_SLACK_S = 60;

/**
 * Fewest live events held for one user while its catch-up reads the stream (see
 * {@link RedisEventBus}'s `#hold`); the bound is the retention's event count when larger.
 */
const HELD_FLOOR = 1_000;

/** First wait before a catch-up read is tried again, doubling up to {@link CATCH_UP_RETRY_MAX_MS}. */
const CATCH_UP_RETRY_MS = 100;
const CATCH_UP_RETRY_MAX_MS = 2_000;

/**
 * A user's catch-up is stalled once its read (or the SSUBSCRIBE before it) has failed this many
 * times in a row and it has held the user's live events for {@link STALL_MS}: logged once
 * (`bus_catch_up_stalled`, warn), and once more when it catches up (`bus_catch_up_recovered`).
 * Both, so that an ordinary Redis restart or failover (reads fail for a few seconds, for every
 * user served) logs nothing, and a failure that does not pass (a shard not answering, a damaged
 * key answering WRONGTYPE) is told within about ten seconds, whatever the step timeout.
 */
const STALL_FAILURES = 3;
const STALL_MS = 10_000;

/** Shortest time between two `bus_listener_error` lines; the errors between are counted in the next. */
const LISTENER_ERROR_LOG_MS = 10_000;

/**
 * How often the cluster subscriber reads the slot map. A planned failover (or a
 * resharding) leaves the old master up: it drops the SSUBSCRIBEs of the slots it
 * gave away with a push ioredis does not report, so only a read of the slot map
 * moves them to the new master (and the catch-up then reads what was missed).
 */
const CLUSTER_TOPOLOGY_CHECK_MS = 1_000;

/** A wait that never keeps the process alive on its own. */
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Longest wait for one step of a subscription or a catch-up (an SSUBSCRIBE, the read). A hello
 * waits for the first, and the user's live events are held during the second, so a step must
 * not hang: a command queued on a sharded subscriber that ioredis drops during a failover may
 * never settle, and ioredis 5.11 never settles an SSUBSCRIBE answered `MOVED` (a node that is
 * neither the slot's master nor its replica: the slot moved to another shard, a resharding),
 * though it reads the slot map again at once. Past it, the step is tried again (a late answer
 * is harmless: SSUBSCRIBE twice is one subscription, and delivery is by offset, each event once).
 */
const STEP_TIMEOUT_MS = 5_000;

/** Tries of a listen's SSUBSCRIBE that goes unanswered before the listen fails (the hello then fails, and its client reconnects). */
const SUBSCRIBE_TRIES = 3;

/** Moves of a slot a listen's SSUBSCRIBE follows (see `subscribeConfirmed`) before a move counts as a try. */
const SUBSCRIBE_MOVES = 5;

/** A node's `MOVED` or `ASK` reply: the slot is served elsewhere now. */
function isMoved(error: unknown): boolean {
  return error instanceof Error && /^(?:MOVED|ASK) /.test(error.message);
}

/** A step of {@link within} that did not settle in time. */
class NoAnswerError extends Error {
  /** A connection error to whoever classifies it (`isTransientRedisError`): Redis may answer on a retry. */
  readonly code = 'ETIMEDOUT';
}

/** `promise`, or a rejection once `ms` have passed without it settling (then ignored). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How a listen sends its SSUBSCRIBE, and a leave its SUNSUBSCRIBE, to the subscriber. */
interface ChannelCommands {
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
}

/**
 * A standalone Redis gets the commands of one turn in one write ({@link TurnWrites}); a
 * cluster's subscriber has a connection per master, written as ioredis does.
 */
function channelCommands(sub: Redis | Cluster, stepMs: number): ChannelCommands {
  if (isCluster(sub)) {
    const moves = new SlotMoves(sub, stepMs);
    return {
      ssubscribe: (channel) => moves.unlessMoved(sub.ssubscribe(channel), channel),
      sunsubscribe: (channel) => sub.sunsubscribe(channel),
    };
  }
  // Written to the socket only once ready; before that, commands wait in ioredis's offline queue.
  const writes = new TurnWrites(() => (sub.status === 'ready' ? sub.stream : undefined));
  return {
    ssubscribe: (channel) => writes.send(() => sub.ssubscribe(channel)),
    sunsubscribe: (channel) => writes.send(() => sub.sunsubscribe(channel)),
  };
}

/** `SSUBSCRIBE channel`, sent again when unanswered within a step's timeout (see {@link STEP_TIMEOUT_MS}). */
async function subscribeConfirmed(
  ssubscribe: (channel: string) => Promise<unknown>,
  channel: string,
  stepMs: number,
): Promise<void> {
  // A slot that moved while the SSUBSCRIBE waited (or a node that answered `MOVED`) is no try
  // spent: it goes again at once to the new master, as often as the slot moves, up to a bound.
  let moves = 0;
  for (let tries = 1; ; ) {
    try {
      await within(ssubscribe(channel), stepMs);
      return;
    } catch (error) {
      const moved = error instanceof SlotMovedError || isMoved(error);
      if (moved && moves < SUBSCRIBE_MOVES) {
        moves++;
        // A moment for the subscriber to read the new slot map (it does at once after a MOVED).
        await delay(CATCH_UP_RETRY_MS * moves);
        continue;
      }
      if (tries >= SUBSCRIBE_TRIES || !(error instanceof NoAnswerError || moved)) throw error;
      tries++;
    }
  }
}

/** Where a message handed to `#onMessage` comes from: the channel, a catch-up's hold, or a second catch-up's hold. */
const LIVE = 0;
const HELD = 1;
const LAST_LOOK = 2;
type MessageSource = typeof LIVE | typeof HELD | typeof LAST_LOOK;

/** One user this process serves: its listeners and where live delivery stands. */
interface Served {
  userId: string;
  channel: string;
  /**
   * The first listener and its target, held as is: nearly always the only one (the session
   * hub's, one shared function); an array would cost about 150 bytes per user.
   */
  listener: TargetListener<unknown> | undefined;
  target: unknown;
  /**
   * Listeners after the first, in the order they came; made on first use. Never changed in
   * place (a listen or unlisten makes a new array): a fan-out iterates the array it started
   * with, so a listener that ends its own or another subscription while it is called costs
   * no other listener the event, and one that starts a subscription does not hear it.
   */
  others: readonly { listener: TargetListener<unknown>; target: unknown }[] | undefined;
  /** Settles once SSUBSCRIBE is acknowledged and the head read; undefined once it has (not kept for the user's life). */
  ready: Promise<void> | undefined;
  /**
   * Position of the last event delivered (the stream's head at subscribe time
   * until one is), to deliver each event once and in order and to know where a
   * catch-up after a reconnect starts.
   */
  epoch: string | undefined;
  offset: number;
  /** Live events held back while missed ones are read after a reconnect. */
  held: string[] | undefined;
  /** Another reconnect came while a catch-up ran: what it read may predate the new outage. */
  again: boolean;
  /** When the position last moved (the head read, an event handed on), in whole seconds of the bus's clock. */
  at: number;
  /**
   * The read made in place of the head read when the first listener came for a resuming
   * session ({@link ListenOptions.readAfter}): handed to that session's `readSince` while
   * the position is still the head it read; dropped by any `readSince` of the user, by
   * the first event delivered after it (which makes it stale), and when a listener of the
   * user comes or goes (a read kept for a hello that never asked for it is not handed to a
   * later one: the stream may have been trimmed since).
   */
  prefetched: Prefetched | undefined;
}

/** A read of the events after `after`, made when the subscription became live; `epoch:offset` is its head. */
interface Prefetched {
  after: Cursor;
  result: ReadResult;
  epoch: string;
  offset: number;
}

/**
 * The head of a user's stream as a catch-up's read saw it: every event of that epoch up to
 * that offset was published through the append function, whether the stream still keeps it
 * or not (see {@link RedisEventBus.#onMessage}).
 */
interface Head {
  epoch: string;
  offset: number;
}

/**
 * A catch-up's run of failed tries in a row (see {@link STALL_FAILURES}): `since`, when the
 * catch-up began holding the user's live events (the bus's clock, ms); `logged`, whether this
 * run was logged as a stall (and is counted in `catchUpsStalled`).
 */
interface Stall {
  since: number;
  failures: number;
  logged: boolean;
}

/** An error's message, as a log line says it (a Redis error's is its reply: `WRONGTYPE ...`). */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A listener's error with its stack, for the bug report. */
function stackOf(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** How {@link RedisEventBus.subscribe} listens: the subscriber's own function is the target. */
function callListener(event: LiveEvent, listener: EventListener): void {
  listener(event);
}

/** Whether a read's `head` says event `offset` of `epoch` was published (see {@link Head}). */
function vouches(head: Head | undefined, epoch: string, offset: number): boolean {
  return head !== undefined && head.epoch === epoch && offset <= head.offset;
}

function hasListener(s: Served): boolean {
  return s.listener !== undefined;
}

/** Removes one listener and target; false when it was not there. `others` is replaced, not changed. */
function removeListener(s: Served, listener: TargetListener<unknown>, target: unknown): boolean {
  const others = s.others;
  if (s.listener === listener && s.target === target) {
    const next = others?.[0];
    s.listener = next?.listener;
    s.target = next?.target;
    s.others = others !== undefined && others.length > 1 ? others.slice(1) : undefined;
    return true;
  }
  const at = others?.findIndex((o) => o.listener === listener && o.target === target) ?? -1;
  if (others === undefined || at < 0) return false;
  s.others = others.length > 1 ? others.filter((_, i) => i !== at) : undefined;
  return true;
}

/**
 * The fleet's event bus: per-user streams in Redis (standalone, ElastiCache or
 * Cluster), written by the publisher's Lua function, which appends and
 * SPUBLISHes in one atomic step, so every instance (and any backend using
 * `@livebus/publisher`) publishes to the same streams.
 *
 * Live events come over one subscriber connection (a `duplicate()` of the
 * client; for a cluster, one with `shardedSubscribers`, which holds a connection
 * per master), with an SSUBSCRIBE per user served, ref-counted across that
 * user's listeners. After a reconnect every user is subscribed again (by this bus on
 * a standalone Redis, by ioredis on a cluster) and what was published meanwhile is
 * read, so listeners miss nothing.
 */
export class RedisEventBus implements EventBus {
  readonly sharedAcrossInstances = true;
  readonly #client: RedisClient;
  readonly #outbox: Outbox;
  readonly #reader: RedisStreamReader;
  readonly #ownsClient: boolean;
  /** The users served, by their channel (one map: a user's channel is made from the user id when needed). */
  readonly #byChannel = new Map<string, Served>();
  /** Per user: the SUNSUBSCRIBE in flight, which a new SSUBSCRIBE must wait for. */
  readonly #leaving = new Map<string, Promise<void>>();
  /**
   * Standalone: users left whose SUNSUBSCRIBE failed (sent during an outage), by channel:
   * sent once more on 'ready'. ioredis, which dropped a channel from the set it subscribes
   * again on reconnect only when the SUNSUBSCRIBE's answer came, no longer subscribes any
   * (see `#subscriber`, `autoResubscribe`): kept should a subscription outlive the outage.
   */
  readonly #strays = new Map<string, string>();
  #sub: Redis | Cluster | undefined;
  readonly #watchSubscriber: (subscriber: RedisClient) => () => void;
  /** Stops the watch of the subscriber ({@link RedisEventBusOptions.watchSubscriber}). */
  #unwatchSubscriber: () => void = () => {};
  #channels: ChannelCommands | undefined;
  #connectedOnce = false;
  /** A catch-up of every user started in this turn (many lost-subscription errors come at once). */
  #catchUpStarted = false;
  #clock: () => number = () => performance.now();
  /** {@link #seconds} as of the last tick of {@link #tick}: what a fan-out stamps, without a clock read per event. */
  #nowS = 0;
  #tick: NodeJS.Timeout | undefined;
  /** How long a user's stream keys live without an append or a read (the meta's expiry), in seconds. */
  readonly #expiryS: number;
  /** Told of each user whose stream a catch-up found made anew ({@link EventBus.onStreamLost}). */
  readonly #streamLost: Array<(userId: string, epoch: string) => void> = [];
  #closed = false;
  /** Catch-ups started since start, by cause ({@link EventBusStats.catchUps}). */
  #catchUpsForSubscription = 0;
  #catchUpsForHole = 0;
  /** Live events held during a catch-up, per user, before the oldest half is let go: see `#hold`. */
  readonly #heldBound: number;
  #heldDropped = 0;
  /** {@link RedisEventBusOptions.stepTimeoutMs}. */
  readonly #stepMs: number;
  readonly #logger: Logger;
  /** Failed tries of catch-ups since start ({@link EventBusStats.catchUpFailures}). */
  #catchUpFailures = 0;
  /** Users whose catch-up is stalled now ({@link EventBusStats.catchUpsStalled}). */
  #stalled = 0;
  /** When the last `bus_listener_error` was logged (the bus's clock), and listener errors since. */
  #listenerErrorLoggedAt = Number.NEGATIVE_INFINITY;
  #listenerErrorsSuppressed = 0;
  /** Listener errors since start, logged or not ({@link EventBusStats.listenerErrors}). */
  #listenerErrors = 0;

  constructor(client: RedisClient, options: RedisEventBusOptions = {}) {
    const {
      ownsClient = false,
      outbox,
      clock,
      stepTimeoutMs = STEP_TIMEOUT_MS,
      logger,
      watchSubscriber = () => () => {},
      ...retention
    } = options;
    this.#client = client;
    this.#watchSubscriber = watchSubscriber;
    this.#logger = logger ?? SILENT;
    if (clock) this.#clock = clock;
    if (!Number.isInteger(stepTimeoutMs) || stepTimeoutMs < 1 || stepTimeoutMs > MAX_TIMER_MS) {
      throw new TypeError(
        `RedisEventBus: stepTimeoutMs must be a whole number >= 1 and <= ${MAX_TIMER_MS}, got ${String(stepTimeoutMs)}`,
      );
    }
    this.#stepMs = stepTimeoutMs;
    const resolved = resolveRetention(retention);
    this.#expiryS = Math.floor(resolved.metaTtlMs / 1_000);
    this.#heldBound = Math.max(resolved.retentionEvents, HELD_FLOOR);
    this.#ownsClient = ownsClient;
    // Every publish of this instance goes through one outbox: in order per user, held through an outage.
    this.#outbox = new Outbox(client, new RedisStreamWriter(client, retention), {
      // A connection on a demoted primary (a failover behind a DNS name) is replaced at once, not
      // at the next plain write that meets READONLY (the append script reports it itself). A
      // slow answer (`timeout`) is not: the connection is shared with every session's commands.
      reconnect: (_stale, cause) => {
        if (cause === 'readonly' && client.status === 'ready') client.disconnect(true);
      },
      ...outbox,
    });
    this.#reader = new RedisStreamReader(client, retention);
  }

  async publish(userId: string, event: Publication['event'], options: PublishOptions = {}): Promise<StoredEvent> {
    const { fence } = options;
    const [stored] = await this.#outbox.send([
      fence
        ? { userId, event, fence: { key: fleetUserKeys(userId).lease, value: leaseValue(fence.owner, fence.token) } }
        : { userId, event },
    ]);
    return stored as StoredEvent;
  }

  publishMany(items: readonly Publication[]): Promise<StoredEvent[]> {
    return this.#outbox.send(items);
  }

  /** The publish outbox's counters (waiting now; queued, dropped, stored since start). */
  outboxStats(): OutboxStats {
    return this.#outbox.stats();
  }

  readSince(userId: string, afterCursor: Cursor): Promise<ReadResult> {
    const s = this.#servedOf(userId);
    const p = s?.prefetched;
    if (s === undefined || p === undefined) return this.#reader.readSince(userId, afterCursor);
    s.prefetched = undefined;
    // Still where that read left the user: every later event comes live, so the read is whole.
    // An event delivered since (to nobody, before the session joined) makes it stale: read again.
    if (p.after === afterCursor && s.epoch === p.epoch && s.offset === p.offset) return Promise.resolve(p.result);
    return this.#reader.readSince(userId, afterCursor);
  }

  readRetained(userId: string, afterCursor: Cursor): Promise<ReadResult> {
    return this.#reader.readRetained(userId, afterCursor);
  }

  head(userId: string): Promise<Cursor> {
    return this.#reader.head(userId);
  }

  position(userId: string): Cursor | undefined {
    const s = this.#servedOf(userId);
    return s?.epoch === undefined ? undefined : formatCursor(s.epoch, s.offset);
  }

  #servedOf(userId: string): Served | undefined {
    return this.#byChannel.get(userKeys(userId).channel);
  }

  async subscribe(userId: string, listener: EventListener): Promise<Unsubscribe> {
    await this.listen(userId, callListener, listener);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      await this.unlisten(userId, callListener, listener);
    };
  }

  async listen<T>(userId: string, listener: TargetListener<T>, target: T, options?: ListenOptions): Promise<void> {
    if (this.#closed) throw new Error('the event bus is closed');
    const { channel } = userKeys(userId);
    let s = this.#byChannel.get(channel);
    if (!s) {
      const { ssubscribe } = this.#subscriber();
      this.#strays.delete(channel);
      const leaving = this.#leaving.get(userId);
      const served: Served = {
        userId,
        channel,
        listener: undefined,
        target: undefined,
        others: undefined,
        ready: undefined,
        epoch: undefined,
        offset: 0,
        held: undefined,
        again: false,
        prefetched: undefined,
        at: 0,
      };
      // The head read once the subscription is live is where a catch-up after a
      // reconnect starts when no live event has come yet. Every listener reads its
      // own replay after `ready`, so nothing at or below that head is theirs to miss.
      // For a resuming session, the read of what it missed gives that head too.
      const after = options?.readAfter;
      const ready = (leaving ?? Promise.resolve())
        .then(() => subscribeConfirmed(ssubscribe, channel, this.#stepMs))
        .then(() => (after === undefined ? this.#reader.head(userId) : this.#prefetch(served, after)))
        .then((head) => {
          const at = parseCursor(head);
          if (at && served.epoch === undefined) {
            served.epoch = at.epoch;
            served.offset = at.offset;
            served.at = this.#seconds();
          }
          if (served.ready === ready) served.ready = undefined;
        });
      served.ready = ready;
      this.#byChannel.set(channel, served);
      s = served;
      ready.catch(() => {
        // A failed SSUBSCRIBE or head leaves nothing to serve: the next subscribe starts over.
        if (this.#byChannel.get(channel) !== served) return;
        this.#byChannel.delete(channel);
        void this.#leave(served, Promise.resolve());
      });
    } else {
      // Another listener of a user already served: a read kept for a resuming hello is not
      // held on for it (that hello reads again if it still needs to; see `prefetched`).
      s.prefetched = undefined;
    }
    const fn = listener as TargetListener<unknown>;
    if (s.listener === undefined) {
      s.listener = fn;
      s.target = target;
    } else {
      // A new array: a fan-out under way keeps the one it started with.
      s.others = [...(s.others ?? []), { listener: fn, target }];
    }
    if (s.ready === undefined) return;
    try {
      await s.ready;
    } catch (error) {
      removeListener(s, fn, target);
      throw error;
    }
  }

  /** Reads what a resuming session missed, kept for its `readSince`; resolves to the stream's head. */
  async #prefetch(served: Served, after: Cursor): Promise<Cursor> {
    const result = await this.#reader.readSince(served.userId, after);
    const at = parseCursor(result.cursor);
    if (at) served.prefetched = { after, result, epoch: at.epoch, offset: at.offset };
    return result.cursor;
  }

  async unlisten<T>(userId: string, listener: TargetListener<T>, target: T): Promise<void> {
    const { channel } = userKeys(userId);
    const s = this.#byChannel.get(channel);
    if (!s || !removeListener(s, listener as TargetListener<unknown>, target)) return;
    // The hello it was read for is gone (refused, or closed before its welcome): not kept for later.
    s.prefetched = undefined;
    if (hasListener(s)) return;
    this.#byChannel.delete(channel);
    await this.#leave(s, s.ready ?? Promise.resolve());
  }

  /** SUNSUBSCRIBEs once `after` settles; a new subscribe of the user waits for it. */
  async #leave(s: Pick<Served, 'userId' | 'channel'>, after: Promise<void>): Promise<void> {
    const channels = this.#channels;
    if (!channels || this.#closed) return;
    // Not waited for past a step's timeout: a new subscribe of the user waits for it. One
    // that settles later was sent first, to the connection of its slot then: it cannot
    // undo a later SSUBSCRIBE on that connection, which Redis runs after it.
    // Sent whether the subscription was confirmed or not: tries of an SSUBSCRIBE that went
    // unanswered may still reach Redis, and ioredis keeps the channel in its list to subscribe
    // again on a new master until a SUNSUBSCRIBE takes it out.
    const leaving = after
      .catch(() => {})
      .then(() => within(channels.sunsubscribe(s.channel), this.#stepMs))
      .then(
        () => undefined,
        () => this.#strayed(s),
      );
    this.#leaving.set(s.userId, leaving);
    await leaving;
    if (this.#leaving.get(s.userId) === leaving) this.#leaving.delete(s.userId);
  }

  /** A failed SUNSUBSCRIBE of a user not served again since: on a standalone Redis, sent again on 'ready'. */
  #strayed(s: Pick<Served, 'userId' | 'channel'>): void {
    const sub = this.#sub;
    if (sub === undefined || isCluster(sub) || this.#byChannel.has(s.channel)) return;
    this.#strays.set(s.channel, s.userId);
  }

  /**
   * On a standalone subscriber's 'ready': SUNSUBSCRIBEs the channels of users left during the
   * outage and not served since. One that fails again is kept for the next.
   */
  #unsubscribeStrays(): void {
    for (const [channel, userId] of this.#strays) {
      this.#strays.delete(channel);
      if (!this.#byChannel.has(channel)) void this.#leave({ userId, channel }, Promise.resolve());
    }
  }

  /** The subscriber, started on first use: how a listen and a leave send their commands there. */
  #subscriber(): ChannelCommands {
    if (this.#channels) return this.#channels;
    const client = this.#client;
    // Sharded pub/sub in a cluster needs a connection to the master of each
    // channel's slot: ioredis keeps one per master with shardedSubscribers (read in its 5.11 source).
    // Without auto-pipelining, which the gateway's client has and a duplicate inherits: ioredis
    // runs one auto-pipeline at a time per node (per slot's node list, in a cluster) and queues
    // the next behind it, and it never settles an SSUBSCRIBE answered MOVED (see
    // STEP_TIMEOUT_MS). One such SSUBSCRIBE would hold every later SSUBSCRIBE and SUNSUBSCRIBE
    // of that node's slots on this instance for good: the step timeout and its retries would
    // all wait in the same queue. Sent one by one, a command that never settles holds only itself.
    const sub = isCluster(client)
      ? client.duplicate([], {
          shardedSubscribers: true,
          slotsRefreshInterval: CLUSTER_TOPOLOGY_CHECK_MS,
          enableAutoPipelining: false,
        })
      : // Nor the ready check, as ioredis's own sharded subscribers: an SSUBSCRIBE sent on its
        // own goes out as soon as the socket connects, before the ready check's INFO, which a
        // connection in subscriber mode refuses. The check then failed and the connection
        // started again, dropping subscriptions already confirmed to hellos, with no catch-up
        // (its first 'ready' was still to come): events lost in a reconnect storm.
        // Nor the name and client info: ioredis 5.11 waits for their CLIENT commands before such a
        // connection is ready, and one closed meanwhile (on a frozen Redis: replaced by the probe,
        // or cut) turns 'ready' on the closed socket and never connects again (ioredis#2099). So
        // it is ready as soon as it connects, unnamed in CLIENT LIST. Nor ioredis's own SSUBSCRIBEs
        // after a reconnect: the catch-up on 'ready' sends every user's again, and one of ioredis's
        // cut unanswered (the probe replaces a subscriber on a frozen Redis) is a rejection nobody
        // handles, which ends the process.
        client.duplicate({
          enableAutoPipelining: false,
          enableReadyCheck: false,
          connectionName: undefined,
          disableClientInfo: true,
          autoResubscribe: false,
        });
    // A master that gave its slots away (a planned failover) must not kill the process
    // with the SUNSUBSCRIBE pushes it sends to a connection ioredis already dropped.
    // (sharded-subscriber.test.ts checks the installed ioredis has the shape it guards.)
    if (isCluster(sub)) {
      guardShardedSubscribers(sub);
      // A master dropped channels while ioredis keeps its connection to it: ioredis will
      // not subscribe them again unless the slot map it reads changes (after a failover
      // there and back between two reads, it does not). Subscribe every user again and
      // read what was missed: one pass for the burst of pushes a failover sends.
      // The catch-up starts at the first such error, not at the next turn: the live events
      // read after it in the same chunk must be held behind the read of what was missed.
      // A subscription the push took for confirmed (ioredis resolves a waiting SSUBSCRIBE with
      // it) is live only once its real answer comes, and that answer, coming with nothing
      // waiting, is such an error too: it runs the catch-up again, before the first live event
      // of the channel, which Redis sends after it.
      sub.on('nodeError', (error: unknown) => {
        if (!isLostSubscriptionError(error) || this.#catchUpStarted || this.#closed) return;
        // The rest of the burst (one push per channel dropped, all in this turn) adds nothing.
        this.#catchUpStarted = true;
        setImmediate(() => {
          this.#catchUpStarted = false;
        });
        this.#catchUp(sub);
      });
    }
    // The message as received (ioredis decodes no string when 'smessage' has no listener):
    // its bytes go to the sockets as they are.
    sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.#onBytes(channel.toString(), message));
    sub.on('error', () => {
      // ioredis reconnects by itself (the catch-up on 'ready' subscribes again); the main client's status is what compose.ts reports.
    });
    sub.on('ready', () => {
      if (this.#connectedOnce) {
        this.#catchUp(sub);
        this.#unsubscribeStrays();
      }
      this.#connectedOnce = true;
    });
    // A cluster's subscriber stays 'ready' when one master dies: ioredis moves the
    // SSUBSCRIBEs to the promoted replica and says so with 'subscribersReady'.
    // What that master took meanwhile never came over pub/sub: read it.
    sub.on('subscribersReady', () => {
      if (this.#connectedOnce) this.#catchUp(sub);
    });
    this.#sub = sub;
    this.#unwatchSubscriber = this.#watchSubscriber(sub);
    const channels = channelCommands(sub, this.#stepMs);
    this.#channels = channels;
    // Whole seconds for `Served.at`, read per event handed on: a field, not a clock call per event.
    // Ten seconds late at most, against the minute of slack it is compared with.
    this.#nowS = this.#seconds();
    this.#tick = setInterval(() => {
      this.#nowS = this.#seconds();
    }, 10_000).unref();
    return channels;
  }

  #onBytes(channel: string, message: Buffer): void {
    const s = this.#byChannel.get(channel);
    if (!s) return;
    const epoch = s.epoch;
    if (s.held === undefined && epoch !== undefined) {
      // Nearly every frame: stored form, the epoch already delivered. Compared in place,
      // handed on as received (the text is decoded only if a listener reads it).
      // Not checked for valid UTF-8, by decision: a browser closes a text frame that is not
      // (1007), where decoding used to put U+FFFD in its place. Stored frames are valid
      // UTF-8 by construction: the append function joins an ASCII prefix (base64url epoch,
      // digits) to the publisher's JSON.stringify output, which escapes lone surrogates, and
      // ioredis sends it as UTF-8. Only a hand-made SPUBLISH to the channel could break
      // that, at the cost of one reconnect of its user's sessions (which then resume).
      const offset = offsetInEpochBytes(message, epoch);
      if (offset >= 0) {
        if (offset === s.offset + 1) {
          s.offset = offset;
          this.#fanOut(s, new LiveFrame(epoch, offset, undefined, ownBytes(message)));
        } else if (offset > s.offset) this.#afterHole(s, message.toString(), false);
        return;
      }
    }
    // Held back (a catch-up) or read the long way: as text, which keeps no view of the read buffer.
    this.#onMessage(s, message.toString(), LIVE);
  }

  /**
   * A message of the channel (`LIVE`), or one held back during a catch-up and now handed on.
   * An event is handed on only when it directly follows the position (the next offset of its
   * epoch). A live one past a hole, or of another epoch, waits while the stream is read (see
   * {@link #afterHole}). A held one that does not follow the position after its catch-up's
   * read was published after that read past a hole, or is of an epoch made anew since, or of
   * the epoch the read found replaced, or was never in the stream (a hand-made SPUBLISH): it
   * gets one more read (`HELD`), and is dropped if it still does not follow (`LAST_LOOK`), so
   * no frame can make the bus read forever, and none moves the position past what the
   * stream has. Unless the head the catch-up's read saw vouches for it (`head`: its epoch, at
   * or below its offset): then it was published, and the events between the position and it
   * are gone from the stream (a stream that keeps none, `retentionEvents: 0`, or fewer than
   * were missed): it is handed on, and a session sees the jump and resumes to hear `gap`.
   */
  #onMessage(s: Served, message: string, from: MessageSource, head?: Head): void {
    if (s.held) {
      this.#hold(s, s.held, message);
      return;
    }
    // The message is the frame our Lua function built from an event the publisher
    // validated against the protocol: its cursor is read from the frame's fixed
    // prefix, and the text itself goes to the sockets, neither parsed nor
    // serialised again. Text in another form is parsed and its shape checked.
    // Nearly every frame is of the epoch already delivered: it is compared in place.
    const epoch = s.epoch;
    const offset = epoch === undefined ? -1 : offsetInEpoch(message, epoch);
    if (offset >= 0) {
      if (offset === s.offset + 1 || (offset > s.offset && vouches(head, epoch as string, offset))) {
        s.offset = offset;
        this.#fanOut(s, new LiveFrame(epoch as string, offset, message));
      } else if (offset > s.offset && from !== LAST_LOOK) this.#afterHole(s, message, from === HELD);
      return;
    }
    const at = readStoredFramePosition(message);
    if (at) {
      // Before the position is known (the subscription's head read is under way), or of the
      // epoch the catch-up's read found the stream made anew in.
      if (epoch === undefined || (at.epoch !== epoch && vouches(head, at.epoch, at.offset))) {
        if (this.#isNew(s, at.epoch, at.offset)) this.#fanOut(s, new LiveFrame(at.epoch, at.offset, message));
      } else if (at.epoch !== epoch && from !== LAST_LOOK) this.#afterHole(s, message, from === HELD);
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(message);
    } catch {
      return;
    }
    if (isEventFrame(event)) this.#deliver(s, event, message);
  }

  #deliver(s: Served, event: StoredEvent, text?: string): void {
    const live = liveEventOf(event, text);
    if (parseCursor(event.cursor) && this.#isNew(s, live.epoch, live.offset)) this.#fanOut(s, live);
  }

  /** Each event once: a catch-up read and the live channel can both carry it. Moves the position. */
  #isNew(s: Served, epoch: string, offset: number): boolean {
    if (epoch === s.epoch && offset <= s.offset) return false;
    s.epoch = epoch;
    s.offset = offset;
    return true;
  }

  #fanOut(s: Served, live: LiveEvent): void {
    s.prefetched = undefined;
    s.at = this.#nowS;
    // Read before the first call: a listener may listen or unlisten while it is called, which
    // replaces `others` (never changes it) and may move the next listener into `listener`.
    const { listener, target, others } = s;
    if (listener === undefined) return;
    try {
      listener(live, target);
    } catch (error) {
      // One listener's failure must not cost the others their events.
      this.#listenerFailed({ uid: s.userId, cursor: live.cursor }, error);
    }
    if (others === undefined) return;
    for (const o of others) {
      try {
        o.listener(live, o.target);
      } catch (error) {
        this.#listenerFailed({ uid: s.userId, cursor: live.cursor }, error);
      }
    }
  }

  /**
   * A live event that does not directly follow the user's position: events in between came
   * neither live nor in a read (a subscription that was not yet back when its catch-up read
   * the stream, ioredis having taken a master's push for the SSUBSCRIBE's answer), or the
   * stream was made anew (a promoted replica or a restarted Redis without the user's keys,
   * found before any catch-up). The event waits, with the live ones after it, while the
   * stream is read from the position (what it still has is handed on, in order; a stream made
   * anew is reported as lost, see {@link #readMissed}), then goes on as a held one. The
   * subscription is live (the event came over it): no SSUBSCRIBE is sent. Offsets skip at a
   * failover by design, so each served user costs one such read after a failover.
   */
  #afterHole(s: Served, message: string, lastLook: boolean): void {
    const sub = this.#sub;
    if (sub === undefined) return;
    this.#catchUpsForHole++;
    void this.#catchUpUser(sub, s, false, lastLook);
    if (s.held) this.#hold(s, s.held, message);
  }

  /**
   * Holds a live event while the user's catch-up reads the stream. A read that keeps failing
   * (or is slow) while the channel still delivers (a shard that answers pub/sub but not the
   * script) would hold every event for as long as it lasts: past twice the bound, the oldest
   * half is let go, and the catch-up reads once more after its current read. The bound is at
   * least the retention's count, so what was let go is older than what the stream keeps: it
   * was trimmed there too, and the read finds the offsets missing (the user's sessions see the
   * jump and are told `gap`, as for any event trimmed before it was read; a `subscribe`
   * listener gets what the stream still has). Should a publisher keep more than this gateway's
   * retention, the read after hands on what it still holds.
   */
  #hold(s: Served, held: string[], message: string): void {
    held.push(message);
    if (held.length <= 2 * this.#heldBound) return;
    held.splice(0, this.#heldBound);
    this.#heldDropped += this.#heldBound;
    s.again = true;
  }

  // Pub/sub is fire and forget: events published while the subscriber was
  // reconnecting never reach it. Read them from the stream, holding back the
  // live ones meanwhile, so listeners get every event in cursor order.
  #catchUp(sub: Redis | Cluster): void {
    for (const s of this.#byChannel.values()) {
      if (s.held) s.again = true;
      else {
        this.#catchUpsForSubscription++;
        void this.#catchUpUser(sub, s);
      }
    }
  }

  /** A catch-up's SSUBSCRIBE: on a cluster through {@link SlotMoves}, sent again at once should its slot move. */
  #ssubscribe(sub: Redis | Cluster, channel: string): Promise<unknown> {
    return isCluster(sub) && this.#channels ? this.#channels.ssubscribe(channel) : sub.ssubscribe(channel);
  }

  /**
   * Reads what the user missed, holding the live events meanwhile, then hands on the held
   * ones that follow the position. `confirm`: subscribe again first (see the loop); always
   * so after a failed step or another reconnect or lost subscription meanwhile.
   */
  async #catchUpUser(sub: Redis | Cluster, s: Served, confirm = true, lastLook = false): Promise<void> {
    const held: string[] = [];
    s.held = held;
    let attempt = 0;
    let head: Head | undefined;
    const stall: Stall = { since: this.#clock(), failures: 0, logged: false };
    try {
      await s.ready;
      let wait = CATCH_UP_RETRY_MS;
      while (!this.#closed && this.#byChannel.get(s.channel) === s) {
        if (s.again) confirm = true;
        s.again = false;
        const mine = ++attempt;
        try {
          // Subscribed first, then read: a read made before Redis has taken this user's
          // SSUBSCRIBE would miss whatever is published in between. On a standalone Redis this
          // is the subscription after a reconnect (no ioredis resubscribe, see #subscriber); on a
          // cluster ioredis sends its own after 'ready', and one more is a no-op that confirms it.
          if (confirm) await within(this.#ssubscribe(sub, s.channel), this.#stepMs);
          // A read that timed out and answers later hands on nothing: the next try reads again.
          head = await within(
            this.#readMissed(s, () => attempt === mine && s.held === held),
            this.#stepMs,
          );
          this.#stallEnded(s, stall, false);
          if (!s.again) return;
          // Another read follows: what this one handed on leaves the hold (that read may be slow too).
          dropDelivered(held, s);
          wait = CATCH_UP_RETRY_MS;
        } catch (error) {
          // Redis is not back for reads yet (the main client reconnects on its own), or it
          // refuses the read (a damaged key): try again, holding the live events, rather than
          // lose what was missed; said once should it last (see STALL_FAILURES). The
          // subscription may have gone with it: confirmed on the next try.
          this.#catchUpFailed(s, stall, error);
          confirm = true;
          await delay(wait);
          wait = Math.min(CATCH_UP_RETRY_MAX_MS, wait * 2);
        }
      }
    } catch {
      // The subscription itself failed (`s.ready`): the user is no longer served, and the
      // hellos waiting for it were told (their listen failed: `ws_resume_error`).
    } finally {
      // Left (every listener gone), the bus closed, or the subscription failed while stalled.
      this.#stallEnded(s, stall, true);
      attempt = -1;
      s.held = undefined;
      const from = lastLook ? LAST_LOOK : HELD;
      // A held event that starts another read moves the rest of these into that one's hold.
      if (this.#byChannel.get(s.channel) === s) for (const message of held) this.#onMessage(s, message, from, head);
    }
  }

  /**
   * A listener threw: logged (`bus_listener_error`) at most once per {@link LISTENER_ERROR_LOG_MS},
   * with how many more threw meanwhile (`suppressed`): a listener that throws at every event
   * must not write a line, and a stack, per event.
   */
  #listenerFailed(fields: { uid: string; cursor?: string; epoch?: string }, error: unknown): void {
    this.#listenerErrors++;
    const now = this.#clock();
    if (now - this.#listenerErrorLoggedAt < LISTENER_ERROR_LOG_MS) {
      this.#listenerErrorsSuppressed++;
      return;
    }
    const suppressed = this.#listenerErrorsSuppressed;
    this.#listenerErrorLoggedAt = now;
    this.#listenerErrorsSuppressed = 0;
    this.#logger.error('bus_listener_error', { ...fields, error: stackOf(error), suppressed });
  }

  /** A catch-up's try failed: counted, and the stall logged once it passes the bound (see {@link STALL_FAILURES}). */
  #catchUpFailed(s: Served, stall: Stall, error: unknown): void {
    this.#catchUpFailures++;
    stall.failures++;
    const heldMs = this.#clock() - stall.since;
    if (stall.logged || stall.failures < STALL_FAILURES || heldMs < STALL_MS || this.#closed) return;
    stall.logged = true;
    this.#stalled++;
    this.#logger.warn('bus_catch_up_stalled', {
      uid: s.userId,
      attempts: stall.failures,
      held_ms: Math.round(heldMs),
      held_events: s.held?.length ?? 0,
      error: messageOf(error),
    });
  }

  /**
   * A catch-up's try succeeded (`left` false), or the catch-up ended without one (`left`: the
   * user's listeners all left, or the bus closed): the run of failures is over, and a stall
   * that was logged is said to be over, once.
   */
  #stallEnded(s: Served, stall: Stall, left: boolean): void {
    const attempts = stall.failures;
    const heldMs = this.#clock() - stall.since;
    // A read that answered starts the count again: a later run of failures is held from now.
    stall.failures = 0;
    stall.since = this.#clock();
    if (!stall.logged) return;
    stall.logged = false;
    this.#stalled--;
    if (this.#closed) return;
    const fields = { uid: s.userId, attempts, held_ms: Math.round(heldMs) };
    this.#logger.info('bus_catch_up_recovered', left ? { ...fields, left: true } : fields);
  }

  /**
   * Reads the stream from the user's position and hands on what it holds after it.
   * `current`: false once this read no longer counts (its step timed out, its catch-up
   * ended); checked after each Redis call, before anything is handed on or told.
   */
  async #readMissed(s: Served, current: () => boolean): Promise<Head | undefined> {
    if (s.epoch === undefined) return undefined;
    const read = await this.#reader.readSince(s.userId, formatCursor(s.epoch, s.offset));
    if (!current()) return undefined;
    const head = parseCursor(read.cursor);
    if (read.status === 'resumed') {
      for (const e of read.events) this.#deliver(s, e);
      return head;
    }
    // Another epoch: the stream was made anew while we were away (Redis restarted
    // empty, or the stream expired). All of it came after what we delivered.
    const epoch = head?.epoch;
    if (!epoch || !head) return undefined;
    if (epoch === s.epoch) {
      // Offsets are missing after our position (trimmed, or skipped at a failover, which
      // may have lost some). Hand on every event the stream still holds after it, in order:
      // a session sees the jump at the first, is told to resume and hears `gap` (now rather
      // than at the user's next event), and its resume replays what is retained; a listener
      // that is not a session gets every event there is (a planned failover skips offsets
      // and loses nothing).
      if (head.offset <= s.offset) return head;
      const retained = await this.#reader.readRetained(s.userId, formatCursor(epoch, s.offset));
      if (!current()) return undefined;
      // `gap`: the stream was made anew between the two reads. Its head vouches for nothing
      // here: the held events of the new epoch start another catch-up, which tells of the loss.
      if (retained.status !== 'resumed') return head;
      for (const e of retained.events) this.#deliver(s, e);
      return parseCursor(retained.cursor);
    }
    // What the old epoch held after our position is gone, if there was any: the sessions
    // must hear it (they resume and get `gap`) before the new epoch's events reach them. Not
    // for a position older than the stream's key expiry: an idle user's stream may just have
    // expired, and nothing was lost.
    if (this.#seconds() - s.at < this.#expiryS - EXPIRY_SLACK_S) this.#tellLost(s.userId, s.epoch);
    // Told: the position moves to the new epoch's start at once, before any of its events is
    // delivered. A session opened from here on starts there (the position is its welcome's
    // cursor), not in the epoch just reported lost, where the user's next event would report
    // the loss again and close it for nothing. A catch-up step that timed out and runs again
    // reads the new epoch from its start too, and tells nothing more.
    s.epoch = epoch;
    s.offset = 0;
    s.at = this.#seconds();
    // Every event the new epoch still holds, from its start (its first ones may be trimmed
    // already: a listener that is not a session still gets the rest).
    const fresh = await this.#reader.readRetained(s.userId, formatCursor(epoch, 0));
    if (!current() || fresh.status !== 'resumed') return undefined;
    for (const e of fresh.events) this.#deliver(s, e);
    return parseCursor(fresh.cursor);
  }

  /** Tells the stream-lost listeners that `epoch` of the user's stream is gone. */
  #tellLost(userId: string, epoch: string): void {
    for (const listener of this.#streamLost) {
      try {
        listener(userId, epoch);
      } catch (error) {
        // One listener's failure must not cost the others the news.
        this.#listenerFailed({ uid: userId, epoch }, error);
      }
    }
  }

  /** Whole seconds of the bus's clock (a small integer: no number object per update). */
  #seconds(): number {
    return (this.#clock() / 1_000) | 0;
  }

  onStreamLost(listener: (userId: string, epoch: string) => void): void {
    this.#streamLost.push(listener);
  }

  stats(): EventBusStats {
    // Retained events live in Redis: this process holds none of them.
    return {
      retainedBytes: 0,
      streams: this.#byChannel.size,
      catchUps: { subscription: this.#catchUpsForSubscription, hole: this.#catchUpsForHole },
      heldDropped: this.#heldDropped,
      catchUpFailures: this.#catchUpFailures,
      catchUpsStalled: this.#stalled,
      listenerErrors: this.#listenerErrors,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    // Events still waiting for Redis are refused (and counted): the process is going away.
    await this.#outbox.drain(1_000);
    // The round in flight settles with Redis's answer (at most its attempt timeout); the rest is refused.
    await this.#outbox.close();
    this.#byChannel.clear();
    const sub = this.#sub;
    this.#sub = undefined;
    this.#channels = undefined;
    if (sub) {
      this.#unwatchSubscriber();
      sub.disconnect();
      endSlotRefreshes(sub);
    }
    if (this.#ownsClient) await closeRedis(this.#client);
  }
}

/** Removes from a catch-up's hold the events of the user's epoch at or before its position (handed on by a read). */
function dropDelivered(held: string[], s: Served): void {
  const epoch = s.epoch;
  if (epoch === undefined) return;
  let kept = 0;
  for (const message of held) {
    const offset = offsetInEpoch(message, epoch);
    if (offset < 0 || offset > s.offset) held[kept++] = message;
  }
  held.length = kept;
}

/** The shape of a stored event frame: type, cursor, ts, a known event type and its data object. */
function isEventFrame(value: unknown): value is StoredEvent {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Partial<Record<keyof StoredEvent, unknown>>;
  return (
    e.type === 'event' &&
    typeof e.cursor === 'string' &&
    typeof e.ts === 'number' &&
    typeof e.event === 'string' &&
    Object.hasOwn(eventTable, e.event) &&
    typeof e.data === 'object' &&
    e.data !== null
  );
}
