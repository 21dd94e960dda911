import { type AppEvent, type Cursor, type EventFrame, parseCursor, serializeFrame } from '@livebus/protocol';
import type { LeaseHolder } from '../lease/lease';

/** An event with its place in the user's stream. */
export type StoredEvent = EventFrame;

/** What a reconnecting session gets for its `last_cursor`. `cursor` is the stream's head. */
export type ReadResult =
  | { status: 'resumed'; events: StoredEvent[]; cursor: Cursor }
  | { status: 'gap'; events: []; cursor: Cursor };

/**
 * A live event as subscribers get it: its place in the stream, already taken
 * apart (fan-out compares positions per session, so it compares numbers), and
 * the event frame exactly as it goes on the wire: JSON of a frame validated
 * when it was published, so nobody validates and serialises it again. The bus
 * does not parse the frame to hand it on; a listener that needs its data
 * parses `text`.
 */
export interface LiveEvent {
  readonly cursor: Cursor;
  readonly epoch: string;
  readonly offset: number;
  readonly text: string;
  /**
   * The same frame as UTF-8 bytes, when the bus has it so (the Redis bus: the message as
   * received): a socket takes them as they are, with no string decoded and encoded again.
   * A view into the bus's read buffer, which holds at most about as much again (a frame
   * read with many others is copied out: see `ownBytes`), so a socket may queue it;
   * whoever else keeps the event beyond the current tick keeps `text`, not this.
   */
  readonly bytes?: Buffer;
}

/** A stored event (a replay) as a {@link LiveEvent}: serialised and its cursor taken apart. */
export function liveEventOf(event: StoredEvent, text = serializeFrame(event)): LiveEvent {
  const at = parseCursor(event.cursor);
  // A cursor that is not one cannot be ordered: an epoch of its own, delivered like another stream.
  return { cursor: event.cursor, epoch: at?.epoch ?? event.cursor, offset: at?.offset ?? 0, text };
}

/** Called for every event published to a user, in cursor order. */
export type EventListener = (event: LiveEvent) => void;

/**
 * A listener of {@link EventBus.listen}: one function shared by many subscriptions, each
 * with its own `target` (what a closure per subscription would otherwise hold).
 */
export type TargetListener<T> = (event: LiveEvent, target: T) => void;

/** Options of {@link EventBus.listen}. */
export interface ListenOptions {
  /**
   * A session about to resume from this cursor: a bus that must read the stream when it
   * subscribes the user may read the events after it instead of the bare head, and answer
   * the session's {@link EventBus.readSince} with that read while nothing was delivered
   * since (one round trip less per resuming hello). A hint: a bus may ignore it.
   */
  readAfter?: Cursor;
}

/** Ends a subscription; resolves once the bus will no longer call its listener. */
export type Unsubscribe = () => Promise<void>;

/** Options of {@link EventBus.publish}. */
export interface PublishOptions {
  /**
   * Store the event only while this holder holds the user's listener lease (checked in the
   * step that appends it); otherwise nothing is stored and the publish rejects with a
   * `PublishError` `fenced`. A listener's events carry their holder's fence, so a holder
   * whose lease expired (paused, cut off from Redis past the TTL) cannot append after its
   * successor. The in-memory bus (one instance, one holder) ignores it.
   */
  fence?: LeaseHolder;
}

/** One event for one user, as {@link EventBus.publishMany} takes it. */
export interface Publication {
  userId: string;
  event: AppEvent;
}

/** Figures shown on /debug and /metrics. */
export interface EventBusStats {
  /** Bytes of events this process retains for resume (0 where Redis holds them). */
  retainedBytes: number;
  /** Per-user streams this process holds in memory or is subscribed to. */
  streams: number;
  /**
   * Reads of a user's stream the bus made for its live delivery since start (a bus whose
   * delivery can miss events: Redis). `subscription`: the subscription came back or was
   * reported lost (a reconnect, a failover); `hole`: a live event did not directly follow
   * the last one handed on (the offset skip at a failover, or events the subscription missed).
   */
  catchUps?: { subscription: number; hole: number };
  /**
   * Live events a catch-up held and let go since start: a user's read failed or was slow
   * while its channel kept delivering, past the Redis bus's bound. They were older than what
   * the stream keeps, so the user's sessions were told `gap` for them.
   */
  heldDropped?: number;
  /**
   * Tries of those catch-up reads that failed since start (Redis away or slow, or refusing the
   * read): a few per served user at a Redis restart or failover, none in between.
   */
  catchUpFailures?: number;
  /**
   * Users whose catch-up is stalled now: its read failed 3 times in a row and the user's live
   * events have been held for 10 s or more (logged once as `bus_catch_up_stalled`).
   */
  catchUpsStalled?: number;
  /**
   * Listeners that threw when given an event or a lost stream since start, every one (the
   * `bus_listener_error` lines are at most one per 10 s): above 0 is a bug in the listening code.
   */
  listenerErrors?: number;
}

