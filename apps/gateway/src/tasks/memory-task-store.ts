import type { TaskStatus } from '@livebus/protocol';
import { checkLimitOption } from '../rpc/limit-option';
import { taskDefaults } from './task-defaults';
import {
  type AttemptGuard,
  applyTaskPatch,
  attemptGuardHolds,
  holdsOpenSlot,
  isFinal,
  OpenTaskLimitError,
  type TaskCreateLimits,
  type TaskCreateResult,
  type TaskPatch,
  type TaskRecord,
  type TaskStore,
  type TransitionResult,
} from './task-store';

/** Options of {@link MemoryTaskStore}. */
export interface MemoryTaskStoreOptions {
  /** How long a record lives after its last change. @default taskDefaults.ttlS × 1000 (1 day) */
  ttlMs?: number;
  now?: () => number;
  /**
   * Whether the queue holds the job with this id (waiting, delayed or running): a queued task
   * whose start's hold passed counts against its user's limit only then ({@link holdsOpenSlot}).
   * @default none is held
   */
  hasJob?: (queueJobId: string) => boolean;
}

/** The embedded task store: one process, records dropped `ttlMs` after their last change. */
export class MemoryTaskStore implements TaskStore {
  readonly #records = new Map<string, { record: TaskRecord; expiresAt: number }>();
  /** Per user, the tasks created for them that may still be open (pruned by state at each create). */
  readonly #open = new Map<string, Set<string>>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #hasJob: (queueJobId: string) => boolean;

  constructor(options: MemoryTaskStoreOptions = {}) {
    this.#ttlMs = options.ttlMs ?? taskDefaults.ttlS * 1000;
    this.#now = options.now ?? Date.now;
    this.#hasJob = options.hasJob ?? (() => false);
  }

  async create(record: TaskRecord, limits: TaskCreateLimits = {}): Promise<TaskCreateResult> {
    checkLimitOption('maxOpenPerUser', limits.maxOpenPerUser);
    this.#sweep();
    const max = limits.maxOpenPerUser ?? 0;
    const now = this.#now();
    const existing = this.#live(record.task_id);
    if (existing) {
      // As in Redis: the user's queued task that does not count (its start failed), started again
      // with a limit, takes a slot again as a new task would, or is refused.
      const again =
        max > 0 &&
        existing.user_id === record.user_id &&
        existing.status === 'queued' &&
        existing.start_hold_until !== undefined &&
        !holdsOpenSlot(existing, now, this.#hasJob);
      if (!again) return { record: structuredClone(existing), created: false, rearmed: false };
      this.#checkOpen(record.user_id, max, now);
      const next = applyTaskPatch(existing, { start_hold_until: record.start_hold_until ?? null });
      this.#put(next);
      this.#openOf(record.user_id).add(record.task_id);
      return { record: structuredClone(next), created: false, rearmed: true };
    }
    if (max > 0) this.#checkOpen(record.user_id, max, now);
    this.#put(record);
    // As in Redis: only counted tasks are kept (with no limit the set would only grow).
    if (max > 0) this.#openOf(record.user_id).add(record.task_id);
    return { record: structuredClone(record), created: true, rearmed: false };
  }

  /** The ids kept for counting the user's open tasks (tests and diagnostics). */
  openTaskIds(userId: string): string[] {
    return [...(this.#open.get(userId) ?? [])];
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const record = this.#live(taskId);
    return record && structuredClone(record);
  }

  async transition(
    taskId: string,
    from: readonly TaskStatus[],
    patch: TaskPatch,
    guard?: AttemptGuard,
  ): Promise<TransitionResult> {
    const current = this.#live(taskId);
    if (!current || !from.includes(current.status) || !attemptGuardHolds(current, guard)) {
      return { ok: false, record: current && structuredClone(current) };
    }
    const next = applyTaskPatch(current, patch);
    this.#put(next);
    return { ok: true, record: structuredClone(next) };
  }

  async close(): Promise<void> {}

  #put(record: TaskRecord): void {
    this.#records.set(record.task_id, { record, expiresAt: this.#now() + this.#ttlMs });
  }

  #live(taskId: string): TaskRecord | undefined {
    const entry = this.#records.get(taskId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#records.delete(taskId);
      return undefined;
    }
    return entry.record;
  }

  /** Throws {@link OpenTaskLimitError} when the user has `max` open tasks, pruning their set as it counts. */
  #checkOpen(userId: string, max: number, now: number): void {
    const open = this.#openOf(userId);
    let count = 0;
    for (const taskId of open) {
      const r = this.#live(taskId) as TaskRecord;
      if (holdsOpenSlot(r, now, this.#hasJob)) count += 1;
      // As in Redis: a start that gave its slot back has nothing on its way to the queue.
      else if (r.start_hold_until === 0) open.delete(taskId);
    }
    if (count >= max) throw new OpenTaskLimitError(userId, count, max);
  }

  /**
   * The user's tasks that may still be open: those queued or running (and of this user), the
   * others dropped. Not all of them count ({@link holdsOpenSlot}).
   */
  #openOf(userId: string): Set<string> {
    const open = this.#open.get(userId) ?? new Set<string>();
    for (const taskId of open) {
      const r = this.#live(taskId);
      if (!r || r.user_id !== userId || isFinal(r.status)) open.delete(taskId);
    }
    this.#open.set(userId, open);
    return open;
  }

  // Expired records would otherwise stay until read again; creation is when memory grows.
  #sweep(): void {
    const now = this.#now();
    for (const [id, entry] of this.#records) if (entry.expiresAt <= now) this.#records.delete(id);
    for (const [userId, open] of this.#open) {
      for (const taskId of open) if (!this.#records.has(taskId)) open.delete(taskId);
      if (open.size === 0) this.#open.delete(userId);
    }
  }
}
