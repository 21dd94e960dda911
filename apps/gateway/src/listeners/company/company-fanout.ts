import { type AppEvent, type Cursor, formatCursor, parseCursor } from '@livebus/protocol';
import { PublishError, type RetentionOptions, resolveRetention, validatedJson } from '@livebus/publisher';
import { isCluster, type RedisClient, RedisScript, slotOf, streamScripts, userKeys } from '@livebus/publisher/redis';
import type { EventBus, ReadResult, StoredEvent } from '../../fleet/bus/event-bus';
import { MemoryEventBus } from '../../fleet/bus/memory-event-bus';
import type { LeaseHolder } from '../../fleet/lease/lease';
import { leaseValue } from '../../fleet/lease/redis-lease';
import { companyKeys } from './company-keys';
import { newEpochText } from './epoch-text';

/** How {@link CompanyFanOut.append} appends. */
export interface CompanyAppendOptions {
  /**
   * Also to the company's journal (a change of its listeners), last: a change is in the
   * journal only once every follower has it. False: a joiner's initial state.
   */
  journal: boolean;
  /**
   * The company's lease the holder appends under: nothing is appended unless the lease
   * (`lb:co:{company}:l`) still holds it, checked once before any append, and the call
   * rejects with a `PublishError` `fenced` (see {@link RedisCompanyFanOut} for a Cluster).
   * The in-memory fan-out (one instance, one holder) ignores it.
   */
  fence?: LeaseHolder;
}

/**
 * Port: where a company's changes go. Each change is appended to the company's journal
 * (its cursor is what the listener stores with its mark, so a new holder replays what a
 * killed one published) and to every follower's own stream (so resume, cursors and
 * `gap` work as for any event).
 */
export interface CompanyFanOut {
  /**
   * Appends `events` to each of `userIds`' streams and, with `journal`, to the company's journal.
   * @returns the journal cursor of the last event (undefined without a journal).
   */
  append(
    companyId: string,
    userIds: readonly string[],
    events: readonly AppEvent[],
    options: CompanyAppendOptions,
  ): Promise<Cursor | undefined>;
  /** The journal after `cursor`, holes and all (see `EventBus.readRetained`). */
  readJournal(companyId: string, cursor: Cursor): Promise<ReadResult>;
  /** Redis calls made by {@link append} since start (for /metrics and the benchmark). */
  calls(): number;
}

const APPEND = streamScripts.appendAndNotify.source;
const APPEND_TAIL = 'return append_and_notify(KEYS, ARGV)';
if (!APPEND.trimEnd().endsWith(APPEND_TAIL)) {
  throw new Error('the stream append script changed its entry point: update listeners/company/company-fanout.ts');
}

/** The start of the error a fenced call is refused with (the user streams' `FENCED`). */
const FENCED = 'FENCED';

/**
 * The user-stream append script run once per stream for many streams in one call:
 * its own `append_and_notify` (retention, trimming, failover skip, SPUBLISH) unchanged.
 * KEYS: stream, meta of each stream, then the company's lease key when fenced. ARGV: n,
 * the fence value ('': unfenced), max events, retention ms, max bytes, stream ttl, meta ttl,
 * then per stream its epoch candidate and channel, then the events. Fenced: the lease is
 * read once, before anything is written, and when it holds anything else nothing is
 * appended (error `FENCED`). Returns epoch, first offset, ts per stream.
 */
const APPEND_MANY = new RedisScript(`${APPEND.trimEnd().slice(0, -APPEND_TAIL.length)}
local n = tonumber(ARGV[1])
if ARGV[2] ~= '' and redis.call('GET', KEYS[2 * n + 1]) ~= ARGV[2] then
  return redis.error_reply('${FENCED} the company lease is no longer held by this writer')
end
local first_event = 8 + 2 * n
local out = {}
for s = 1, n do
  local args = { ARGV[6 + 2 * s], ARGV[7 + 2 * s], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7] }
  for i = first_event, #ARGV do args[#args + 1] = ARGV[i] end
  local r = append_and_notify({ KEYS[2 * s - 1], KEYS[2 * s] }, args)
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out
`);

/**
 * The fence alone, on a Cluster, where the followers' streams are in other slots than the
 * company's lease: KEYS: the lease. ARGV: the value it must hold. Error `FENCED` otherwise.
 */
