import { withRedisTimeout } from '@livebus/publisher';
import {
  FLEET_KEY_PREFIX,
  fleetUserKeys,
  instanceKeys,
  LUA_NOW_MS,
  type RedisClient,
  RedisScript,
  type UserKeyPrefixes,
} from '@livebus/publisher/redis';
import { z } from 'zod';
import {
  bySessionAge,
  DEFAULT_INSTANCE_TTL_MS,
  type HeldSessions,
  heartbeatStepTimeoutMs,
  type InstanceInfo,
  type Presence,
  type PresenceAddOptions,
  type PresenceAddResult,
  type PresenceOptions,
  PresenceRefreshError,
  type SessionEntry,
} from './presence';
import { PRESENCE_LUA_PRELUDE } from './presence-lua';

/** Options of {@link RedisPresence}. */
export interface RedisPresenceOptions extends PresenceOptions {
  /** Key prefixes; `registry` must match the RedisRegistryStore's so presence can prune its ghosts. @default {} */
  prefixes?: UserKeyPrefixes;
  /** Heartbeat batch: how many per-user scripts are in flight at once. @default 256 */
  refreshConcurrency?: number;
  /**
   * A heartbeat's refresh of many users is spread over this long, in slices of
   * {@link REFRESH_SLICE} users, instead of reaching Redis as one burst of
   * scripts that every publish then waits behind (1 000 users: about 25 ms of
   * Redis time at once). Must stay well below the instance TTL: an entry's
   * refreshes are at most the beat period plus this apart. 0: all at once.
   * @default instanceTtlMs / 6 (half the gateway's beat period)
   */
  refreshSpreadMs?: number;
  /**
   * How long the registry entry of a session that left stays, for the session to
   * resume with its id; then the next operation on the user (a registration
   * included) prunes it. Without it the entries of sessions that left while the
   * user kept another (a cancelled detach never cleans up) stayed for as long as
   * the user did. 0: removed with the session's presence entry while the user keeps
   * another session, else left to the detach cleanup. @default 0
   */
  leaveGraceMs?: number;
}

/** Users refreshed per slice of a spread heartbeat; a refresh of fewer is never spread. */
export const REFRESH_SLICE = 64;

const SessionEntrySchema = z.object({
  sessionId: z.string(),
  instanceId: z.string(),
  route: z.string(),
  connectedAt: z.number(),
});

const InstanceInfoSchema = z.object({
  id: z.string(),
  sessions: z.number(),
  users: z.number(),
  startedAt: z.number(),
  version: z.string(),
  lastSeen: z.number(),
  eventsInPerS: z.number().optional(),
  eventsOutPerS: z.number().optional(),
  deliveryP50Ms: z.number().nullable().optional(),
  deliveryP99Ms: z.number().nullable().optional(),
});

/** A UTF-16 code unit that is half of no pair (the `u` flag reads pairs as one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** The control channel of an instance, without the id (see `instanceKeys.channel`). */
const CONTROL_CHANNEL_PREFIX = instanceKeys.channel('');

// KEYS[4]: the detach claim. ARGV: session id, entry JSON, ttl ms, max sessions (0: none),
// the user id ('': tell nobody), '1' for a re-announce, the session's registry entry JSON to
// write back when its id has none ('': none; a re-announce after a stall pruned it).
// Returns {accepted 0|1|2, live count, replaced entry JSON or '', told 0|1, the session id's
// registry entry JSON or ''}. An entry replaced
// that another instance holds: that instance is told to close its socket, on its control
// channel, in the instance channel's `replace` message (one command less per hello that takes
// a session over); told says whether it was. A re-announce (ARGV[6]) of an entry another
// instance holds writes nothing and answers 2: that instance took the session over.
const ADD = new RedisScript(`${PRESENCE_LUA_PRELUDE}
local now = now_ms()
prune(now)
local previous = redis.call('HGET', KEYS[1], ARGV[1])
-- Live sessions are the hash; the zset also holds the expiry of sessions that left (see REMOVE).
local count = redis.call('HLEN', KEYS[1])
local max = tonumber(ARGV[4])
local others = count
if previous then others = others - 1 end
local holder = previous and instance_of(previous)
if ARGV[6] == '1' and holder and holder ~= instance_of(ARGV[2]) then
  settle()
  return {2, count, previous, 0}
end
if max > 0 and others >= max then
  settle()
  return {0, count, ''}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local told = 0
if type(holder) == 'string' and ARGV[5] ~= '' and holder ~= instance_of(ARGV[2]) then
  redis.call('PUBLISH', '${CONTROL_CHANNEL_PREFIX}' .. holder, cjson.encode({type = 'replace', uid = ARGV[5], session_id = ARGV[1]}))
  told = 1
end
-- The user is back: their next departure is decided afresh (see RedisDetachDecision).
redis.call('DEL', KEYS[4])
if ARGV[7] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[7]) end
settle()
return {1, others + 1, previous or '', told, redis.call('HGET', KEYS[3], ARGV[1]) or ''}
`);

