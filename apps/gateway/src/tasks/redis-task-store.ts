import type { TaskStatus } from '@livebus/protocol';
import { type RedisClient, RedisScript, TASK_KEY_PREFIX, TASK_QUEUE_NAME, taskKey } from '@livebus/publisher/redis';
import { checkLimitOption } from '../rpc/limit-option';
import { taskDefaults } from './task-defaults';
import {
  type AttemptGuard,
  OpenTaskLimitError,
  type TaskCreateLimits,
  type TaskCreateResult,
  type TaskPatch,
  type TaskRecord,
  type TaskStore,
  type TransitionResult,
} from './task-store';

/**
 * The set of a user's task ids that may still be open (`{lbq}:open:<uid>`, in the queue's
 * slot: the braces of a user id that has any come after the `{lbq}` tag, which wins). A create
 * with a limit prunes it by state, counts it, then adds its task; one without a limit leaves it
 * (nothing would prune it then: it would only grow). It lives `ttlMs` after the
 * last create of the user or change of one of their open tasks, so it outlives every record it
 * counts. Tasks created before this set existed (an upgrade) are not in it and never counted.
 */
export const openTasksKey = (userId: string): string => `${TASK_KEY_PREFIX}:open:${userId}`;

/**
 * Where BullMQ keeps the task queue's jobs: the hash of the job with id `x` is this and `x`
 * (its `prefix:queue:` and the id), present from its add until it is removed as it ends.
 */
export const taskJobKeyPrefix = `${TASK_KEY_PREFIX}:${TASK_QUEUE_NAME}:`;

// A hash per task, every field JSON-encoded, so scripts compare `status` and `progress`
// without decoding the whole record (Lua's cjson would turn an empty array into `{}`).
// KEYS: the task's hash, its user's set of open task ids. ARGV: ttl ms, the most open tasks the
// user may have (0: no limit), the prefix of task keys, the task id, the user id as JSON, the
// time now in ms, the prefix of the queue's job keys, the new start's hold as JSON ('' for none),
// then the record's field/value pairs. The set is pruned before it is counted, so it never counts
// a task that ended: whoever ended it (a worker, a cancel, the TTL), the next create of the user
// drops it. A task in it counts as holdsOpenSlot says: running, or queued within its start's hold
// (or without one) or with its job in the queue (BullMQ's hash of the job,
// `{lbq}:livebus-tasks:<queue_job_id>`). A queued one that does not count is dropped too when its
// start gave the slot back (hold 0: nothing of that start is on its way to the queue); one whose
// hold ran out is kept, as its start may still be queueing its job.
// A create of a task that exists returns it; with a limit, when it is the user's and queued
// without counting (its start failed), the create is a start of it again: counted as a new task
// would be ({2, open} at the limit, nothing changed), else its hold armed again and the task put
// back in the set ({3, record}), so a user never gets a second slot through a failed start.
// The task hashes and job keys read while counting are named from ARGV (ARGV[3] .. id, ARGV[7] ..
// job id), not declared in KEYS: this works on Redis Cluster only because every task key, job key
// and the set share the `{lbq}` hash tag, so they are in the slot of the declared keys. An engine
// that enforces declared keys (a proxy or a Redis-like server refusing undeclared key access)
// would refuse this script.
const CREATE = new RedisScript(`
local max = tonumber(ARGV[2])
local now = tonumber(ARGV[6])
local function has_job(json_id)
  return json_id ~= false and redis.call('EXISTS', ARGV[7] .. cjson.decode(json_id)) == 1
end
local function open_count()
  local open = 0
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local r = redis.call('HMGET', ARGV[3] .. id, 'status', 'user_id', 'start_hold_until', 'queue_job_id')
    if r[2] == ARGV[5] and r[1] == '"running"' then
      open = open + 1
    elseif r[2] == ARGV[5] and r[1] == '"queued"' then
      if not r[3] or tonumber(r[3]) > now or has_job(r[4]) then
        open = open + 1
      elseif tonumber(r[3]) == 0 then
        redis.call('SREM', KEYS[2], id)
      end
    else
      redis.call('SREM', KEYS[2], id)
    end
  end
  return open
end
local function keep_in_set()
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if max > 0 then
    local r = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'start_hold_until', 'queue_job_id')
    if r[2] == ARGV[5] and r[1] == '"queued"' and r[3] and tonumber(r[3]) <= now and not has_job(r[4]) then
      local open = open_count()
      if open >= max then return {2, open} end
      if ARGV[8] == '' then
        redis.call('HDEL', KEYS[1], 'start_hold_until')
      else
        redis.call('HSET', KEYS[1], 'start_hold_until', ARGV[8])
      end
      redis.call('PEXPIRE', KEYS[1], ARGV[1])
      keep_in_set()
      return {3, redis.call('HGETALL', KEYS[1])}
    end
  end
  return {0, redis.call('HGETALL', KEYS[1])}
end
if max > 0 then
  local open = open_count()
  if open >= max then return {2, open} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if max > 0 then keep_in_set() end
return {1, redis.call('HGETALL', KEYS[1])}
`);

// ARGV: ttl ms, allowed statuses as JSON strings joined by '|', the attempt guard ('' for
// none, '<N' for a claim by attempt N, '=' and the JSON run token for a step), the prefix of
// open-task sets, then field/value pairs where an empty value deletes the field. Progress is
// kept at its maximum. A task still open after the change keeps its user's open-task set alive
// as long as its record (the set's TTL is raised to ttl ms): a task queued or running longer than
// ttl ms after its user's last create stays counted. That set is named from ARGV and the stored
// user id, not declared in KEYS: on Redis Cluster this works only because it shares the task
// key's `{lbq}` hash tag (see CREATE); an engine that enforces declared keys would refuse it.
const TRANSITION = new RedisScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, {}} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^|]+') do
  if s == status then allowed = true end
