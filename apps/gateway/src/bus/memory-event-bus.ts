import type { AppEvent } from '@livebus/protocol';
import type { EventBus, EventListener, ReadResult, StoredEvent } from './event-bus';

/** Options of {@link MemoryEventBus}. */
export interface MemoryEventBusOptions {
  /** Events kept per user for resume. @default 1_000 */
  retentionEvents?: number;
  /** Age after which an event is no longer replayed. @default 300_000 */
  retentionMs?: number;
  now?: () => number;
}

interface Stream {
  /** Cursor of the last event appended (the stream's base before the first one). */
  head: number;
  /** Retained events, oldest first; `events[0].cursor` is the oldest replayable cursor. */
  events: StoredEvent[];
  listeners: Set<EventListener>;
}

/**
 * The embedded event bus: per-user streams in this process's memory.
 *
 * Each stream starts at a base derived from the clock (milliseconds x 1000), so
 * the cursors of a stream created after a restart (or after an idle stream was
 * dropped) are always above any cursor an earlier stream handed out. A client
 * resuming with a cursor from before the restart is therefore told `gap`,
 * never given unrelated events that happen to carry larger numbers.
 */
export class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  readonly #streams = new Map<string, Stream>();
  readonly #retentionEvents: number;
  readonly #retentionMs: number;
  readonly #now: () => number;
  #lastBase = 0;

  constructor(options: MemoryEventBusOptions = {}) {
    this.#retentionEvents = options.retentionEvents ?? 1_000;
    this.#retentionMs = options.retentionMs ?? 300_000;
    this.#now = options.now ?? Date.now;
  }

  #stream(userId: string): Stream {
    let stream = this.#streams.get(userId);
    if (!stream) {
      // Strictly increasing even for streams created within the same millisecond.
      this.#lastBase = Math.max(this.#now() * 1000, this.#lastBase + 1);
      stream = { head: this.#lastBase, events: [], listeners: new Set() };
      this.#streams.set(userId, stream);
    }
    return stream;
  }

  #trim(stream: Stream): void {
    const oldest = this.#now() - this.#retentionMs;
    let drop = Math.max(0, stream.events.length - this.#retentionEvents);
    while (drop < stream.events.length && (stream.events[drop]?.ts ?? 0) < oldest) drop++;
    if (drop > 0) stream.events.splice(0, drop);
  }

  async publish(userId: string, event: AppEvent): Promise<StoredEvent> {
    const stream = this.#stream(userId);
    const stored = { type: 'event', cursor: stream.head + 1, ts: this.#now(), ...event } as StoredEvent;
    stream.head = stored.cursor;
    if (this.#retentionEvents > 0) stream.events.push(stored);
    this.#trim(stream);
    for (const listener of stream.listeners) listener(stored);
    this.#dropIfIdle(userId, stream);
    return stored;
  }

  subscribe(userId: string, listener: EventListener): () => void {
    const stream = this.#stream(userId);
    stream.listeners.add(listener);
    return () => {
      stream.listeners.delete(listener);
      this.#dropIfIdle(userId, stream);
    };
  }

  async readSince(userId: string, afterCursor: number): Promise<ReadResult> {
    const stream = this.#stream(userId);
    this.#trim(stream);
    if (afterCursor === stream.head) return { status: 'resumed', events: [], cursor: stream.head };
    const first = stream.events[0];
    // Ahead of the stream (a cursor from another process) or older than what is retained: a gap.
    if (afterCursor > stream.head || !first || afterCursor < first.cursor - 1) {
      return { status: 'gap', events: [], cursor: stream.head };
    }
    return { status: 'resumed', events: stream.events.slice(afterCursor - first.cursor + 1), cursor: stream.head };
  }

  async head(userId: string): Promise<number> {
    return this.#stream(userId).head;
  }

  /** Number of streams held (for /debug). */
  get streamCount(): number {
    return this.#streams.size;
  }

  // A stream with no subscribers and nothing retained carries no information; dropping it bounds memory.
  #dropIfIdle(userId: string, stream: Stream): void {
    if (stream.listeners.size === 0 && stream.events.length === 0) this.#streams.delete(userId);
  }

  /** Trims every stream to its retention and drops streams that hold nothing. */
  sweep(): void {
    for (const [userId, stream] of this.#streams) {
      this.#trim(stream);
      this.#dropIfIdle(userId, stream);
    }
  }

  async close(): Promise<void> {
    this.#streams.clear();
  }
}