// ARGV: session id, instance id, leave grace ms. Returns 1 when removed.
// With a grace, the session's expiry stays in the zset: prune() then drops its
// registry entry once the grace is over, unless the session came back (ADD).
// Without, its registry entry goes with it while the user keeps another session (the
// user's last session's goes with the detach cleanup, DETACH_DELAY_MS later).
const REMOVE = new RedisScript(`${PRESENCE_LUA_PRELUDE}
local now = now_ms()
prune(now)
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local removed = 0
if raw and instance_of(raw) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local grace = tonumber(ARGV[3])
  if grace > 0 then
    redis.call('ZADD', KEYS[2], now + grace, ARGV[1])
  else
    redis.call('ZREM', KEYS[2], ARGV[1])
    if redis.call('HLEN', KEYS[1]) > 0 then redis.call('HDEL', KEYS[3], ARGV[1]) end
  end
  removed = 1
end
settle()
return removed
`);

// Returns HGETALL of the live entries.
const SESSIONS = new RedisScript(`${PRESENCE_LUA_PRELUDE}
if prune(now_ms()) > 0 then settle() end
return redis.call('HGETALL', KEYS[1])
`);

// ARGV: instance id, ttl ms, then the ids of the user's sessions the instance serves.
// Extends the entries of those it holds; returns how many. Its other entries (a session
// that closed while its remove failed) are left to expire. Gateways that predate the list
// run their own script (by its SHA) on the same data: the entries are unchanged.
const REFRESH = new RedisScript(`${PRESENCE_LUA_PRELUDE}
local now = now_ms()
prune(now)
local expiry = now + tonumber(ARGV[2])
local found = 0
for i = 3, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw and instance_of(raw) == ARGV[1] then
    redis.call('ZADD', KEYS[2], 'XX', expiry, ARGV[i])
    found = found + 1
  end
end
settle()
return found
`);

// KEYS[1]: instances zset. ARGV: instance id, ttl ms.
const ANNOUNCE = new RedisScript(`${LUA_NOW_MS}
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
`);

// KEYS[1]: instances zset. Returns the ids not expired.
const INSTANCES = new RedisScript(`${LUA_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
return redis.call('ZRANGE', KEYS[1], 0, -1)
`);

