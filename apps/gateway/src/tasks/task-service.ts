import { type AppEvent, RpcErrorCode, type RpcResult, type TaskInfo } from '@livebus/protocol';
import type { Principal } from '../auth/authenticator';
import { checkLimitOption } from '../rpc/limit-option';
import { RpcError } from '../rpc/rpc-error';
import { storeFailure } from '../rpc/store-failure';
import { MAX_OPEN_PER_USER_BOUND } from './task-defaults';
import type { TaskQueue } from './task-queue';
import { progressEvent } from './task-runner';
import { isFinal, OpenTaskLimitError, type TaskRecord, type TransitionResult } from './task-store';

/** Options of {@link TaskService}. */
export interface TaskServiceOptions {
  queue: TaskQueue;
  /** Publishes through the gateway's bus (the `queued` and cancelled-while-queued events). */
  publish: (userId: string, event: AppEvent) => Promise<unknown>;
  /** Largest document `TASK.start_document_analysis` accepts, in UTF-8 bytes. */
  maxDocumentBytes: number;
  /**
   * Tasks one user may have queued or running at once (TASK_MAX_OPEN_PER_USER): a start of a
   * new task past it answers `rate_limited`. Counted in the task store, atomically with the
   * task's creation, so it holds across the fleet. 0 or unset: no limit.
   */
  maxOpenPerUser?: number;
  /**
   * Jobs the queue may hold not yet running, waiting or delayed (TASK_MAX_QUEUED): a start of a
   * new task at or past it answers `unavailable` (a start of a task that exists is answered as
   * ever). Read from {@link TaskQueue.depth} before the task is created, so starts in flight at
   * once across the fleet may each pass it. 0 or unset: no limit.
   */
  maxQueued?: number;
  /**
   * How long `TASK.cancel` waits for a running task's worker to stop before it answers
   * with the task still `running` (the `cancelled` event follows). @default 3_000
   */
  cancelWaitMs?: number;
  /**
   * How long a start holds its new task's open-task slot before its job is in the queue
   * (`holdsOpenSlot` in task-store.ts): a start that failed part-way and could not give the slot back (Redis
   * cut) frees it this long after it began, unless its job did reach the queue. Longer than any
   * start takes. @default START_HOLD_MS (60 s)
   */
  startHoldMs?: number;
  now?: () => Date;
}

/** How long a start holds its new task's slot before its job is in the queue, by default. */
export const START_HOLD_MS = 60_000;

/** The task prefix the legacy callers expect: `doc_analysis_<job_id>`. */
export const DOC_ANALYSIS_PREFIX = 'doc_analysis_';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `TASK.*` behind the RPC handlers: starts a task at most once per job id, reads and
 * cancels it for its owner (or a service caller). The queue runs it; this never waits
 * for a job, except briefly for a running task to acknowledge a cancel.
 */
export class TaskService {
  readonly #o: TaskServiceOptions;

  constructor(options: TaskServiceOptions) {
    checkLimitOption('maxOpenPerUser (TASK_MAX_OPEN_PER_USER)', options.maxOpenPerUser, {
      max: MAX_OPEN_PER_USER_BOUND,
    });
    checkLimitOption('maxQueued (TASK_MAX_QUEUED)', options.maxQueued);
    this.#o = options;
  }

