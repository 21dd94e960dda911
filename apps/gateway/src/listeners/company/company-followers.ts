import { LUA_NOW_MS, type RedisClient, RedisScript } from '@livebus/publisher/redis';
import { companyKeys } from './company-keys';

/** A follower of a company as its listeners' holder sees it. */
export interface Follower {
  uid: string;
  /** Its initial state was sent (by this holder or a predecessor). */
  initialized: boolean;
}

/**
 * Port: who follows each company in the fleet. An instance adds each user who follows
 * the company with a session there (and refreshes the entry while they do); the holder
 * of the company's lease reads the list to fan changes out, and records whom it sent
 * the initial state. Entries of an instance that died expire after their TTL.
 */
export interface CompanyFollowers {
  /** Adds (or refreshes) the entries of `uids` following `companyId` on `instanceId`. */
  add(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<void>;
  /**
   * Extends the entries of `uids` on `instanceId` that still exist, never creating one (an
   * entry removed meanwhile stays removed); resolves with the uids that had no entry.
   */
  refresh(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<string[]>;
  /** Removes `uid`'s entry of `instanceId`. */
  remove(companyId: string, instanceId: string, uid: string): Promise<void>;
  /**
   * The users with a live entry, whether their initial state was sent; forgets the
   * initial state of users no longer following (they get it again if they come back).
   */
  list(companyId: string): Promise<Follower[]>;
  /** Records that `uids` got the company's initial state. */
  initialized(companyId: string, uids: readonly string[], ttlMs: number): Promise<void>;
}

// KEYS: followers, initialized. ARGV: expiry ms from now, then members.
const ADD = new RedisScript(`${LUA_NOW_MS}
local at = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], at, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);

// KEYS: followers. ARGV: expiry ms from now, then members. Only existing members (ZADD XX);
// returns the members that had no entry.
const REFRESH = new RedisScript(`${LUA_NOW_MS}
local at = now_ms() + tonumber(ARGV[1])
local missing = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then redis.call('ZADD', KEYS[1], 'XX', at, ARGV[i])
  else missing[#missing + 1] = ARGV[i] end
end
if #missing < #ARGV - 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return missing
`);

// KEYS: followers, initialized. Returns uid, flag pairs of the live entries (deduplicated per uid).
const LIST = new RedisScript(`${LUA_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local seen = {}
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local uid = string.match(member, '^(.*)|[^|]*$') or member
  if not seen[uid] then
    seen[uid] = true
    out[#out + 1] = uid
    out[#out + 1] = redis.call('HEXISTS', KEYS[2], uid)
  end
end
for _, uid in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not seen[uid] then redis.call('HDEL', KEYS[2], uid) end
end
-- Read at every poll of the holder: the record lives as long as the company is held.
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], 86400000) end
return out
`);

// KEYS: initialized. ARGV: ttl ms, uids.
const INITIALIZED = new RedisScript(`
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`);

/** `<uid>|<instance>`: the uid is everything before the last `|` (instance ids hold none). */
const member = (uid: string, instanceId: string) => `${uid}|${instanceId.replaceAll('|', '_')}`;

/** Followers in Redis, `lb:co:{company}:f` (zset) and `lb:co:{company}:fi` (hash), in the company's slot. */
export class RedisCompanyFollowers implements CompanyFollowers {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  async add(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<void> {
    if (uids.length === 0) return;
    const k = companyKeys(companyId);
    await ADD.run(this.#redis, [k.followers, k.initialized], [ttlMs, ...uids.map((u) => member(u, instanceId))]);
  }

  async refresh(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<string[]> {
    if (uids.length === 0) return [];
    const k = companyKeys(companyId);
    const missing = (await REFRESH.run(
      this.#redis,
      [k.followers],
      [ttlMs, ...uids.map((u) => member(u, instanceId))],
    )) as string[] | null;
    return (missing ?? []).map((m) => m.slice(0, m.lastIndexOf('|')));
  }

  async remove(companyId: string, instanceId: string, uid: string): Promise<void> {
    await this.#redis.zrem(companyKeys(companyId).followers, member(uid, instanceId));
  }

  async list(companyId: string): Promise<Follower[]> {
    const k = companyKeys(companyId);
    const reply = (await LIST.run(this.#redis, [k.followers, k.initialized], [])) as Array<string | number>;
    const out: Follower[] = [];
    for (let i = 0; i < reply.length; i += 2) out.push({ uid: String(reply[i]), initialized: reply[i + 1] === 1 });
    return out;
  }

  async initialized(companyId: string, uids: readonly string[], ttlMs: number): Promise<void> {
    if (uids.length === 0) return;
    await INITIALIZED.run(this.#redis, [companyKeys(companyId).initialized], [ttlMs, ...uids]);
  }
}

/** Followers in this process's memory (one instance). */
export class MemoryCompanyFollowers implements CompanyFollowers {
  readonly #entries = new Map<string, Map<string, number>>();
  readonly #initialized = new Map<string, Set<string>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async add(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<void> {
    let entries = this.#entries.get(companyId);
    if (!entries) {
      entries = new Map();
      this.#entries.set(companyId, entries);
    }
    for (const uid of uids) entries.set(member(uid, instanceId), this.#now() + ttlMs);
  }

  async refresh(companyId: string, instanceId: string, uids: readonly string[], ttlMs: number): Promise<string[]> {
    const entries = this.#entries.get(companyId);
    const now = this.#now();
    const missing: string[] = [];
    for (const uid of uids) {
      const m = member(uid, instanceId);
      const expires = entries?.get(m);
      if (entries && expires !== undefined && expires > now) entries.set(m, now + ttlMs);
      else missing.push(uid);
    }
    return missing;
  }

  async remove(companyId: string, instanceId: string, uid: string): Promise<void> {
    this.#entries.get(companyId)?.delete(member(uid, instanceId));
  }

  async list(companyId: string): Promise<Follower[]> {
    const entries = this.#entries.get(companyId) ?? new Map<string, number>();
    const now = this.#now();
    const uids = new Set<string>();
    for (const [m, expires] of entries) {
      if (expires <= now) entries.delete(m);
      else uids.add(m.slice(0, m.lastIndexOf('|')));
    }
    const initialized = this.#initialized.get(companyId) ?? new Set<string>();
    for (const uid of initialized) if (!uids.has(uid)) initialized.delete(uid);
    return [...uids].map((uid) => ({ uid, initialized: initialized.has(uid) }));
  }

  async initialized(companyId: string, uids: readonly string[]): Promise<void> {
    let set = this.#initialized.get(companyId);
    if (!set) {
      set = new Set();
      this.#initialized.set(companyId, set);
    }
    for (const uid of uids) set.add(uid);
  }
}
