import { type AppEvent, type EventFrame, formatCursor } from '@livebus/protocol';
import { newEpoch } from './epoch';
import { validatePublication } from './invalid-event-error';
import type { RedisClient } from './redis/client';
import { userKeys } from './redis/keyspace';
import { streamScripts } from './redis/stream-scripts';
import { type ResolvedRetention, type RetentionOptions, resolveRetention } from './retention';

/** One event for one user, as {@link RedisStreamWriter.appendMany} takes it. */
export interface Publication {
  userId: string;
  event: AppEvent;
}

/** An event with its place in the user's stream, as subscribers and `readSince` see it. */
export type StoredEvent = EventFrame;

/**
 * Appends events to users' Redis streams. Each call of the `appendAndNotify`
 * script stores a user's events, trims the stream and SPUBLISHes them in one
 * atomic step, so a subscriber never sees an event that resume cannot find,
 * nor the other way round. No retries here: see {@link createPublisher}.
 */
export class RedisStreamWriter {
  readonly #client: RedisClient;
  readonly #r: ResolvedRetention;

  constructor(client: RedisClient, options: RetentionOptions = {}) {
    this.#client = client;
    this.#r = resolveRetention(options);
  }

  /** Validates and appends one event. Throws `InvalidEventError` before touching Redis. */
  async append(userId: string, event: AppEvent): Promise<StoredEvent> {
    const valid = validatePublication(userId, event);
    const [stored] = await this.#appendUser(userId, [valid]);
    return stored as StoredEvent;
  }

  /**
   * Validates every event, then appends them; results in the order given. One
   * function call per user (all of a user's events, in order, atomically),
   * users in parallel.
   */
  async appendMany(items: readonly Publication[]): Promise<StoredEvent[]> {
    const valid = items.map((p) => ({ userId: p.userId, event: validatePublication(p.userId, p.event) }));
    const byUser = new Map<string, number[]>();
    valid.forEach((p, i) => {
      const at = byUser.get(p.userId);
      if (at) at.push(i);
      else byUser.set(p.userId, [i]);
    });
    const out = new Array<StoredEvent>(valid.length);
    await Promise.all(
      [...byUser].map(async ([userId, indexes]) => {
        const stored = await this.#appendUser(
          userId,
          indexes.map((i) => (valid[i] as Publication).event),
        );
        indexes.forEach((i, k) => {
          out[i] = stored[k] as StoredEvent;
        });
      }),
    );
    return out;
  }

  async #appendUser(userId: string, events: readonly AppEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const k = userKeys(userId);
    const r = this.#r;
    const reply = (await streamScripts.appendAndNotify.run(
      this.#client,
      [k.stream, k.meta],
      [
        newEpoch(),
        k.channel,
        r.retentionEvents,
        r.retentionMs,
        r.retentionBytes,
        r.streamTtlMs,
        r.metaTtlMs,
        ...events.map((e) => JSON.stringify(e)),
      ],
    )) as [string, number, number];
    const [epoch, first, ts] = reply;
    return events.map(
      (event, i) =>
        ({ type: 'event', cursor: formatCursor(epoch, Number(first) + i), ts: Number(ts), ...event }) as StoredEvent,
    );
  }
}
