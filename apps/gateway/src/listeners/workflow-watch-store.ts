/**
 * Port: the jobs each user watches with WORKFLOW.watch, shared by the fleet. Any
 * instance with a session of the user writes it; the instance holding the user's
 * lease reads it and keeps one workflow listener per job. Implementations:
 * {@link MemoryWorkflowWatchStore} and
 * {@link import('./redis-workflow-watch-store').RedisWorkflowWatchStore}.
 */
export interface WorkflowWatchStore {
  /**
   * Adds a watch (watching twice keeps one). False, adding nothing, for a new job of a user who
   * watches `max` jobs already (checked and written atomically); a job already watched is always
   * taken again. @param max 0: unbounded. @default unbounded
   */
  add(userId: string, jobId: string, max?: number): Promise<boolean>;
  /** Removes a watch; false when it was not watched. */
  remove(userId: string, jobId: string): Promise<boolean>;
  /** The user's watched jobs. */
  list(userId: string): Promise<string[]>;
  /** Forgets every watch of the user (they left the fleet). */
  clear(userId: string): Promise<void>;
}

/** The embedded default: watches in this process. */
export class MemoryWorkflowWatchStore implements WorkflowWatchStore {
  readonly #watches = new Map<string, Set<string>>();

  async add(userId: string, jobId: string, max = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    const jobs = this.#watches.get(userId) ?? new Set<string>();
    if (max > 0 && !jobs.has(jobId) && jobs.size >= max) return false;
    jobs.add(jobId);
    this.#watches.set(userId, jobs);
    return true;
  }

  async remove(userId: string, jobId: string): Promise<boolean> {
    const jobs = this.#watches.get(userId);
    const removed = jobs?.delete(jobId) ?? false;
    if (jobs?.size === 0) this.#watches.delete(userId);
    return removed;
  }

  async list(userId: string): Promise<string[]> {
    return [...(this.#watches.get(userId) ?? [])];
  }

  async clear(userId: string): Promise<void> {
    this.#watches.delete(userId);
  }
}