end
if allowed and string.sub(ARGV[3], 1, 1) == '<' then
  local held = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') or 0
  allowed = held < tonumber(string.sub(ARGV[3], 2))
elseif allowed and string.sub(ARGV[3], 1, 1) == '=' then
  allowed = redis.call('HGET', KEYS[1], 'run') == string.sub(ARGV[3], 2)
end
if not allowed then return {0, redis.call('HGETALL', KEYS[1])} end
for i = 5, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if value == '' then
    redis.call('HDEL', KEYS[1], field)
  elseif field == 'progress' then
    local old = tonumber(redis.call('HGET', KEYS[1], 'progress') or '0') or 0
    if tonumber(value) > old then redis.call('HSET', KEYS[1], field, value) end
  else
    redis.call('HSET', KEYS[1], field, value)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local now = redis.call('HMGET', KEYS[1], 'status', 'user_id')
if (now[1] == '"queued"' or now[1] == '"running"') and now[2] then
  local uid = cjson.decode(now[2])
  if type(uid) == 'string' then
    local open = ARGV[4] .. uid
    if redis.call('PTTL', open) < tonumber(ARGV[1]) then
      redis.call('PEXPIRE', open, ARGV[1])
    end
  end
end
return {1, redis.call('HGETALL', KEYS[1])}
`);

/** Options of {@link RedisTaskStore}. */
export interface RedisTaskStoreOptions {
  /** How long a record lives after its last change. @default taskDefaults.ttlS × 1000 (1 day) */
  ttlMs?: number;
  /** The clock a start's hold is compared with (`start_hold_until`). @default Date.now */
  now?: () => number;
  /**
   * The prefix of the queue's job keys (a job id appended names its hash), for the count of
   * open tasks. @default BullMQ's, of the task queue: `{lbq}:livebus-tasks:`
   */
  jobKeyPrefix?: string;
}

/**
 * Task snapshots in Redis: one hash per task (`{lbq}:task:<task_id>`, in the queue's slot),
 * changed only by scripts that compare the status first. Kept apart from BullMQ's job
 * data because a job is removed some time after it ends while `TASK.get_status` must
 * still answer, and because gateways write it too (a cancel) without holding the job lock.
 */
export class RedisTaskStore implements TaskStore {
  readonly #redis: RedisClient;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #jobKeyPrefix: string;

  constructor(redis: RedisClient, options: RedisTaskStoreOptions = {}) {
    this.#redis = redis;
    this.#ttlMs = options.ttlMs ?? taskDefaults.ttlS * 1000;
    this.#now = options.now ?? Date.now;
    this.#jobKeyPrefix = options.jobKeyPrefix ?? taskJobKeyPrefix;
  }

  async create(record: TaskRecord, limits: TaskCreateLimits = {}): Promise<TaskCreateResult> {
    checkLimitOption('maxOpenPerUser', limits.maxOpenPerUser);
    const max = limits.maxOpenPerUser ?? 0;
    const [outcome, reply] = (await CREATE.run(
      this.#redis,
      [taskKey(record.task_id), openTasksKey(record.user_id)],
      [
        this.#ttlMs,
        max,
        taskKey(''),
        record.task_id,
        JSON.stringify(record.user_id),
        this.#now(),
        this.#jobKeyPrefix,
        record.start_hold_until === undefined ? '' : JSON.stringify(record.start_hold_until),
        ...encode(record),
      ],
    )) as [number, string[] | number];
    if (outcome === 2) throw new OpenTaskLimitError(record.user_id, reply as number, max);
    return { record: decode(reply as string[]), created: outcome === 1, rearmed: outcome === 3 };
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const hash = await this.#redis.hgetall(taskKey(taskId));
    return Object.keys(hash).length === 0 ? undefined : decode(Object.entries(hash).flat());
  }

  async transition(
    taskId: string,
    from: readonly TaskStatus[],
    patch: TaskPatch,
    guard?: AttemptGuard,
  ): Promise<TransitionResult> {
    const pairs: string[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      pairs.push(key, value === null ? '' : JSON.stringify(value));
    }
    const [ok, flat] = (await TRANSITION.run(
      this.#redis,
      [taskKey(taskId)],
      [this.#ttlMs, from.map((s) => JSON.stringify(s)).join('|'), guardArg(guard), openTasksKey(''), ...pairs],
    )) as [number, string[]];
    return { ok: ok === 1, record: flat.length === 0 ? undefined : decode(flat) };
  }

  // The client belongs to whoever built the store.
  async close(): Promise<void> {}
}

function guardArg(guard: AttemptGuard | undefined): string {
  if (guard?.claimByAttempt !== undefined && guard.run !== undefined)
    throw new TypeError('a guard is a claim or a step');
  if (guard?.claimByAttempt !== undefined) return `<${guard.claimByAttempt}`;
  if (guard?.run !== undefined) return `=${JSON.stringify(guard.run)}`;
  return '';
}

function encode(record: TaskRecord): string[] {
  return Object.entries(record).flatMap(([k, v]) => (v === undefined ? [] : [k, JSON.stringify(v)]));
}

function decode(flat: string[]): TaskRecord {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = JSON.parse(flat[i + 1] as string);
  return out as unknown as TaskRecord;
}
