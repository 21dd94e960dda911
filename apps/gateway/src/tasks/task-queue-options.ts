import type { Logger } from '../logger';
import { taskDefaults } from './task-defaults';
import type { TaskRunnerDeps, TaskRunOutcome } from './task-runner';

/** What running jobs needs, whichever queue runs them. */
export interface TaskWorkOptions {
  runner: TaskRunnerDeps;
  logger: Logger;
  /** Jobs run at once by one worker (WORKER_CONCURRENCY). @default taskDefaults.concurrency (2) */
  concurrency?: number;
  /** Starts of a job before a transient failure is final (TASK_ATTEMPTS). @default taskDefaults.attempts (3) */
  attempts?: number;
  /** First retry delay, doubled for each further retry (TASK_BACKOFF_MS). @default taskDefaults.backoffMs (1 s) */
  backoffMs?: number;
  /** Called when a run ends, for the outcome counter and duration histogram. */
  observe?: (outcome: TaskRunOutcome | 'retried' | 'handed_back', seconds: number) => void;
}

/** Defaults of {@link TaskWorkOptions}. */
export const taskWorkDefaults = {
  concurrency: taskDefaults.concurrency,
  attempts: taskDefaults.attempts,
  backoffMs: taskDefaults.backoffMs,
} as const;
