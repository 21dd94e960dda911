import type { TaskInfo, TaskStatus } from '@livebus/protocol';

/**
 * What the store keeps per task: the `TASK.get_status` snapshot (its last progress update,
 * owner and times) and whether a cancel was asked for while a worker ran it.
 */
export interface TaskRecord extends TaskInfo {
  /** Set by `TASK.cancel` on a running task; the worker stops at its next checkpoint. */
  cancel_requested?: boolean;
  /** The token of the attempt that holds a running task ({@link AttemptGuard}). */
  run?: string;
  /**
   * Until when (ms since the epoch) the start that created a queued task holds its user's slot
   * without its job in the queue: the start may still be queueing it. Past it (or 0: the start
   * failed and gave the slot back) the task counts only while its job is in the queue
   * ({@link holdsOpenSlot}). Unset (tasks created before it existed): it counts while queued.
   */
  start_hold_until?: number;
}

/** Fields a transition sets; `null` removes a field (a stale `message`, say). */
export type TaskPatch = { [K in keyof TaskRecord]?: TaskRecord[K] | null };

/** Outcome of {@link TaskStore.transition}. */
export interface TransitionResult {
  /** False when the task was missing or not in one of the `from` statuses; nothing changed. */
  ok: boolean;
  /** The record after the call (changed or not); undefined when there is none. */
  record: TaskRecord | undefined;
}

/**
 * A condition on the attempt that makes a change, which fences a worker whose job was taken
 * from it: when a job's lock lapsed (Redis away longer than TASK_LOCK_MS, a frozen worker)
 * the queue starts the job again while the first attempt may still be running. The later
 * attempt's claim writes its own `run` token, and from then on every step of the earlier
 * one fails, so it ends nothing and publishes nothing more (a step it wrote before may still
 * publish late: the runner then tells the end of the task again, see `runTask`).
 */
export interface AttemptGuard {
  /**
   * A claim by the attempt with this number (1 for the first start of the job, one more
   * for every start after it): applies while no attempt with this number or a later one
   * holds the task (its stored `attempts` is below it).
   */
  claimByAttempt?: number;
  /** A step: applies only while the attempt whose claim wrote this `run` token holds the task. */
  run?: string;
}

/** What {@link TaskStore.create} checks before it creates a task. */
export interface TaskCreateLimits {
  /**
   * Most tasks the record's user may have open (running, or queued and counted by
   * {@link holdsOpenSlot}, their records not expired) when this one is created; past it,
   * {@link OpenTaskLimitError}. Unset or 0: no limit.
   */
  maxOpenPerUser?: number;
}

/** What {@link TaskStore.create} did. */
export interface TaskCreateResult {
  /** The stored record (the new one, or the one that existed, as it is now). */
  record: TaskRecord;
  /** Whether the task is new. */
  created: boolean;
  /**
   * Whether the task existed, queued without counting (its start failed), and this create took
   * a slot for it again: its `start_hold_until` is the given record's now. A start that fails
   * after that gives the slot back as a new task's start does.
   */
  rearmed: boolean;
}

/**
 * {@link TaskStore.create} refused a new task: its user has `open` tasks queued or running,
 * at least `max`. Nothing was written.
 */
export class OpenTaskLimitError extends Error {
  override readonly name = 'OpenTaskLimitError';
  constructor(
    readonly userId: string,
    readonly open: number,
    readonly max: number,
  ) {
    super(`user ${userId} has ${open} open tasks; the maximum is ${max}`);
  }
}

/** Statuses after which a task never changes again. */
export const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

/** Whether `status` is final. */
export const isFinal = (status: TaskStatus): boolean => FINAL_STATUSES.includes(status);

/**
 * Task snapshots, shared by whoever starts, runs or cancels a task. Every change is a
 * compare-and-set on the status, so a gateway cancelling a queued task and a worker
 * claiming it cannot both win, and only the winner publishes the matching event; that is
 * what keeps each task's events in order. Progress never goes down (a retried job
 * resumes its reports from where the lost attempt left them). Records expire `ttlMs`
 * after their last change.
 */
export interface TaskStore {
  /**
   * Stores `record` unless the task exists; returns the stored one and whether it is new. With
   * `limits.maxOpenPerUser`, a new task is created only while its user has fewer open tasks
   * (checked and created in one step, so concurrent creates cannot overshoot), else it throws
   * {@link OpenTaskLimitError}. An existing task is returned unchanged, whatever the count, but
   * one: with a limit, a task of the same user that is queued and does not count (its start's
   * hold passed, no job in the queue: its start failed) is started again, so it is counted as a
   * new task would be (past the limit, {@link OpenTaskLimitError} and nothing changed), else
   * its hold becomes `record.start_hold_until` (`rearmed`), in the same step. A task stops
   * counting once it is final or its record expired, whoever ended it, and while it is queued
   * with its start's hold passed and no job in the queue ({@link holdsOpenSlot}). The store
   * forgets such a task for counting when its hold was given back (0), as nothing of its
   * start is on its way to the queue; it keeps one whose hold ran out, as its start may still
   * be queueing its job. A start of it again (`rearmed`) counts it again either way.
   */
  create(record: TaskRecord, limits?: TaskCreateLimits): Promise<TaskCreateResult>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** Applies `patch` when the task's status is one of `from` (and `guard` holds, when given). */
  transition(
    taskId: string,
    from: readonly TaskStatus[],
    patch: TaskPatch,
    guard?: AttemptGuard,
  ): Promise<TransitionResult>;
  close(): Promise<void>;
}

/**
 * Whether a task takes one of its user's open-task slots (TASK_MAX_OPEN_PER_USER), as every store
 * counts: running, or queued while the start that created it may still be queueing its job
 * (`start_hold_until` unset or later than `now`) or while its job is in the queue (`hasJob`). So
 * a start that failed after creating its task stops counting once it gave the slot back, or once
 * its hold has passed when it could not, unless its job did reach the queue (the answer was lost
 * on the way back): that one runs, and counts until it ends, like any task.
 */
export function holdsOpenSlot(record: TaskRecord, now: number, hasJob: (queueJobId: string) => boolean): boolean {
  if (record.status === 'running') return true;
  if (record.status !== 'queued') return false;
  if (record.start_hold_until === undefined || record.start_hold_until > now) return true;
  return record.queue_job_id !== undefined && hasJob(record.queue_job_id);
}

/** Whether `guard` lets an attempt change `record` (every store decides the same way). */
export function attemptGuardHolds(record: TaskRecord, guard: AttemptGuard | undefined): boolean {
  if (guard?.claimByAttempt !== undefined && (record.attempts ?? 0) >= guard.claimByAttempt) return false;
  if (guard?.run !== undefined && record.run !== guard.run) return false;
  return true;
}

/** Applies a patch the way every store does: `null` deletes, progress never decreases. */
export function applyTaskPatch(record: TaskRecord, patch: TaskPatch): TaskRecord {
  const next: Record<string, unknown> = { ...record };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  if (typeof patch.progress === 'number') next.progress = Math.max(record.progress, patch.progress);
  return next as unknown as TaskRecord;
}
