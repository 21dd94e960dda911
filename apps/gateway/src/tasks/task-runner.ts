import { randomUUID } from 'node:crypto';
import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { type AnalysisProgress, analyseDocument, type DocumentAnalysisOptions } from './analysis/document-analysis';
import { TaskCancelledError, TaskFailure, TaskHandBackError } from './task-failure';
import type { TaskJobData } from './task-queue';
import { isFinal, type TaskPatch, type TaskRecord, type TaskStore } from './task-store';

/** How a run ended, for metrics and for the queue (retry or not). */
export type TaskRunOutcome = 'completed' | 'failed' | 'cancelled' | 'skipped';

/** What {@link runTask} needs from whoever runs it (the in-process queue, or a worker process). */
export interface TaskRunnerDeps {
  store: TaskStore;
  /** Publishes to the user's sessions (the gateway's bus, or `@livebus/publisher` in a worker). */
  publish: (userId: string, event: AppEvent) => Promise<unknown>;
  analysis?: Omit<DocumentAnalysisOptions, 'checkpoint'>;
  now?: () => Date;
}

/** One attempt at a job. */
export interface TaskAttempt {
  /** 1 for the first start; more after a retry or a lost worker. */
  attempt: number;
  /** No retry follows a transient failure of this attempt. */
  last: boolean;
  /** Aborted when the worker shuts down: the job is handed back at the next checkpoint. */
  signal?: AbortSignal;
  /**
   * Aborted when this attempt lost its job (its lock lapsed while Redis was away or the
   * worker froze; the queue starts the job again): it stops at the next checkpoint and
   * changes nothing more.
   */
  lost?: AbortSignal;
}

/**
 * Runs one attempt at a task: claims it (queued or running to running; an attempt after a
 * lost worker claims it from running, unless a later attempt holds it), runs the analysis,
 * and ends it as completed, failed or cancelled. Every change is written to the store before its event is published,
 * and a step whose compare-and-set fails publishes nothing, so a task's events stay in
 * order whoever writes them. An overtaken attempt's step written before it was fenced may still
 * publish late, after the later attempt's end: each step's publish is followed by a re-read, and
 * a task another run ended is told again then, so its last event is its end. Throws (so the queue retries) only for a transient error on
 * an attempt that is not the last, {@link TaskHandBackError} when `signal` aborts, and the
 * publish's error when the final event could not be published, by the attempt that ended the
 * task or by a later one that found it ended (on any attempt: the attempt the queue runs next
 * publishes that event again, and after the last the queue's given-up handler,
 * {@link failAbandonedTask}, does).
 */
export async function runTask(deps: TaskRunnerDeps, job: TaskJobData, attempt: TaskAttempt): Promise<TaskRunOutcome> {
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const publish = (record: TaskRecord) => deps.publish(record.user_id, progressEvent(record));

  // A job of an earlier run of the task (queued before its record expired, the workers away
  // that long): the record is another run's now, whose own job runs it.
  if (job.queue_job_id !== undefined) {
    const current = await deps.store.get(job.task_id);
    if (current?.queue_job_id !== undefined && current.queue_job_id !== job.queue_job_id) return 'skipped';
  }
  // Every later change is this attempt's only while it holds the task: an attempt whose job
  // was started again (a lost lock) stops at its next step, silently.
  const holds = { run: randomUUID() };
  /**
   * A step's event (the claim's `running`, each checkpoint's progress), then the task re-read: ended
   * by another run meanwhile (this attempt was overtaken, and its event may have landed after that
   * run's final one), its end is told again after it. One store read per step.
   */
  const publishStep = async (step: TaskRecord) => {
    await publish(step);
    const current = await deps.store.get(job.task_id);
    if (current && current.run !== holds.run && isFinal(current.status)) await publish(current);
  };
  const claimed = await deps.store.transition(
    job.task_id,
    ['queued', 'running'],
    {
      status: 'running',
      attempts: attempt.attempt,
      run: holds.run,
      message: attempt.attempt > 1 ? `started again (attempt ${attempt.attempt})` : 'started',
      updated_at: now(),
    },
    { claimByAttempt: attempt.attempt },
  );
  // Gone (expired), already final (cancelled while queued, or finished by an earlier
  // attempt), or held by a later attempt.
  if (!claimed.ok || !claimed.record) {
    if (claimed.record && endedEarlier(claimed.record, attempt.attempt)) {
      // Its final event may never have gone out: tell the user again (a second copy at worst). A
      // failure throws, also on the last attempt: the queue then gives the job up, and its
      // given-up handler ({@link failAbandonedTask}) tells it.
      await publish(claimed.record);
    }
    return 'skipped';
  }
  let record = claimed.record;

  /** The error of a final event not published: the task is over, the queue runs the job again to tell. */
  let unannounced: unknown;
  const end = async (patch: TaskPatch, outcome: TaskRunOutcome): Promise<TaskRunOutcome> => {
    const ended = await deps.store.transition(
      job.task_id,
      ['running'],
      { ...patch, run: null, updated_at: now() },
      holds,
    );
    if (!ended.ok || !ended.record) return 'skipped';
    try {
      await publish(ended.record);
    } catch (error) {
      unannounced = error;
      throw error;
    }
    return outcome;
  };

  try {
    if (record.cancel_requested) throw new TaskCancelledError('cancel requested before this attempt');
    await publishStep(record);
    const result = await analyseDocument(job.content, {
      ...deps.analysis,
      checkpoint: async (p: AnalysisProgress) => {
        if (attempt.lost?.aborted) throw new TaskCancelledError('this attempt lost its job to a later one');
        if (attempt.signal?.aborted) throw new TaskHandBackError('the worker is shutting down');
        const step = await deps.store.transition(
          job.task_id,
          ['running'],
          { progress: p.progress, message: p.message, updated_at: now() },
          holds,
        );
        // No longer running, or taken over by a later attempt: `end` then changes nothing either.
        if (!step.ok || !step.record) throw new TaskCancelledError('the task is no longer running');
        if (step.record.cancel_requested) throw new TaskCancelledError('cancel requested');
        record = step.record;
        await publishStep(record);
      },
    });
    return await end(
      { status: 'completed', progress: 100, message: 'analysis complete', result: result as never },
      'completed',
    );
  } catch (error) {
    if (error instanceof TaskHandBackError || error === unannounced) throw error;
    if (attempt.lost?.aborted) return 'skipped';
    if (error instanceof TaskCancelledError) return end({ status: 'cancelled', message: 'cancelled' }, 'cancelled');
    if (error instanceof TaskFailure) {
      return end({ status: 'failed', message: 'failed', error: error.message, error_code: error.code }, 'failed');
    }
    if (!attempt.last) throw error;
    const message = error instanceof Error ? error.message : String(error);
    return end(
      {
        status: 'failed',
        message: 'failed',
        error: `failed after ${attempt.attempt} attempt(s): ${message}`,
        error_code: 'attempts_exhausted',
      },
      'failed',
    );
  }
}

