import { type AppEvent, type Cursor, formatCursor, parseCursor } from '@livebus/protocol';
import { type RetentionOptions, resolveRetention, validatedJson } from '@livebus/publisher';
import { isCluster, type RedisClient, RedisScript, slotOf, streamScripts, userKeys } from '@livebus/publisher/redis';
import type { EventBus, ReadResult, StoredEvent } from '../../fleet/bus/event-bus';
import { MemoryEventBus } from '../../fleet/bus/memory-event-bus';
import { companyKeys } from './company-keys';
import { newEpochText } from './epoch-text';

/**
 * Port: where a company's changes go. Each change is appended to the company's journal
 * (its cursor is what the listener stores with its mark, so a new holder replays what a
 * killed one published) and to every follower's own stream (so resume, cursors and
 * `gap` work as for any event).
 */
export interface CompanyFanOut {
  /**
   * Appends `events` to each of `userIds`' streams and, when `companyId` is given, to the
   * company's journal (last: a change is in the journal only once every follower has it).
   * @returns the journal cursor of the last event (undefined without a journal).
   */
  append(
    companyId: string | undefined,
    userIds: readonly string[],
    events: readonly AppEvent[],
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

/**
 * The user-stream append script run once per stream for many streams in one call:
 * its own `append_and_notify` (retention, trimming, failover skip, SPUBLISH) unchanged.
 * KEYS: stream, meta of each stream. ARGV: n, max events, retention ms, max bytes,
 * stream ttl, meta ttl, then per stream its epoch candidate and channel, then the events.
 * Returns epoch, first offset, ts per stream.
 */
const APPEND_MANY = new RedisScript(`${APPEND.trimEnd().slice(0, -APPEND_TAIL.length)}
local n = tonumber(ARGV[1])
local first_event = 7 + 2 * n
local out = {}
for s = 1, n do
  local args = { ARGV[5 + 2 * s], ARGV[6 + 2 * s], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] }
  for i = first_event, #ARGV do args[#args + 1] = ARGV[i] end
  local r = append_and_notify({ KEYS[2 * s - 1], KEYS[2 * s] }, args)
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out
`);

interface Target {
  stream: string;
  meta: string;
  channel: string;
  journal: boolean;
}

/**
 * The fan-out on Redis: one script call per slot batch. On a standalone Redis every
 * stream is one batch, so a change costs one call whatever the number of followers;
 * on a Cluster the followers are grouped by slot (the journal goes last, on its own).
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
    companyId: string | undefined,
    userIds: readonly string[],
    events: readonly AppEvent[],
  ): Promise<Cursor | undefined> {
    if (events.length === 0) return undefined;
    // Validated once for all followers (the publisher validates per user; the event is the same).
    const valid = events.map((e) => validatedJson(userIds[0] ?? 'company', e).json);
    const targets: Target[] = userIds.map((uid) => ({ ...userKeys(uid), journal: false }));
    const journal: Target | undefined = companyId ? { ...companyKeys(companyId), journal: true } : undefined;
    if (!isCluster(this.#redis)) {
      const reply = await this.#run(journal ? [...targets, journal] : targets, valid);
      return journal ? lastCursor(reply, reply.length / 3 - 1, events.length) : undefined;
    }
    const bySlot = new Map<number, Target[]>();
    for (const t of targets) {
      const slot = slotOf(t.stream);
      const batch = bySlot.get(slot);
      if (batch) batch.push(t);
      else bySlot.set(slot, [t]);
    }
    await Promise.all([...bySlot.values()].map((batch) => this.#run(batch, valid)));
    if (!journal) return undefined;
    return lastCursor(await this.#run([journal], valid), 0, events.length);
  }

  async #run(targets: readonly Target[], events: readonly string[]): Promise<unknown[]> {
    if (targets.length === 0) return [];
    const r = this.#r;
    this.#calls++;
    return (await APPEND_MANY.run(
      this.#redis,
      targets.flatMap((t) => [t.stream, t.meta]),
      [
        targets.length,
        r.retentionEvents,
        r.retentionMs,
        r.retentionBytes,
        r.streamTtlMs,
        r.metaTtlMs,
        ...targets.flatMap((t) => [newEpochText(), t.channel]),
        ...events,
      ],
    )) as unknown[];
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
    companyId: string | undefined,
    userIds: readonly string[],
    events: readonly AppEvent[],
  ): Promise<Cursor | undefined> {
    this.#calls++;
    await this.#bus.publishMany(userIds.flatMap((userId) => events.map((event) => ({ userId, event }))));
    if (!companyId || events.length === 0) return undefined;
    const stored = await this.#journals.publishMany(events.map((event) => ({ userId: companyId, event })));
    return stored[stored.length - 1]?.cursor;
  }

  readJournal(companyId: string, cursor: Cursor): Promise<ReadResult> {
    return this.#journals.readSince(companyId, cursor);
  }
}