function parse<T>(schema: z.ZodType<T>, raw: string): T | undefined {
  // Data in Redis is outside our process: skip (never crash on) foreign entries.
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Presence in Redis (standalone or Cluster), shared by the fleet; modelled on
 * centrifuge's presence_redis.go. Per user, on the user's slot:
 * - `lb:{uid}:p`: hash session id -> {@link SessionEntry} JSON;
 * - `lb:{uid}:pz`: zset session id -> expiry (Redis server time, ms).
 *
 * Each operation is one Lua script on those keys that first prunes expired
 * entries (and the same session ids from `registry:user:{uid}`), then makes the
 * keys expire with their last entry. Instances: `lb:instances` zset (id -> expiry)
 * and `lb:instance:{id}` JSON with PX, written by separate commands (different slots).
 */
export class RedisPresence implements Presence {
  readonly #redis: RedisClient;
  readonly #ttlMs: number;
  readonly #prefixes: UserKeyPrefixes;
  readonly #fleetPrefix: string;
  readonly #concurrency: number;
  /** How long one user's refresh step may go unanswered before it counts as failed. */
  readonly #stepTimeoutMs: number;
  readonly #spreadMs: number;
  readonly #leaveGraceMs: number;

  constructor(redis: RedisClient, options: RedisPresenceOptions = {}) {
    this.#redis = redis;
    this.#ttlMs = options.instanceTtlMs ?? DEFAULT_INSTANCE_TTL_MS;
    this.#prefixes = options.prefixes ?? {};
    this.#fleetPrefix = this.#prefixes.fleet ?? FLEET_KEY_PREFIX;
    this.#concurrency = options.refreshConcurrency ?? 256;
    this.#spreadMs = options.refreshSpreadMs ?? Math.floor(this.#ttlMs / 6);
    // Well inside a beat period (a third of the TTL), whatever the spread.
    this.#stepTimeoutMs = heartbeatStepTimeoutMs(this.#ttlMs);
    this.#leaveGraceMs = options.leaveGraceMs ?? 0;
  }

  #keys(userId: string): string[] {
    const k = fleetUserKeys(userId, this.#prefixes);
    return [k.presence, k.presenceExpiry, k.registrySessions];
  }

  #instancesKey = () => instanceKeys.list(this.#fleetPrefix);
  #instanceKey = (id: string) => instanceKeys.info(id, this.#fleetPrefix);

  async add(userId: string, entry: SessionEntry, options: PresenceAddOptions = {}): Promise<PresenceAddResult> {
    const k = fleetUserKeys(userId, this.#prefixes);
    const keys = [k.presence, k.presenceExpiry, k.registrySessions, k.detachClaim];
    const [accepted, count, previous, told, registration] = (await ADD.run(this.#redis, keys, [
      entry.sessionId,
      JSON.stringify(entry),
      this.#ttlMs,
      options.maxSessions ?? 0,
      // The script tells the holder only what it can say exactly: cjson and the UTF-8 of the
      // arguments would change a lone surrogate, and the old instance would find no such session.
      options.reannounce || LONE_SURROGATE.test(userId) || LONE_SURROGATE.test(entry.sessionId) ? '' : userId,
      options.reannounce ? '1' : '',
      (options.reannounce && options.registration) || '',
    ])) as [number, number, string, number, string | undefined];
    if (accepted === 0) return { refused: true, count };
    if (accepted === 2) return { refused: true, heldElsewhere: true, count };
    const replaced = previous ? parse(SessionEntrySchema, previous) : undefined;
    // Kept as Redis holds it (read back only to be written back): nothing parsed per hello.
    const held = registration || undefined;
    if (!replaced) return { refused: false, count, registration: held };
    return told === 1
      ? { refused: false, replaced, holderTold: true, count, registration: held }
      : { refused: false, replaced, count, registration: held };
  }

  async remove(userId: string, sessionId: string, instanceId: string): Promise<boolean> {
    return (await REMOVE.run(this.#redis, this.#keys(userId), [sessionId, instanceId, this.#leaveGraceMs])) === 1;
  }

  async sessions(userId: string): Promise<SessionEntry[]> {
    const flat = (await SESSIONS.run(this.#redis, this.#keys(userId), [])) as string[];
    const entries: SessionEntry[] = [];
    for (let i = 1; i < flat.length; i += 2) {
      const entry = parse(SessionEntrySchema, flat[i]!);
      if (entry) entries.push(entry);
    }
    return entries.sort(bySessionAge);
  }

  async refresh(instanceId: string, held: Iterable<HeldSessions>): Promise<string[]> {
    const lost: string[] = [];
    const all = [...held];
    const slices = Math.ceil(all.length / REFRESH_SLICE);
    const stepMs = slices > 1 ? this.#spreadMs / (slices - 1) : 0;
    const start = Date.now();
    // A user's failure (its node failing over) does not keep the others, on healthy nodes, from
    // being refreshed: their entries would expire, and with them the registry's.
    // Each slice starts at its time whether the ones before it were answered or not: a node that
    // answers nothing (frozen) holds its own users until their step's timeout, no one else.
    const failures = { count: 0, first: undefined as unknown };
    const running: Promise<void>[] = [];
    for (let i = 0; i < slices; i++) {
      const wait = start + i * stepMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
      running.push(this.#refreshAll(instanceId, all.slice(i * REFRESH_SLICE, (i + 1) * REFRESH_SLICE), lost, failures));
    }
    await Promise.all(running);
    if (failures.count > 0) throw new PresenceRefreshError(failures.count, lost, failures.first);
    return lost;
  }

  async #refreshAll(
    instanceId: string,
    users: HeldSessions[],
    lost: string[],
    failures: { count: number; first: unknown },
  ): Promise<void> {
    // One script per user (a user's keys are one slot; users are spread over slots).
    // ioredis writes commands without waiting for replies, so a window of them is
    // pipelined on each node's connection; the window bounds memory for big instances.
    const queue = users;
    const worker = async () => {
      for (let user = queue.pop(); user !== undefined; user = queue.pop()) {
        const [userId, sessionIds] = user;
        try {
          const found = await withRedisTimeout(
            REFRESH.run(this.#redis, this.#keys(userId), [instanceId, this.#ttlMs, ...sessionIds]),
            this.#stepTimeoutMs,
          );
          if (Number(found) < sessionIds.length) lost.push(userId);
        } catch (error) {
          failures.count++;
          failures.first ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
  }

  async announce(info: Omit<InstanceInfo, 'lastSeen'>, ttlMs: number): Promise<void> {
    const full: InstanceInfo = { ...info, lastSeen: Date.now() };
    // The info first: a listed id whose info is missing is skipped by instances(), the reverse would be invisible.
    await this.#redis.set(this.#instanceKey(info.id), JSON.stringify(full), 'PX', ttlMs);
    await ANNOUNCE.run(this.#redis, [this.#instancesKey()], [info.id, ttlMs]);
  }

  async instances(): Promise<InstanceInfo[]> {
    const ids = (await INSTANCES.run(this.#redis, [this.#instancesKey()], [])) as string[];
    const infos = await Promise.all(ids.map((id) => this.#redis.get(this.#instanceKey(id))));
    return infos
      .flatMap((raw) => (raw === null ? [] : (parse(InstanceInfoSchema, raw) ?? [])))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async retire(instanceId: string): Promise<void> {
    await this.#redis.zrem(this.#instancesKey(), instanceId);
    await this.#redis.del(this.#instanceKey(instanceId));
  }
}
