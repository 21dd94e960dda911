import { type AppEvent, type EventFrame, formatCursor } from '@livebus/protocol';
import { ReplyError } from 'ioredis';
import { newEpoch } from './epoch';
import { checkFence, validatePublication } from './invalid-event-error';
import { isCluster, type RedisClient } from './redis/client';
import { type CommandDelivery, CommandWatch } from './redis/command-delivery';
import { userKeys } from './redis/keyspace';
import {
  APPEND_MANY_FLAGS,
  FENCED_REPLY,
  fencedAppendScript,
  MAX_EVENT_BYTES_PER_CALL,
  MAX_USERS_PER_CALL,
  STALE_REPLY,
  streamScripts,
} from './redis/stream-scripts';
import { type ResolvedRetention, type RetentionOptions, resolveRetention } from './retention';

/**
 * A lease the append is fenced by: `key` (in the user's hash slot, e.g. the user's listener
 * lease `lb:{uid}:l`) must hold exactly `value` (`owner|token`) when the event is stored, or
 * nothing is stored and the publish fails with `PublishError` `fenced`. A key in another slot,
 * or a key or value not a string, is refused before anything is sent (`InvalidEventError`): on
 * a Cluster Redis would answer `CROSSSLOT`, while a standalone Redis takes it.
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
 * Names one batch of a publisher, so the append script stores it once however many
 * times it is sent ({@link RedisStreamWriter.appendBatch}).
 */
export interface BatchTag {
  /** The publisher's random id, made when it was created (no whitespace: it travels as `<id> <seq>`). */
  publisherId: string;
  /**
   * The batch's number, increasing across the publisher's batches: a batch numbered lower than
   * the publisher's last one the user's meta records is refused (`STALE`, nothing stored), as a
   * late copy of a given-up attempt. A publisher that numbers from 1 again must take a new id.
   */
  seq: number;
}

/** What {@link RedisStreamWriter.appendBatch} stored, and whether it had been stored before. */
export interface BatchResult {
  events: StoredEvent[];
  /** The user's meta recorded the batch as appended already: nothing was stored again. */
  duplicate: boolean;
}

/** One user's batch for {@link RedisStreamWriter.appendBatches} (its events validated already). */
export interface UserBatch {
  userId: string;
  events: readonly AppEvent[];
  /** The batch's number for the publisher id given with it (see {@link BatchTag}); none: untagged. */
  seq?: number;
  /** Each event's place in the batch as first sent, for the cursors of a duplicate (see {@link RedisStreamWriter.appendBatch}). */
  positions?: readonly number[];
  /** Each event's `JSON.stringify`, when the caller made it already (the outbox does, to validate): sent as is. */
  json?: readonly string[];
  fence?: PublishFence;
}

/**
 * Appends events to users' Redis streams. Each call of the `appendAndNotify`
 * script stores a user's events, trims the stream and SPUBLISHes them in one
 * atomic step, so a subscriber never sees an event that resume cannot find,
 * nor the other way round. No retries here: see {@link createPublisher}.
 */
export class RedisStreamWriter {
  readonly #client: RedisClient;
  /** The script's retention arguments (ARGV 3 to 7), as strings once rather than converted on every call. */
  readonly #retentionArgs: readonly string[];
  /** Set once a call of several users was answered `CROSSSLOT` (see {@link appendBatches}). */
  #oneUserPerCall = false;