const CHECK_FENCE = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('${FENCED} the company lease is no longer held by this writer')
end
return 1
`);

interface Target {
  stream: string;
  meta: string;
  channel: string;
}

/** A fence as the scripts take it: the lease key and the `owner|token` it must hold. */
interface Fence {
  key: string;
  value: string;
}

/**
 * The fan-out on Redis: one script call per slot batch. On a standalone Redis every
 * stream is one batch, so a change costs one call whatever the number of followers, and a
 * fenced one is checked in that call; on a Cluster the followers are grouped by slot (the
 * journal goes last, on its own), and a fenced one is checked by a call of its own on the
 * company's slot before the followers' calls, and again by the journal's call.
 */
export class RedisCompanyFanOut implements CompanyFanOut {
  readonly #redis: RedisClient;
  readonly #r: ReturnType<typeof resolveRetention>;
  #calls = 0;

  constructor(redis: RedisClient, retention: RetentionOptions = {}) {
    this.#redis = redis;
    this.#r = resolveRetention(retention);
  }

  calls(): number {
    return this.#calls;
  }

  async append(
    companyId: string,
    userIds: readonly string[],
    events: readonly AppEvent[],
    options: CompanyAppendOptions,
  ): Promise<Cursor | undefined> {
    if (events.length === 0) return undefined;
    // Validated once for all followers (the publisher validates per user; the event is the same).
    const valid = events.map((e) => validatedJson(userIds[0] ?? 'company', e).json);
    const targets: Target[] = userIds.map((uid) => userKeys(uid));
    const keys = companyKeys(companyId);
    const journal: Target | undefined = options.journal ? keys : undefined;
    const fence: Fence | undefined = options.fence
      ? { key: keys.lease, value: leaseValue(options.fence.owner, options.fence.token) }
      : undefined;
    try {
      if (!isCluster(this.#redis)) {
        const reply = await this.#run(journal ? [...targets, journal] : targets, valid, fence);
        return journal ? lastCursor(reply, reply.length / 3 - 1, events.length) : undefined;
      }
      return await this.#appendOnCluster(targets, journal, valid, fence);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!message.startsWith(FENCED)) throw error;
      throw new PublishError('fenced', `the company fan-out was refused: ${message}`, { cause: error });
    }
  }

  /**
   * The followers' streams are in other slots than the lease: a fence is checked once before
   * their calls (a holder paused between that check and them can still append once more),
   * and in the journal's call, which is in the lease's slot.
   */
  async #appendOnCluster(
    targets: readonly Target[],
    journal: Target | undefined,
    events: readonly string[],
    fence: Fence | undefined,
  ): Promise<Cursor | undefined> {
    const bySlot = new Map<number, Target[]>();
    for (const t of targets) {
      const slot = slotOf(t.stream);
      const batch = bySlot.get(slot);
      if (batch) batch.push(t);
      else bySlot.set(slot, [t]);
    }
    if (fence && bySlot.size > 0) {
      this.#calls++;
      await CHECK_FENCE.run(this.#redis, [fence.key], [fence.value]);
    }
    await Promise.all([...bySlot.values()].map((batch) => this.#run(batch, events, undefined)));
    if (!journal) return undefined;
    return lastCursor(await this.#run([journal], events, fence), 0, events.length);
  }

  async #run(targets: readonly Target[], events: readonly string[], fence: Fence | undefined): Promise<unknown[]> {
    if (targets.length === 0) return [];
    const r = this.#r;
    this.#calls++;
    const keys = targets.flatMap((t) => [t.stream, t.meta]);
    if (fence) keys.push(fence.key);
    return (await APPEND_MANY.run(this.#redis, keys, [
      targets.length,
      fence?.value ?? '',
      r.retentionEvents,
      r.retentionMs,
      r.retentionBytes,
      r.streamTtlMs,
      r.metaTtlMs,
      ...targets.flatMap((t) => [newEpochText(), t.channel]),
      ...events,
    ])) as unknown[];
  }

  async readJournal(companyId: string, cursor: Cursor): Promise<ReadResult> {
    const at = parseCursor(cursor);
    const k = companyKeys(companyId);
    const reply = (await streamScripts.readSince.run(
      this.#redis,
      [k.stream, k.meta],
      [newEpochText(), this.#r.metaTtlMs, this.#r.retentionMs, at?.epoch ?? '', at?.offset ?? 0, '1'],
    )) as [string, number, 'ok' | 'gap', ...string[]];
    const [epoch, top, status, ...data] = reply;
    const head = formatCursor(epoch, Number(top));
    if (status === 'gap') return { status: 'gap', events: [], cursor: head };
    return { status: 'resumed', events: data.map((d) => JSON.parse(d) as StoredEvent), cursor: head };
  }
}

/** The cursor of the last of `count` events appended to the `index`th stream of a reply. */
function lastCursor(reply: unknown[], index: number, count: number): Cursor {
  const epoch = String(reply[index * 3]);
  const first = Number(reply[index * 3 + 1]);
  return formatCursor(epoch, first + count - 1);
}

/**
 * The fan-out on the embedded in-memory bus (one instance): followers' streams through
 * the bus, the journals in a bus of their own (company ids never share a key with users).
 */
export class MemoryCompanyFanOut implements CompanyFanOut {
  readonly #bus: EventBus;
  readonly #journals = new MemoryEventBus();
  #calls = 0;

  constructor(bus: EventBus) {
    this.#bus = bus;
  }

  calls(): number {
    return this.#calls;
  }

  async append(
    companyId: string,
    userIds: readonly string[],
    events: readonly AppEvent[],
    options: CompanyAppendOptions,
  ): Promise<Cursor | undefined> {
    this.#calls++;
    await this.#bus.publishMany(userIds.flatMap((userId) => events.map((event) => ({ userId, event }))));
    if (!options.journal || events.length === 0) return undefined;
    const stored = await this.#journals.publishMany(events.map((event) => ({ userId: companyId, event })));
    return stored[stored.length - 1]?.cursor;
  }

  readJournal(companyId: string, cursor: Cursor): Promise<ReadResult> {
    return this.#journals.readSince(companyId, cursor);
  }
}
