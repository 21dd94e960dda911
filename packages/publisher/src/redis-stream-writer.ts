import { type AppEvent, type EventFrame, formatCursor } from '@livebus/protocol';
import { newEpoch } from './epoch';
import { validatePublication } from './invalid-event-error';
import type { RedisClient } from './redis/client';
import { userKeys } from './redis/keyspace';
import { fencedAppendScript, streamScripts } from './redis/stream-scripts';
import { type ResolvedRetention, type RetentionOptions, resolveRetention } from './retention';

/**
 * A lease the append is fenced by: `key` (in the user's hash slot, e.g. the user's listener
 * lease `lb:{uid}:l`) must hold exactly `value` (`owner|token`) when the event is stored, or
 * nothing is stored and the publish fails with `PublishError` `fenced`.
 */
export interface PublishFence {
  key: string;
  value: string;
}

/** One event for one user, as {@link RedisStreamWriter.appendMany} takes it. */
export interface Publication {
  userId: string;
  event: AppEvent;
  /** Store it only while this lease holds (a listener's events: only its lease's holder publishes). */
  fence?: PublishFence;
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
   * users in parallel; a user's events under different fences (or none) go in
   * one call per run of the same fence, one after the other.
   */
  async appendMany(items: readonly Publication[]): Promise<StoredEvent[]> {
    const valid = items.map((p) => ({
      userId: p.userId,
      event: validatePublication(p.userId, p.event),
      fence: p.fence,
    }));
    const byUser = new Map<string, number[]>();
    valid.forEach((p, i) => {
      const at = byUser.get(p.userId);
      if (at) at.push(i);
      else byUser.set(p.userId, [i]);
    });
    const out = new Array<StoredEvent>(valid.length);
    await Promise.all(
      [...byUser].map(async ([userId, indexes]) => {
        for (const run of fenceRuns(indexes, (i) => valid[i]?.fence)) {
          const stored = await this.#appendUser(
            userId,
            run.map((i) => (valid[i] as Publication).event),
            valid[run[0] as number]?.fence,
          );
          run.forEach((i, k) => {
            out[i] = stored[k] as StoredEvent;
          });
        }
      }),
    );
    return out;
  }

  async #appendUser(userId: string, events: readonly AppEvent[], fence?: PublishFence): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const k = userKeys(userId);
    const r = this.#r;
    const reply = (await (fence ? fencedAppendScript : streamScripts.appendAndNotify).run(
      this.#client,
      fence ? [k.stream, k.meta, fence.key] : [k.stream, k.meta],
      [
        newEpoch(),
        k.channel,
        r.retentionEvents,
        r.retentionMs,
        r.retentionBytes,
        r.streamTtlMs,
        r.metaTtlMs,
        ...events.map((e) => JSON.stringify(e)),
        ...(fence ? [fence.value] : []),
      ],
    )) as [string, number, number];
    const [epoch, first, ts] = reply;
    return events.map(
      (event, i) =>
        ({ type: 'event', cursor: formatCursor(epoch, Number(first) + i), ts: Number(ts), ...event }) as StoredEvent,
    );
  }
}

/** @internal A user's items split into runs of consecutive ones under the same fence (or none). */
export function fenceRuns<T>(items: readonly T[], fenceOf: (item: T) => PublishFence | undefined): T[][] {
  const runs: T[][] = [];
  let last: string | undefined;
  for (const i of items) {
    const f = fenceOf(i);
    const id = f ? `${f.key}\n${f.value}` : '';
    const run = runs.at(-1);
    if (run && id === last) run.push(i);
    else runs.push([i]);
    last = id;
  }
  return runs;
}
