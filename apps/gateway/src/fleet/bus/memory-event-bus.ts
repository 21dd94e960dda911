import { randomBytes } from 'node:crypto';
import { type AppEvent, type Cursor, formatCursor, parseCursor } from '@livebus/protocol';
import { retentionDefaults } from '@livebus/publisher';
import type {
  EventBus,
  EventBusStats,
  EventListener,
  LiveEvent,
  Publication,
  ReadResult,
  StoredEvent,
  TargetListener,
  Unsubscribe,
} from './event-bus';
import { validatePublication } from './invalid-event-error';

/** Options of {@link MemoryEventBus}. */
export interface MemoryEventBusOptions {
  /** Events kept per user for resume. @default retentionDefaults.retentionEvents (1 000) */
  retentionEvents?: number;
  /** Age after which an event is no longer replayed. @default retentionDefaults.retentionMs (5 min) */
  retentionMs?: number;
  /** Bytes (of serialised events) kept per user for resume; the oldest go first. @default retentionDefaults.retentionBytes (1 MiB) */
  retentionBytes?: number;
  now?: () => number;
}

/** Defaults of {@link MemoryEventBusOptions}. */
export const memoryEventBusDefaults = {
  retentionEvents: retentionDefaults.retentionEvents,
  retentionMs: retentionDefaults.retentionMs,
  retentionBytes: retentionDefaults.retentionBytes,
} satisfies MemoryEventBusOptions;

interface Retained {
  event: StoredEvent;
  bytes: number;
}

interface Stream {
  epoch: string;
  /** Offset of the last event appended (0 before the first). */
  head: number;
  /** Retained events, oldest first. */
  events: Retained[];
  bytes: number;
  /** In the order they came; a listener may come more than once with other targets. */
  listeners: { listener: TargetListener<unknown>; target: unknown }[];
}

/** How {@link MemoryEventBus.subscribe} listens: the subscriber's own function is the target. */
function callListener(event: LiveEvent, listener: EventListener): void {
  listener(event);
}

/** How often idle streams are trimmed by age and dropped. */
const SWEEP_INTERVAL_MS = 30_000;

/**
 * The embedded event bus: per-user streams in this process's memory.
 *
 * A stream gets a random epoch when it is created (first use, after a restart,
 * or after an idle stream was dropped), so a cursor of an earlier incarnation is
 * answered with `gap`, never mistaken for a position in the new one.
 */
export class MemoryEventBus implements EventBus {
  readonly sharedAcrossInstances = false;
  readonly #streams = new Map<string, Stream>();
  readonly #o: Required<MemoryEventBusOptions>;
  #retainedBytes = 0;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryEventBusOptions = {}) {
    this.#o = { ...memoryEventBusDefaults, now: Date.now, ...options };
  }

  #stream(userId: string): Stream {
    let stream = this.#streams.get(userId);
    if (!stream) {
      stream = { epoch: randomBytes(6).toString('base64url'), head: 0, events: [], bytes: 0, listeners: [] };
      this.#streams.set(userId, stream);
      // Housekeeping is the bus's own business: a timer that lives while streams exist.
      this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
    }
    return stream;
  }

  #trim(stream: Stream): void {
    const oldest = this.#o.now() - this.#o.retentionMs;
    let drop = 0;
    let bytes = stream.bytes;
    const n = stream.events.length;
    while (drop < n) {
      const r = stream.events[drop] as Retained;
      const over = n - drop > this.#o.retentionEvents || bytes > this.#o.retentionBytes || r.event.ts < oldest;
      if (!over) break;
      bytes -= r.bytes;
      drop++;
    }
    if (drop === 0) return;
    stream.events.splice(0, drop);
    this.#retainedBytes -= stream.bytes - bytes;
    stream.bytes = bytes;
  }

  #append(userId: string, event: AppEvent): StoredEvent {
    const stream = this.#stream(userId);
    stream.head++;
    const stored = {
      type: 'event',
      cursor: formatCursor(stream.epoch, stream.head),
      ts: this.#o.now(),
      ...event,
    } as StoredEvent;
    // Serialised once: for the retention's byte count and, as is, for the listeners' sockets.
    const text = JSON.stringify(stored);
    if (this.#o.retentionEvents > 0) {
      const bytes = Buffer.byteLength(text);
      stream.events.push({ event: stored, bytes });
      stream.bytes += bytes;
      this.#retainedBytes += bytes;
      this.#trim(stream);
    }
    if (stream.listeners.length > 0) {
      const live: LiveEvent = { cursor: stored.cursor, epoch: stream.epoch, offset: stream.head, text };
      const one = stream.listeners.length === 1 ? stream.listeners[0] : undefined;
      if (one) one.listener(live, one.target);
      // A copy: a listener may end its own or another subscription while it is called.
      else for (const { listener, target } of [...stream.listeners]) listener(live, target);
    }
    return stored;
  }

  async publish(userId: string, event: AppEvent): Promise<StoredEvent> {
    return this.#append(userId, validatePublication(userId, event));
  }

  async publishMany(items: readonly Publication[]): Promise<StoredEvent[]> {
    const valid = items.map((p) => ({ userId: p.userId, event: validatePublication(p.userId, p.event) }));
    return valid.map((p) => this.#append(p.userId, p.event));
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

  async listen<T>(userId: string, listener: TargetListener<T>, target: T): Promise<void> {
    this.#stream(userId).listeners.push({ listener: listener as TargetListener<unknown>, target });
  }

  async unlisten<T>(userId: string, listener: TargetListener<T>, target: T): Promise<void> {
    const stream = this.#streams.get(userId);
    if (!stream) return;
    const at = stream.listeners.findIndex((l) => l.listener === listener && l.target === target);
    if (at < 0) return;
    stream.listeners.splice(at, 1);
    this.#dropIfIdle(userId, stream);
  }

  async readSince(userId: string, afterCursor: Cursor): Promise<ReadResult> {
    const stream = this.#stream(userId);
    this.#trim(stream);
    const head = formatCursor(stream.epoch, stream.head);
    const at = parseCursor(afterCursor);
    // Another epoch (a restart, a dropped stream) or a position ahead of the stream: continuity is lost.
    if (!at || at.epoch !== stream.epoch || at.offset > stream.head) return { status: 'gap', events: [], cursor: head };
    if (at.offset === stream.head) return { status: 'resumed', events: [], cursor: head };
    const first = stream.events[0];
    const firstOffset = stream.head - stream.events.length + 1;
    if (!first || at.offset < firstOffset - 1) return { status: 'gap', events: [], cursor: head };
    return {
      status: 'resumed',
      events: stream.events.slice(at.offset - firstOffset + 1).map((r) => r.event),
      cursor: head,
    };
  }

  async head(userId: string): Promise<Cursor> {
    const stream = this.#stream(userId);
    return formatCursor(stream.epoch, stream.head);
  }

  stats(): EventBusStats {
    return { retainedBytes: this.#retainedBytes, streams: this.#streams.size };
  }

  // A stream with no subscribers and nothing retained carries no information; dropping it bounds memory.
  #dropIfIdle(userId: string, stream: Stream): void {
    if (stream.listeners.length === 0 && stream.events.length === 0) this.#streams.delete(userId);
  }

  #sweep(): void {
    for (const [userId, stream] of this.#streams) {
      this.#trim(stream);
      this.#dropIfIdle(userId, stream);
    }
    if (this.#streams.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#streams.clear();
    this.#retainedBytes = 0;
  }
}