  /** `TASK.start_document_analysis`. */
  async startDocumentAnalysis(
    principal: Principal,
    userId: string,
    content: string,
    jobId: string,
  ): Promise<RpcResult<'TASK.start_document_analysis'>> {
    const bytes = Buffer.byteLength(content, 'utf8');
    if (bytes > this.#o.maxDocumentBytes) {
      const message = `the document is ${bytes} bytes; the maximum is ${this.#o.maxDocumentBytes} (TASK_MAX_DOCUMENT_BYTES)`;
      // `issues`, as every invalid_params carries (the path counted from the first argument).
      throw new RpcError(RpcErrorCode.InvalidParams, message, {
        data: { issues: [{ path: '1.content', message }], max_bytes: this.#o.maxDocumentBytes, bytes },
      });
    }
    const { queue } = this.#o;
    const taskId = `${DOC_ANALYSIS_PREFIX}${jobId}`;
    // The queue's depth bounds new tasks only: a start of a task that exists (answered `existing`,
    // and how a start that failed part-way is completed) is never refused for a full queue.
    if ((this.#o.maxQueued ?? 0) > 0 && !(await unavailableOnError(() => queue.store.get(taskId)))) {
      await this.#checkQueueDepth();
    }
    const at = this.#now();
    const queueJobId = queue.queueJobId(taskId, at);
    const { record, created, rearmed } = await unavailableOnError(() =>
      queue.store
        .create(
          {
            task_id: taskId,
            user_id: userId,
            job_id: jobId,
            status: 'queued',
            progress: 0,
            message: 'queued',
            created_at: at,
            updated_at: at,
            queue_job_id: queueJobId,
            attempts: 0,
            start_hold_until: Date.parse(at) + (this.#o.startHoldMs ?? START_HOLD_MS),
          },
          { maxOpenPerUser: this.#o.maxOpenPerUser ?? 0 },
        )
        .catch(tooManyOpen),
    );
    if (!created && record.user_id !== userId) {
      this.#authorize(principal, record);
      throw new RpcError(RpcErrorCode.Forbidden, `job id ${jobId} was started for another user`);
    }
    // Its hold stays once its job is queued: the task counts while its job is in the queue anyway.
    let latest: TaskRecord;
    try {
      latest = await this.#publishAndEnqueue(record, created, content, queueJobId);
    } catch (error) {
      // The slot this start took (a new task's, or a failed one's taken again) is given back (the
      // task stays queued: a start of it again completes it). It still counts while its job is in
      // the queue: an enqueue whose answer was lost may have queued it. Redis away, this fails
      // too, and the slot is free once the hold passed.
      if (created || rearmed) {
        await queue.store.transition(taskId, ['queued'], { start_hold_until: 0 }).catch(() => {});
      }
      throw error;
    }
    return {
      success: true,
      task_id: taskId,
      job_id: jobId,
      status: latest.status,
      created_at: latest.created_at,
      queue_job_id: latest.queue_job_id ?? queueJobId,
      celery_task_id: latest.queue_job_id ?? queueJobId,
      ...(created ? {} : { existing: true }),
    };
  }

  /**
   * Publishes a queued task's `queued` event unless its job is in the queue, then queues the job
   * (also of a task that existed: a start whose enqueue failed is completed by its retry). A start
   * of a task whose job is not queued tells it too: its creator's may never have gone out (that
   * start failed or died before it), and the user would hear nothing until a worker takes the job
   * (a second `queued` at worst). A start of a task no longer queued tells the state it reads: an
   * earlier start that failed telling it may have left its stale `queued` last (a second copy at
   * worst). Returns the latest record it read.
   */
  async #publishAndEnqueue(
    record: TaskRecord,
    created: boolean,
    content: string,
    queueJobId: string,
  ): Promise<TaskRecord> {
    if (record.status !== 'queued') return this.#tell(record);
    const runId = record.queue_job_id ?? queueJobId;
    const latest = created || !(await this.#inQueue(runId)) ? await this.#tell(record) : record;
    // Ended or running meanwhile (a cancel, another start's job): nothing to queue.
    if (latest.status !== 'queued') return latest;
    await unavailableOnError(() =>
      this.#o.queue.enqueue({
        task_id: record.task_id,
        user_id: record.user_id,
        kind: 'document_analysis',
        content,
        // The run's id as the record has it (written by whichever start created the record).
        queue_job_id: runId,
      }),
    );
    return latest;
  }

  /**
   * Publishes the task's event as `record` has it (its `queued`, or the state a start of a task no
   * longer queued read), then {@link #lastEventCurrent} (also when the publish failed: it may have
   * gone out all the same). A `queued` is told before this start queues the job, so no worker of
   * its own can have moved the task on: only a race publishes more.
   */
  async #tell(record: TaskRecord): Promise<TaskRecord> {
    const failure = await unavailableOnError(() => this.#o.publish(record.user_id, progressEvent(record))).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    const latest = await this.#lastEventCurrent(record);
    if (failure) throw failure.error;
    return latest;
  }

  /**
   * Keeps the task's last event carrying its state once this start published `told` (its `queued`
   * or the state it read, from a record that may be stale by then): re-reads the task and, while
   * its status is not the one this start last published, publishes the record read. This suffices because every other writer
   * (a cancel, a worker) publishes its event after its own store write. A write before the re-read
   * is in the record read, published again here after this start's event; a write after it is
   * published after that re-read, so after this start's publish ended: its event lands later (a
   * user's events reach the stream in the order their publishes are made). The
   * re-read follows each publish here, not only the `queued`: a `running` published again could
   * otherwise land after the worker's `completed` written just after the read. Statuses only go
   * forward (queued, running, a final one), so this publishes at most twice. Progress may lag
   * behind (a `running` of an earlier step) until the worker's next event.
   */
  async #lastEventCurrent(told: TaskRecord): Promise<TaskRecord> {
    let last = told;
    for (;;) {
      const current = await unavailableOnError(() => this.#o.queue.store.get(told.task_id));
      if (!current || current.status === last.status) return current ?? last;
      await unavailableOnError(() => this.#o.publish(current.user_id, progressEvent(current)));
      last = current;
    }
  }

  /** Whether the queue holds this job (false when it cannot tell). */
  async #inQueue(queueJobId: string): Promise<boolean> {
    const { queue } = this.#o;
    if (!queue.hasJob) return false;
    return unavailableOnError(async () => queue.hasJob?.(queueJobId) ?? false);
  }

  /** `TASK.get_status`. */
  async getStatus(principal: Principal, taskId: string): Promise<TaskInfo> {
    const record = await this.#owned(principal, taskId);
    return toInfo(record);
  }

  /** `TASK.cancel`: a queued task ends at once; a running one at its worker's next checkpoint. */
  async cancel(principal: Principal, taskId: string): Promise<RpcResult<'TASK.cancel'>> {
    const { queue } = this.#o;
    let record = await this.#owned(principal, taskId);
    if (record.status === 'queued') {
      const dequeued = await this.#dequeue(taskId);
      if (dequeued.ok && dequeued.record) return cancelAnswer(dequeued.record, true);
      // A worker claimed it, or another cancel ended it, in between.
      record = dequeued.record ?? record;
    }
    const early = await this.#endedAnswer(record);
    if (early) return early;
    const requested = await unavailableOnError(() =>
      queue.store.transition(taskId, ['queued', 'running'], { cancel_requested: true, updated_at: this.#now() }),
    );
    if (!requested.ok) {
      const now = requested.record ?? record;
      return (await this.#endedAnswer(now)) ?? cancelAnswer(now, false);
    }
    // Bounded wait for the worker's acknowledgement, well within the RPC timeout.
    const deadline = Date.now() + (this.#o.cancelWaitMs ?? 3_000);
    while (Date.now() < deadline) {
      await sleep(50);
      record = (await unavailableOnError(() => queue.store.get(taskId))) ?? record;
      if (isFinal(record.status)) return cancelAnswer(record, record.status === 'cancelled');
    }
    return cancelAnswer(record, true);
  }

  /**
   * The answer to a cancel of a task that ended (undefined while it is open). Cancelled before it
   * ever ran: that cancel's event may not have gone out (its publish failed, it answered
   * `unavailable`), and no worker tells it: told again (a second copy at worst). Cancelled as a
   * cancel asked (a worker's claim or checkpoint honoured it): that request succeeded, also for a
   * cancel told to retry (`unavailable`) that is retried. Ended otherwise: `success: false`.
   */
  async #endedAnswer(record: TaskRecord): Promise<RpcResult<'TASK.cancel'> | undefined> {
    if (record.status === 'cancelled' && !record.attempts) {
      await this.#announceDequeued(record);
      return cancelAnswer(record, true);
    }
    if (record.status === 'cancelled' && record.cancel_requested) return cancelAnswer(record, true);
    return isFinal(record.status) ? cancelAnswer(record, false) : undefined;
  }

  /** Cancels a queued task: publishes `cancelled` and drops its job. */
  async #dequeue(taskId: string): Promise<TransitionResult> {
    const dequeued = await unavailableOnError(() =>
      this.#o.queue.store.transition(taskId, ['queued'], {
        status: 'cancelled',
        message: 'cancelled before it started',
        updated_at: this.#now(),
      }),
    );
    if (dequeued.ok && dequeued.record) await this.#announceDequeued(dequeued.record);
    return dequeued;
  }

  /** Drops a task's job, cancelled before it ran, and publishes its `cancelled` event. */
  async #announceDequeued(cancelled: TaskRecord): Promise<void> {
    await this.#o.queue.remove(cancelled.task_id, cancelled.queue_job_id).catch(() => {
      // A worker that picks it up anyway finds it cancelled and skips it.
    });
    await unavailableOnError(() => this.#o.publish(cancelled.user_id, progressEvent(cancelled)));
  }

