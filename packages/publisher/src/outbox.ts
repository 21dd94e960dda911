import type { AppEvent } from '@livebus/protocol';
import { isConnectionError } from './connection-error';
import { validatePublication } from './invalid-event-error';
import { PublishError } from './publish-error';
import type { RedisClient } from './redis-client';
import type { Publication, RedisStreamWriter, StoredEvent } from './redis-stream-writer';

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /**
   * Waits between attempts while Redis cannot be reached. Once an event has
   * failed every one of them it is "queued": it stays in the outbox and is
   * retried at the last delay (or as soon as the client reconnects) until
   * Redis takes it. With `maxEvents: 0` it is rejected instead.
   * @default [1000, 2000, 4000]
   */
  retryDelaysMs?: readonly number[];
  /**
   * Most events the outbox holds, in flight and waiting. A publish that would
   * exceed it is refused at once with {@link PublishError} `outbox_full` (the
   * events already waiting keep their place), counted in `dropped`. 0 turns the
   * outbox off: an event that failed every retry rejects with `redis_unavailable`.
   * @default 10_000
   */
  maxEvents?: number;
  /** Most events sent in one round of calls. @default 500 */
  batchEvents?: number;
  /** Told of events refused (`outbox_full`, `closed`) and of events that moved to waiting (`queued`). */
  onEvent?: (event: OutboxEvent) => void;
  /**
   * Called before each retry round while sending fails: a client whose own
   * reconnects gave up must be told to connect again.
   */
  reconnect?: () => void;
}

/** What the outbox tells {@link OutboxOptions.onEvent}. */
export type OutboxEvent =
  | { kind: 'queued'; events: number; waiting: number }
  | { kind: 'dropped'; reason: 'outbox_full' | 'closed'; events: number; waiting: number }
  | { kind: 'drained'; events: number; downMs: number };

/** Counters of an {@link Outbox}, for metrics and tests. */
export interface OutboxStats {
  /** Events accepted and not yet stored (in flight, retrying or queued). */
  waiting: number;
  /** Events that failed every retry and waited in the outbox, since start. */
  queued: number;
  /** Events refused (outbox full, or closed with events waiting), since start. */
  dropped: number;
  /** Events stored, since start. */
  stored: number;
  /** Capacity; 0 when the outbox is off. */
  maxEvents: number;
}

/** Defaults of {@link OutboxOptions}. */
export const outboxDefaults = { retryDelaysMs: [1_000, 2_000, 4_000], maxEvents: 10_000, batchEvents: 500 } as const;

/** A call of `publish`/`publishMany`: settles once each of its events is stored (or refused). */
interface Entry {
  items: Item[];
  left: number;
  /** Rounds that failed for want of Redis, the first included. */
  failures: number;
  isQueued: boolean;
  resolve: (stored: StoredEvent[]) => void;
  reject: (error: unknown) => void;
}

interface Item {
  userId: string;
  event: AppEvent;
  entry: Entry;
  stored: StoredEvent | undefined;
}

const nothing = () => {};

/**
 * The one way events leave a publisher (and the gateway's `POST /publish`) for
 * Redis: a bounded FIFO of events. A single sender takes events from the front,
 * one atomic function call per user per round, and only takes more when the
 * round is over; an event Redis could not take stays in front of every later
 * one, so each user's events are stored in the order they were published, even
 * across an outage. Calls made while Redis is away wait behind it rather than
 * racing it, and are stored as soon as it returns.
 *
 * Delivery stays at least once: a reply lost with the connection makes the
 * retry append the event again (with a new cursor).
 */
export class Outbox {
  readonly #writer: RedisStreamWriter;
  readonly #delays: readonly number[];
  readonly #max: number;
  readonly #batch: number;
  readonly #onEvent: (event: OutboxEvent) => void;
  readonly #reconnect: () => void;
  readonly #client: RedisClient;
  readonly #items: Item[] = [];
  readonly #stats = { queued: 0, dropped: 0, stored: 0 };
  #sending = false;
  #closed = false;
  #wake: (() => void) | undefined;
  #downSince = 0;
  #lastError: unknown;
  readonly #onReady = () => this.#wake?.();

