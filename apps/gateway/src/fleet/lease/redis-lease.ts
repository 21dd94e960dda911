import {
  fleetUserKeys,
  LUA_NOW_MS,
  type RedisClient,
  RedisScript,
  type UserKeyPrefixes,
} from '@livebus/publisher/redis';
import { assertLeaseOwner, type Lease, type LeaseHolder } from './lease';

/** Options of {@link RedisLease}. */
export interface RedisLeaseOptions {
  /** Key prefixes (only `fleet` is used). @default {} */
  prefixes?: UserKeyPrefixes;
  /**
   * How long the fencing counter outlives the last acquire or renew (it needs an
   * expiry like every key; tokens stay increasing after it expires, see {@link RedisLease}).
   * @default 86_400_000
   */
  fenceTtlMs?: number;
}

// KEYS: lease, fence. ARGV: owner, ttl ms, fence ttl ms. Returns the new token, or 0 when held by another owner.
const ACQUIRE = new RedisScript(`${LUA_NOW_MS}
local fence_ttl = math.max(tonumber(ARGV[2]), tonumber(ARGV[3]))
local current = redis.call('GET', KEYS[1])
if current then
  -- The owner is everything before the last '|' (the token is digits): an owner may hold '|' too.
  if string.match(current, '^(.*)|%d+$') ~= ARGV[1] then return 0 end
  -- Held under this owner name: by a process that restarted with the same INSTANCE_ID,
  -- or an attempt whose reply was lost. Either way a new acquisition, with a new token.
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = string.format('%.0f', math.max(last + 1, now_ms()))
redis.call('SET', KEYS[2], token, 'PX', fence_ttl)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return tonumber(token)
`);

// KEYS: lease, fence. ARGV: owner, ttl ms, fence ttl ms, the value the lease must hold ('' none).
// Returns the new token, or 0 when the lease holds anything else.
const TAKE_OVER = new RedisScript(`${LUA_NOW_MS}
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[4] then return 0 end
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = string.format('%.0f', math.max(last + 1, now_ms()))
redis.call('SET', KEYS[2], token, 'PX', math.max(tonumber(ARGV[2]), tonumber(ARGV[3])))
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return tonumber(token)
`);

/**
 * The value of a held lease key, `owner|token`: what the lease scripts, and every script
 * fenced by a lease (the watermark store's), compare. Unambiguous for any owner, since the
 * token after the last `|` is digits.
 */
export const leaseValue = (owner: string, token: number): string => `${owner}|${token}`;

// KEYS: lease, fence. ARGV: owner|token, ttl ms, fence ttl ms. Returns 1 when renewed.
const RENEW = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[2]), tonumber(ARGV[3])))
return 1
`);

// KEYS: lease. ARGV: owner|token. Returns 1 when released.
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/**
 * Leases in Redis (standalone or Cluster). Per key, on the key's slot (the key
 * is the hash tag, so a lease keyed by user id lives with that user's presence):
 * - `lb:{key}:l`: `owner|token`, PX the lease TTL;
 * - `lb:{key}:lf`: the last token issued, PX `fenceTtlMs`.
 *
 * Each operation is one script comparing `owner|token`. Every acquisition,
 * also by the owner name that holds the lease, issues a new token
 * `max(last + 1, Redis server time in ms)`: the counter is INCR-like while it
 * lives, and once it has expired the server clock (which has moved on by at least
 * `fenceTtlMs`) still puts the next token above every earlier one.
 */
export class RedisLease implements Lease {
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;
  readonly #fenceTtlMs: number;

  constructor(redis: RedisClient, options: RedisLeaseOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
    this.#fenceTtlMs = options.fenceTtlMs ?? 86_400_000;
  }

  #keys(key: string): [string, string] {
    const k = fleetUserKeys(key, this.#prefixes);
    return [k.lease, k.leaseFence];
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<{ token: number } | undefined> {
    assertLeaseOwner(owner);
    const token = (await ACQUIRE.run(this.#redis, this.#keys(key), [owner, ttlMs, this.#fenceTtlMs])) as number;
    return token > 0 ? { token } : undefined;
  }

  async takeOver(key: string, from: LeaseHolder, owner: string, ttlMs: number): Promise<{ token: number } | undefined> {
    assertLeaseOwner(owner);
    const token = (await TAKE_OVER.run(this.#redis, this.#keys(key), [
      owner,
      ttlMs,
      this.#fenceTtlMs,
      leaseValue(from.owner, from.token),
    ])) as number;
    return token > 0 ? { token } : undefined;
  }

  async renew(key: string, owner: string, token: number, ttlMs: number): Promise<boolean> {
    const result = await RENEW.run(this.#redis, this.#keys(key), [leaseValue(owner, token), ttlMs, this.#fenceTtlMs]);
    return result === 1;
  }

  async release(key: string, owner: string, token: number): Promise<boolean> {
    return (await RELEASE.run(this.#redis, [this.#keys(key)[0]], [leaseValue(owner, token)])) === 1;
  }

  async holder(key: string): Promise<LeaseHolder | undefined> {
    const raw = await this.#redis.get(this.#keys(key)[0]);
    const sep = raw?.lastIndexOf('|') ?? -1;
    if (raw == null || sep <= 0) return undefined;
    const token = Number(raw.slice(sep + 1));
    return Number.isSafeInteger(token) ? { owner: raw.slice(0, sep), token } : undefined;
  }
}