/**
 * Port: the per-user event streams.
 *
 * Each published event is validated, then gets the next cursor of its user's
 * stream (`<epoch>:<offset>`), is retained for resume (bounded by count, age and
 * bytes) and reaches live subscribers, in one step. A stream that was lost or
 * reset starts a new epoch, so `readSince` answers `gap` for cursors of the old
 * one instead of pretending continuity. Implementations trim themselves: the
 * port has no housekeeping method.
 */
export interface EventBus {
  /**
   * Whether every instance of the fleet sees the same streams (a shared store), or
   * only this process does (the embedded default).
   */
  readonly sharedAcrossInstances: boolean;
  /** Validates and appends an event, notifying live subscribers. Rejects an invalid event with {@link InvalidEventError}. */
  publish(userId: string, event: AppEvent, options?: PublishOptions): Promise<StoredEvent>;
  /** Publishes many events (any users); results in the same order. All are validated before any is appended. */
  publishMany(items: readonly Publication[]): Promise<StoredEvent[]>;
  /** Live events of one user. Resolves once the subscription is live: every event published after that reaches `listener`. */
  subscribe(userId: string, listener: EventListener): Promise<Unsubscribe>;
  /**
   * {@link subscribe} without a function per subscription: `listener(event, target)`, until
   * {@link unlisten} with the same user, listener and target. For a caller that holds one
   * subscription per user for hours (the session hub): a closure and an unsubscribe function
   * per user cost memory for the user's life. Unset: the caller uses {@link subscribe}.
   */
  listen?<T>(userId: string, listener: TargetListener<T>, target: T, options?: ListenOptions): Promise<void>;
  /** Ends a {@link listen}; resolves once the bus will no longer call it. Unknown triples are ignored. */
  unlisten?<T>(userId: string, listener: TargetListener<T>, target: T): Promise<void>;
  /** Events after `afterCursor`, or `gap` when some of them are gone (or the cursor is of another epoch). */
  readSince(userId: string, afterCursor: Cursor): Promise<ReadResult>;
  /**
   * Every event still retained after `afterCursor`, even where some before them are
   * missing (`gap` only for another epoch): what was published since, for a reader that
   * must not publish it again (a listener taking over). Unset: {@link readSince} serves.
   * The Redis bus needs it: after a failover its offsets skip, which `readSince` calls a
   * gap even when nothing is missing.
   */
  readRetained?(userId: string, afterCursor: Cursor): Promise<ReadResult>;
  /** The cursor of the user's latest event (where a fresh session starts). */
  head(userId: string): Promise<Cursor>;
  /**
   * Where live delivery to a subscribed user stands, without a round trip: the head read
   * when the subscription became live, or the last event delivered since. Undefined when
   * the user is not subscribed here. A fresh session starts there (every later event
   * reaches it live). Unset: {@link head} serves.
   */
  position?(userId: string): Cursor | undefined;
  /**
   * Calls `listener(userId, epoch)` for each user whose stream the bus finds made anew when it
   * catches up after its subscription was down (Redis restarted empty, or lost the user's keys,
   * while this instance was not subscribed): events of `epoch` it never handed on may be gone
   * for good, and nothing in the new epoch shows where. Called before any event of the new
   * epoch is handed on. Unset: a bus whose subscription cannot be down (the in-memory one).
   */
  onStreamLost?(listener: (userId: string, epoch: string) => void): void;
  stats(): EventBusStats;
  close(): Promise<void>;
}
