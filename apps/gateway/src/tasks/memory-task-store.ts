import type { TaskStatus } from '@livebus/protocol';
import { taskDefaults } from './task-defaults';
import {
  type AttemptGuard,
  applyTaskPatch,
  attemptGuardHolds,
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
}

/** The embedded task store: one process, records dropped `ttlMs` after their last change. */
export class MemoryTaskStore implements TaskStore {
  readonly #records = new Map<string, { record: TaskRecord; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: MemoryTaskStoreOptions = {}) {
    this.#ttlMs = options.ttlMs ?? taskDefaults.ttlS * 1000;
    this.#now = options.now ?? Date.now;
  }

  async create(record: TaskRecord): Promise<{ record: TaskRecord; created: boolean }> {
    this.#sweep();
    const existing = this.#live(record.task_id);
    if (existing) return { record: structuredClone(existing), created: false };
    this.#put(record);
    return { record: structuredClone(record), created: true };
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

  // Expired records would otherwise stay until read again; creation is when memory grows.
  #sweep(): void {
    const now = this.#now();
    for (const [id, entry] of this.#records) if (entry.expiresAt <= now) this.#records.delete(id);
  }
}
