import type { TaskInfo, TaskStatus } from '@livebus/protocol';

/**
 * What the store keeps per task: the `TASK.get_status` snapshot (its last progress update,
 * owner and times) and whether a cancel was asked for while a worker ran it.
 */
export interface TaskRecord extends TaskInfo {
  /** Set by `TASK.cancel` on a running task; the worker stops at its next checkpoint. */
  cancel_requested?: boolean;
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
  readonly kind: 'memory' | 'redis';
  /** Stores `record` unless the task exists; returns the stored one and whether it is new. */
  create(record: TaskRecord): Promise<{ record: TaskRecord; created: boolean }>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** Applies `patch` when the task's status is one of `from`. */
  transition(taskId: string, from: readonly TaskStatus[], patch: TaskPatch): Promise<TransitionResult>;
  close(): Promise<void>;
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