  constructor(client: RedisClient, options: RetentionOptions = {}) {
    this.#client = client;
    const r: ResolvedRetention = resolveRetention(options);
    this.#retentionArgs = [r.retentionEvents, r.retentionMs, r.retentionBytes, r.streamTtlMs, r.metaTtlMs].map(String);
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
    const valid = items.map((p) => {
      const event = validatePublication(p.userId, p.event);
      if (p.fence) checkFence(p.userId, p.fence);
      return { userId: p.userId, event, fence: p.fence };
    });
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

  /**
   * Appends one user's events (validated already) as the batch `tag` names: sent
   * again with the same tag (a retry after a lost reply), it is not stored again and
   * answers the cursors stored the first time, as long as the user's meta still
   * records that publisher's last batch (see docs/reliability.md, exactly once). A batch
   * numbered lower than that one rejects with a `ReplyError` starting with `STALE`: nothing
   * is stored (its events were, if it is a late copy of an attempt given up on).
   * `positions`: each event's place in the batch as first sent (a retry may carry
   * fewer events, when some were refused meanwhile), for the cursors of a duplicate.
   * `fence`: stored only while that lease holds (see {@link PublishFence}).
   */
  async appendBatch(
    userId: string,
    events: readonly AppEvent[],
    tag: BatchTag,
    positions?: readonly number[],
    fence?: PublishFence,
  ): Promise<BatchResult> {
    if (events.length === 0) return { events: [], duplicate: false };
    return this.#append(userId, events, tag, positions, fence);
  }

  /**
   * Appends several users' batches (validated already) as {@link appendBatch} does for
   * one, in as few script calls as it may: on a standalone Redis one `appendMany` call
   * carries up to {@link MAX_USERS_PER_CALL} users (and {@link MAX_EVENT_BYTES_PER_CALL}
   * bytes of event JSON, UTF-8; a user's batch larger than that goes alone), the calls in
   * parallel; on a Redis Cluster, whose users live in different slots, one call per user.
   * A cluster-enabled server reached through a plain `Redis` client (a single-shard
   * cluster, a proxy or managed endpoint) answers `CROSSSLOT` to a call of several users:
   * those users are sent again one call per user (nothing was stored: Redis checks the
   * slots before it runs the script), and this writer makes one call per user from then on.
   *
   * Each user is stored (or refused) on its own: the result at a batch's index is its
   * {@link BatchResult}, or the error that refused it (a `ReplyError` starting with
   * `FENCED` for a fence that no longer holds, `STALE` for a batch older than the publisher's
   * last one recorded (see {@link BatchTag}); the call's error, for every user of a call
   * that failed as a whole, e.g. a lost connection). `publisherId` tags every batch that
   * has a `seq`.
   *
   * One batch per user: a user named by two batches of one call rejects the whole call
   * (a `TypeError`, before Redis is touched), since their order could not be kept across
   * parallel calls. Put all of a user's events in one batch, or call again for the next.
   *
   * `onCall`: told each call's batches (their indexes) as soon as that call is answered, before
   * the others are: on a Cluster, a shard that does not answer holds its own users' results only.
   *
   * `deliveries`: for each batch whose call failed, at its index (set before `onCall` is told),
   * whether Redis may have run that call ({@link CommandDelivery}): a call never written, or
   * whose every write was answered, was not run.
   */
  async appendBatches(
    publisherId: string | undefined,
    batches: readonly UserBatch[],
    onCall?: (indexes: readonly number[], out: ReadonlyArray<BatchResult | Error>) => void,
    deliveries?: Array<CommandDelivery | undefined>,
  ): Promise<Array<BatchResult | Error>> {
    const seen = new Map<string, number>();
    batches.forEach((b, i) => {
      const earlier = seen.get(b.userId);
      if (earlier !== undefined) {
        throw new TypeError(
          `appendBatches: user ${JSON.stringify(b.userId)} has two batches (at ${earlier} and ${i}); one batch per user per call`,
        );
      }
      seen.set(b.userId, i);
    });
    const out = new Array<BatchResult | Error>(batches.length);
    const texts = batches.map((b) => b.json ?? b.events.map((e) => JSON.stringify(e)));
    const calls: number[][] = [];
    if (this.#oneUserPerCall || isCluster(this.#client)) {
      batches.forEach((b, i) => {
        if (b.events.length > 0) calls.push([i]);
      });
    } else {
      let call: number[] = [];
      let bytes = 0;
      texts.forEach((t, i) => {
        if (t.length === 0) return;
        let size = 0;
        for (const text of t) size += Buffer.byteLength(text, 'utf8');
        if (call.length > 0 && (call.length >= MAX_USERS_PER_CALL || bytes + size > MAX_EVENT_BYTES_PER_CALL)) {
          calls.push(call);
          call = [];
          bytes = 0;
        }
        call.push(i);
        bytes += size;
      });
      if (call.length > 0) calls.push(call);
    }
    const empty: number[] = [];
    batches.forEach((b, i) => {
      if (b.events.length > 0) return;
      out[i] = { events: [], duplicate: false };
      empty.push(i);
    });
    if (onCall && empty.length > 0) onCall(empty, out);
    const told = { onCall, deliveries };
    await Promise.all(calls.map((call) => this.#appendCall(publisherId, batches, texts, call, out, told)));
    return out;
  }

  /** One script call for the batches at `call`'s indexes: their results into `out`, then `onCall` is told. */
  async #appendCall(
    publisherId: string | undefined,
    batches: readonly UserBatch[],
    texts: readonly (readonly string[])[],
    call: readonly number[],
    out: Array<BatchResult | Error>,
    told: {
      onCall: ((indexes: readonly number[], out: ReadonlyArray<BatchResult | Error>) => void) | undefined;
      deliveries: Array<CommandDelivery | undefined> | undefined;
    },
  ): Promise<void> {
    const { onCall, deliveries } = told;
    const keys: string[] = [];
    // One epoch candidate for the call: a user whose stream starts here gets it with its place in the call after it.
    const args: string[] = [String(call.length), ...this.#retentionArgs, publisherId ?? '', newEpoch()];
    for (const i of call) {
      const b = batches[i] as UserBatch;
      const k = userKeys(b.userId);
      keys.push(k.stream, k.meta);
      if (b.fence) keys.push(b.fence.key);
      const events = texts[i] as readonly string[];
      // The seq alone for one unfenced event (most users), else with the event count before it, negative
      // for a fenced user, whose fence value follows. No channel: the script makes it from the stream key.
      const seq = b.seq === undefined || publisherId === undefined ? '' : String(b.seq);
      args.push(events.length === 1 && !b.fence ? seq : `#${b.fence ? -events.length : events.length} ${seq}`);
      if (b.fence) args.push(b.fence.value);
      // Without the opening '{': the script puts the stored frame's own fields before the rest.
      for (const text of events) args.push(text.slice(1));
    }
    let reply: unknown;
    // Only when someone asks: a watched command is made here rather than by ioredis' method.
    const watch = deliveries ? new CommandWatch() : undefined;
    try {
      reply = await streamScripts.appendMany.run(this.#client, keys, args, watch);
    } catch (error) {
      if (call.length > 1 && error instanceof Error && error.message.startsWith('CROSSSLOT')) {
        // A cluster-enabled server behind a plain client: one call per user from now on.
        this.#oneUserPerCall = true;
        await Promise.all(call.map((i) => this.#appendCall(publisherId, batches, texts, [i], out, told)));
        return;
      }
      const failure = redirectedPlainClient(this.#client, error);
      for (const i of call) out[i] = failure as Error;
      if (deliveries && watch) for (const i of call) deliveries[i] = watch.delivery;
      onCall?.(call, out);
      return;
    }
    if (!Array.isArray(reply) || reply.length !== 4 * call.length) {
      const error = new ReplyError(
        `appendMany answered ${Array.isArray(reply) ? `${reply.length} items` : typeof reply} for ${call.length} user(s), 4 per user expected`,
      );
      for (const i of call) out[i] = error;
      onCall?.(call, out);
      return;
    }
    for (let u = 0; u < call.length; u++) {
      const i = call[u] as number;
      out[i] = userResult(batches[i] as UserBatch, reply, 4 * u);
    }
    onCall?.(call, out);
  }

  async #appendUser(userId: string, events: readonly AppEvent[], fence?: PublishFence): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    return (await this.#append(userId, events, undefined, undefined, fence)).events;
  }

  async #append(
    userId: string,
    events: readonly AppEvent[],
    tag: BatchTag | undefined,
    positions: readonly number[] | undefined,
    fence: PublishFence | undefined,
  ): Promise<BatchResult> {
    const k = userKeys(userId);
    // One flat argument list, each event's JSON made once (the stored frame is built from it in the script).
    const args: string[] = [newEpoch(), k.channel, ...this.#retentionArgs];
    if (tag) args.push(`${tag.publisherId} ${tag.seq}`);
    for (const e of events) args.push(JSON.stringify(e));
    if (fence) args.push(fence.value);
    const reply = (await (fence ? fencedAppendScript : streamScripts.appendAndNotify)
      .run(this.#client, fence ? [k.stream, k.meta, fence.key] : [k.stream, k.meta], args)
      .catch((error: unknown) => {
        throw redirectedPlainClient(this.#client, error);
      })) as [string, number, number, number];
    const [epoch, first, ts, flag] = reply;
    if (Number(flag) === APPEND_MANY_FLAGS.stale) throw new ReplyError(`${STALE_REPLY} ${epoch}`);
    return storedBatch(
      events,
      epoch,
      Number(first),
      Number(ts),
      Number(flag) === APPEND_MANY_FLAGS.duplicate,
      positions,
    );
  }
}

/**
 * A plain client answered `MOVED`/`ASK`: its server is one node of a Redis Cluster, and another
 * node holds the user's keys. No retry helps (as `MOVED` the outbox would retry it for ever, the
 * caller told only "cannot reach Redis"): a refusal that names the setting instead.
 */
function redirectedPlainClient(client: RedisClient, error: unknown): unknown {
  if (isCluster(client) || !(error instanceof Error) || !/^(?:MOVED|ASK) /.test(error.message)) return error;
  const { host, port } = client.options;
  return new ReplyError(
    `the Redis at ${host}:${port} is a node of a Redis Cluster, and another node holds this user's keys (it answered ${error.message}); connect as a cluster: createPublisher's cluster: true, livebus-publish --cluster, the gateway's REDIS_CLUSTER=true`,
  );
}

/** One user's four items of an `appendMany` reply (from `at`): its batch stored (or a duplicate), or its error. */
function userResult(b: UserBatch, reply: readonly unknown[], at: number): BatchResult | Error {
  const head = reply[at];
  const first = reply[at + 1];
  const ts = reply[at + 2];
  const flagItem = reply[at + 3];
  // An integer reply (or its digits); anything else is no flag at all, never "stored".
  const flag =
    typeof flagItem === 'number' || (typeof flagItem === 'string' && /^\d+$/.test(flagItem))
      ? Number(flagItem)
      : Number.NaN;
  const text = typeof head === 'string' ? head : String(head);
  if (flag === APPEND_MANY_FLAGS.fenced) return new ReplyError(`${FENCED_REPLY} ${text}`);
  if (flag === APPEND_MANY_FLAGS.error) return new ReplyError(text);
  if (flag === APPEND_MANY_FLAGS.stale) return new ReplyError(`${STALE_REPLY} ${text}`);
  if (flag === APPEND_MANY_FLAGS.stored || flag === APPEND_MANY_FLAGS.duplicate) {
    const firstOffset = Number(first);
    const time = Number(ts);
    if (
      typeof head === 'string' &&
      head !== '' &&
      Number.isSafeInteger(firstOffset) &&
      firstOffset > 0 &&
      Number.isSafeInteger(time)
    ) {
      return storedBatch(b.events, head, firstOffset, time, flag === APPEND_MANY_FLAGS.duplicate, b.positions);
    }
  }
  return new ReplyError(
    `appendMany answered an unreadable result for user ${JSON.stringify(b.userId)}: ${JSON.stringify(reply.slice(at, at + 4))}`,
  );
}

/** A batch's events as stored, from the epoch, first offset and ts the script answered. */
function storedBatch(
  events: readonly AppEvent[],
  epoch: string,
  firstOffset: number,
  time: number,
  duplicate: boolean,
  positions: readonly number[] | undefined,
): BatchResult {
  return {
    events: events.map((event, i) => {
      const offset = firstOffset + (duplicate && positions ? (positions[i] ?? i) : i);
      // The fields of an AppEvent (a strict schema: exactly these two), without an object spread.
      return {
        type: 'event',
        cursor: formatCursor(epoch, offset),
        ts: time,
        event: event.event,
        data: event.data,
      } as StoredEvent;
    }),
    duplicate,
  };
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