/** The `task.progress_update` event for a record: its status, progress, message, result or error. */
export function progressEvent(record: TaskRecord): AppEvent {
  const data: TaskProgressUpdate = { task_id: record.task_id, status: record.status, progress: record.progress };
  if (record.message !== undefined) data.message = record.message;
  if (record.status === 'completed' && record.result !== undefined) data.result = record.result;
  if (record.status === 'failed') {
    if (record.error !== undefined) data.error = record.error;
    if (record.error_code !== undefined) data.error_code = record.error_code;
  }
  return { event: 'task.progress_update', data };
}

/** The waits between tries to end and announce a given-up job's task (about 2 min in all, while the process lives). */
export const ABANDON_RETRY_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 60_000];

/** How {@link failAbandonedTask} retries a step that failed (Redis away, the outbox full). */
export interface AbandonRetry {
  /** The waits before each retry; once spent, the last error is thrown. @default none (no retry) */
  delaysMs?: readonly number[];
  /** Told of each failure that is retried. */
  onError?: (error: unknown) => void;
  /** Aborted (its worker closing): no retry follows, and a wait ends at once; the last error is thrown. */
  signal?: AbortSignal;
}

/**
 * Ends a task whose job the queue gave up on outside {@link runTask} (a job that lost its
 * worker more often than allowed): failed with `attempts_exhausted`, so its user hears the end.
 * A task an attempt ended already has its final event published again (true only when this ended it).
 * Nothing runs the job again to tell (it was removed as it failed): each step is retried as `retry` says.
 */
export async function failAbandonedTask(
  deps: TaskRunnerDeps,
  taskId: string,
  reason: string,
  retry: AbandonRetry = {},
): Promise<boolean> {
  const ended = await retrying(
    () =>
      deps.store.transition(taskId, ['queued', 'running'], {
        status: 'failed',
        message: 'failed',
        error: reason,
        error_code: 'attempts_exhausted',
        run: null,
        updated_at: (deps.now?.() ?? new Date()).toISOString(),
      }),
    retry,
  );
  // Else ended by an attempt whose final event may not have gone out (its publish failed on the last attempt).
  const tell =
    ended.ok || (ended.record && endedEarlier(ended.record, Number.POSITIVE_INFINITY)) ? ended.record : undefined;
  if (tell) await retrying(() => deps.publish(tell.user_id, progressEvent(tell)), retry);
  return ended.ok && ended.record !== undefined;
}

/**
 * Runs `op`, again after each of `retry.delaysMs` while it fails and `retry.signal` is not aborted
 * (timers that do not hold the process).
 */
async function retrying<T>(op: () => Promise<T>, retry: AbandonRetry): Promise<T> {
  for (const delayMs of [...(retry.delaysMs ?? []), undefined]) {
    try {
      return await op();
    } catch (error) {
      if (delayMs === undefined || retry.signal?.aborted) throw error;
      retry.onError?.(error);
      if (!(await pause(delayMs, retry.signal))) throw error;
    }
  }
  throw new Error('unreachable');
}

/** Waits `ms` (a timer that does not hold the process): true, or false as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const stop = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * Whether a task an attempt could not claim was ended by an earlier attempt of its job (one
 * that claimed it: not a task cancelled while queued, whose cancel told the user). Its final
 * event may not have gone out: that attempt's publish failed (it threw, so the queue ran the
 * job again) or its worker was lost in between.
 */
function endedEarlier(record: TaskRecord, attempt: number): boolean {
  const attempts = record.attempts ?? 0;
  return isFinal(record.status) && attempts >= 1 && attempts < attempt;
}
