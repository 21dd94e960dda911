import type { AppEvent, EventFrame } from '@livebus/protocol';

/** An event with its place in the user's stream. */
export type StoredEvent = EventFrame;

/** What a reconnecting session gets for its `last_cursor`. */
export type ReadResult =
  | { status: 'resumed'; events: StoredEvent[]; cursor: number }
  | { status: 'gap'; events: []; cursor: number };

/** Called for every event published to a user, in cursor order. */
export type EventListener = (event: StoredEvent) => void;

/**
 * Port: the per-user event streams. Assigns each published event the next
 * cursor of its user's stream, retains recent events (bounded by count and
 * age) for resume, and notifies live subscribers. The embedded implementation
 * is in memory; the Redis one (scale-out) shares streams across instances.
 */
export interface EventBus {
  readonly kind: 'memory' | 'redis';
  /** Appends an event to the user's stream and delivers it to live subscribers. */
  publish(userId: string, event: AppEvent): Promise<StoredEvent>;
  /** Live events of one user; returns the unsubscribe function. */
  subscribe(userId: string, listener: EventListener): () => void;
  /** Events after `afterCursor`, or `gap` when some of them are no longer retained. */
  readSince(userId: string, afterCursor: number): Promise<ReadResult>;
  /** The cursor of the user's latest event (where a fresh session starts). */
  head(userId: string): Promise<number>;
  /** Periodic housekeeping: applies retention by age, forgets idle streams. */
  sweep(): void;
  close(): Promise<void>;
}
