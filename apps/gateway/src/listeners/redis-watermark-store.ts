import type { Cursor } from '@livebus/protocol';
import { fleetUserKeys, type RedisClient, RedisScript, type UserKeyPrefixes } from '@livebus/publisher/redis';
import type { LeaseHolder } from '../fleet/lease/lease';
import { leaseValue } from '../fleet/lease/redis-lease';
import type { DeliveredDelta, ListenerResume, WatermarkStore } from './watermark-store';

/** Options of {@link RedisWatermarkStore}. */
export interface RedisWatermarkStoreOptions {
  /** Key prefixes (only `fleet` is used). @default {} */
  prefixes?: UserKeyPrefixes;
  /** Marks of a user nobody owns any more are forgotten after this long. @default 86_400_000 */
  ttlMs?: number;
}

// KEYS: lease, marks, docs. ARGV: owner|token, listener, mark ('': the stored one stays),
// ttl ms, field prefix, overflow (0/1), cursor ('': the stored one stays), number of puts,
// then put pairs (path, mark), then deleted paths. Returns 1 when written.
const SET_FENCED = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
local prefix = ARGV[5]
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], string.sub(prefix, 1, -2), ARGV[7]) end
local puts = tonumber(ARGV[8])
local i = 9
for _ = 1, puts do
  redis.call('HSET', KEYS[3], prefix .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[3], prefix .. ARGV[i])
  i = i + 1
end
if ARGV[6] == '1' then redis.call('HSET', KEYS[3], prefix, '1') end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
return 1
`);

// KEYS: marks, docs. ARGV: listener, field prefix. Deletes the listener's mark, cursor and documents.
const FORGET = new RedisScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], string.sub(ARGV[2], 1, -2))
local n = #ARGV[2]
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, 1, n) == ARGV[2] then redis.call('HDEL', KEYS[2], field) end
end
return 1
`);

/** Field prefix of a listener's documents: the name encoded so it holds no space, then a space. */
const prefixOf = (listener: string) => `${encodeURIComponent(listener)} `;

/**
 * Marks in Redis, `lb:{uid}:lw` (hash listener -> mark), and delivered documents,
 * `lb:{uid}:ld` (hash `<listener> <path>` -> update time; the field `<listener> `
 * alone flags an overflowed listener, the field `<listener>` holds the stream cursor
 * the mark covers: a field without a space, which marks stored before it lack and
 * older readers skip), in the user's slot with the lease, so one script checks the
 * lease and writes both atomically.
 */
export class RedisWatermarkStore implements WatermarkStore {
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;
  readonly #ttlMs: number;

  constructor(redis: RedisClient, options: RedisWatermarkStoreOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
    this.#ttlMs = options.ttlMs ?? 86_400_000;
  }

  async get(userId: string): Promise<ListenerResume> {
    const k = fleetUserKeys(userId, this.#prefixes);
    const [marks, fields] = await Promise.all([
      this.#redis.hgetall(k.listenerMarks),
      this.#redis.hgetall(k.listenerDocs),
    ]);
    const docs: ListenerResume['docs'] = {};
    const overflowed: string[] = [];
    const cursors: ListenerResume['cursors'] = {};
    for (const [field, value] of Object.entries(fields)) {
      const space = field.indexOf(' ');
      if (space < 0) {
        cursors[decodeURIComponent(field)] = value;
        continue;
      }
      const listener = decodeURIComponent(field.slice(0, space));
      const path = field.slice(space + 1);
      if (path === '') {
        overflowed.push(listener);
        continue;
      }
      const delivered = docs[listener] ?? {};
      delivered[path] = value;
      docs[listener] = delivered;
    }
    return { marks, docs, overflowed, cursors };
  }

  async set(
    userId: string,
    listener: string,
    mark: string | undefined,
    fence: LeaseHolder,
    delta?: DeliveredDelta,
    cursor?: Cursor,
  ): Promise<boolean> {
    const k = fleetUserKeys(userId, this.#prefixes);
    const puts = Object.entries(delta?.put ?? {});
    const written = await SET_FENCED.run(
      this.#redis,
      [k.lease, k.listenerMarks, k.listenerDocs],
      [
        leaseValue(fence.owner, fence.token),
        listener,
        mark ?? '',
        this.#ttlMs,
        prefixOf(listener),
        delta?.overflow ? '1' : '0',
        cursor ?? '',
        puts.length,
        ...puts.flat(),
        ...(delta?.del ?? []),
      ],
    );
    return written === 1;
  }

  async forget(userId: string, listener: string): Promise<void> {
    const k = fleetUserKeys(userId, this.#prefixes);
    await FORGET.run(this.#redis, [k.listenerMarks, k.listenerDocs], [listener, prefixOf(listener)]);
  }

  async clear(userId: string): Promise<void> {
    const k = fleetUserKeys(userId, this.#prefixes);
    await this.#redis.del(k.listenerMarks, k.listenerDocs);
  }
}