  /** Refuses a new task while the queue holds `maxQueued` jobs not yet running (checked before anything is written). */
  async #checkQueueDepth(): Promise<void> {
    const max = this.#o.maxQueued ?? 0;
    if (max <= 0) return;
    const depth = await unavailableOnError(() => this.#o.queue.depth());
    const queued = depth.waiting + depth.delayed;
    if (queued < max) return;
    throw new RpcError(
      RpcErrorCode.Unavailable,
      `the task queue is full: ${queued} tasks are waiting, the maximum is ${max} (TASK_MAX_QUEUED); retry later`,
      { data: { queued, max_queued: max } },
    );
  }

  async #owned(principal: Principal, taskId: string): Promise<TaskRecord> {
    const record = await unavailableOnError(() => this.#o.queue.store.get(taskId));
    if (!record) throw new RpcError(RpcErrorCode.NotFound, `no task ${taskId} (unknown, or expired)`);
    this.#authorize(principal, record);
    return record;
  }

  #authorize(principal: Principal, record: TaskRecord): void {
    if (!principal.service && principal.uid !== record.user_id) {
      throw new RpcError(RpcErrorCode.Forbidden, 'you may only see and cancel your own tasks');
    }
  }

  #now(): string {
    return (this.#o.now?.() ?? new Date()).toISOString();
  }
}