  constructor(client: RedisClient, writer: RedisStreamWriter, options: OutboxOptions = {}) {
    this.#client = client;
    this.#writer = writer;
    this.#delays = options.retryDelaysMs ?? outboxDefaults.retryDelaysMs;
    this.#max = options.maxEvents ?? outboxDefaults.maxEvents;
    this.#batch = Math.max(1, options.batchEvents ?? outboxDefaults.batchEvents);
    this.#onEvent = options.onEvent ?? nothing;
    this.#reconnect = options.reconnect ?? nothing;
    // A reconnect ends the wait at once: a short blip costs the blip, not the next retry delay.
    client.on('ready', this.#onReady);
  }

  /**
   * Validates the events (throwing `InvalidEventError` before anything is
   * queued), queues them behind every earlier one, and resolves with them as
   * stored, in the order given.
   */
  send(publications: readonly Publication[]): Promise<StoredEvent[]> {
    if (this.#closed) return Promise.reject(new PublishError('closed', 'the publisher is closed'));
    let valid: Publication[];
    try {
      valid = publications.map((p) => ({ userId: p.userId, event: validatePublication(p.userId, p.event) }));
    } catch (error) {
      // A rejection, not a throw: callers chain on the promise.
      return Promise.reject(error);
    }
    if (valid.length === 0) return Promise.resolve([]);
    const cap = this.#max === 0 ? Number.POSITIVE_INFINITY : this.#max;
    if (this.#items.length + valid.length > cap) {
      this.#stats.dropped += valid.length;
      this.#onEvent({ kind: 'dropped', reason: 'outbox_full', events: valid.length, waiting: this.#items.length });
      return Promise.reject(
        new PublishError('outbox_full', `the outbox holds ${this.#items.length} of ${cap} events; try again later`),
      );
    }
    return new Promise<StoredEvent[]>((resolve, reject) => {
      const entry: Entry = { items: [], left: valid.length, failures: 0, isQueued: false, resolve, reject };
      for (const p of valid) entry.items.push({ userId: p.userId, event: p.event, entry, stored: undefined });
      this.#items.push(...entry.items);
      if (!this.#sending) void this.#run();
    });
  }

  /** Counters since start and what waits now. */
  stats(): OutboxStats {
    return { waiting: this.#items.length, maxEvents: this.#max, ...this.#stats };
  }

  /** Waits (at most `timeoutMs`) until nothing waits; true when empty. */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.#items.length > 0 && Date.now() < until) await sleep(Math.min(20, until - Date.now()));
    return this.#items.length === 0;
  }

  /** Refuses new events and rejects every waiting one with `closed` (counted as dropped). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.off('ready', this.#onReady);
    this.#wake?.();
    const left = this.#items.splice(0);
    if (left.length > 0) {
      this.#stats.dropped += left.length;
      this.#onEvent({ kind: 'dropped', reason: 'closed', events: left.length, waiting: 0 });
    }
    for (const entry of new Set(left.map((i) => i.entry))) {
      entry.reject(new PublishError('closed', 'the publisher was closed before Redis took the event'));
    }
  }

  async #run(): Promise<void> {
    this.#sending = true;
    try {
      while (!this.#closed && this.#items.length > 0) {
        const round = this.#items.slice(0, this.#batch);
        const unreachable = await this.#sendRound(round);
        this.#settle();
        if (!unreachable) {
          if (this.#downSince) {
            this.#onEvent({ kind: 'drained', events: round.length, downMs: Date.now() - this.#downSince });
            this.#downSince = 0;
          }
          continue;
        }
        this.#downSince ||= Date.now();
        // The front entry sets the pace: later ones are behind it whatever their own count.
        const front = this.#items[0]?.entry;
        if (!front) continue;
        const delay = this.#delays[Math.min(front.failures - 1, this.#delays.length - 1)] ?? 0;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
        this.#reconnect();
      }
    } finally {
      this.#sending = false;
    }
  }

  /** One call per user of the round (that user's events, in order, atomically); true when Redis was away. */
  async #sendRound(round: Item[]): Promise<boolean> {
    const byUser = new Map<string, Item[]>();
    for (const item of round) {
      const list = byUser.get(item.userId);
      if (list) list.push(item);
      else byUser.set(item.userId, [item]);
    }
    let unreachable = false;
    const failedEntries = new Set<Entry>();
    await Promise.all(
      [...byUser.values()].map(async (items) => {
        try {
          const stored = await this.#writer.appendMany(items.map((i) => ({ userId: i.userId, event: i.event })));
          items.forEach((item, k) => {
            item.stored = stored[k];
          });
        } catch (error) {
          if (isConnectionError(error)) {
            unreachable = true;
            this.#lastError = error;
            for (const item of items) failedEntries.add(item.entry);
            return;
          }
          for (const item of items) {
            if (item.entry.left < 0) continue;
            item.entry.left = -1;
            item.entry.reject(
              new PublishError('redis_error', `Redis refused the publish: ${(error as Error).message}`, {
                cause: error,
                attempts: item.entry.failures + 1,
              }),
            );
          }
        }
      }),
    );
    for (const entry of failedEntries) this.#failed(entry);
    return unreachable;
  }

  #failed(entry: Entry): void {
    entry.failures++;
    if (entry.failures <= this.#delays.length || entry.isQueued || entry.left < 0) return;
    if (this.#max === 0) {
      entry.left = -1;
      entry.reject(
        new PublishError(
          'redis_unavailable',
          `Redis unreachable after ${entry.failures} attempt(s): ${(this.#lastError as Error | undefined)?.message}`,
          { cause: this.#lastError, attempts: entry.failures },
        ),
      );
      return;
    }
    entry.isQueued = true;
    this.#stats.queued += entry.items.length;
    this.#onEvent({ kind: 'queued', events: entry.items.length, waiting: this.#items.length });
  }

  /** Drops stored and refused events from the queue and resolves the entries they complete. */
  #settle(): void {
    let kept = 0;
    for (const item of this.#items) {
      const entry = item.entry;
      if (entry.left < 0) continue;
      if (item.stored) {
        this.#stats.stored++;
        entry.left--;
        if (entry.left === 0) entry.resolve(entry.items.map((i) => i.stored as StoredEvent));
        continue;
      }
      this.#items[kept++] = item;
    }
    this.#items.length = kept;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