/** `TASK.cancel`'s answer for the task as `record` has it. */
function cancelAnswer(record: TaskRecord, success: boolean): RpcResult<'TASK.cancel'> {
  return { success, task_id: record.task_id, status: record.status };
}

/** The wire snapshot: the record without internal fields, with the Celery alias. */
function toInfo(record: TaskRecord): TaskInfo {
  const { cancel_requested: _, run: __, start_hold_until: ___, ...info } = record;
  return info.queue_job_id ? { ...info, celery_task_id: info.queue_job_id } : info;
}

/**
 * A store's refusal of a user's task past TASK_MAX_OPEN_PER_USER as the caller hears it:
 * `rate_limited` (HTTP 429), "you have too many; retry once one ended", with the counts in `data`.
 */
function tooManyOpen(error: unknown): never {
  if (!(error instanceof OpenTaskLimitError)) throw error;
  throw new RpcError(
    RpcErrorCode.RateLimited,
    `user ${error.userId} has ${error.open} tasks queued or running; the maximum is ${error.max} ` +
      '(TASK_MAX_OPEN_PER_USER): start more once one has ended, or cancel one',
    { data: { open: error.open, max_open: error.max } },
  );
}

/** Redis away or failing over is `unavailable`, which callers may retry; a refusal is `internal`. */
async function unavailableOnError<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw storeFailure(error, 'the task queue');
  }
}
