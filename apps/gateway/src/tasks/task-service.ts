import { type AppEvent, RpcErrorCode, type RpcResult, type TaskInfo } from '@livebus/protocol';
import type { Principal } from '../auth/authenticator';
import { checkLimitOption } from '../rpc/limit-option';
import { RpcError } from '../rpc/rpc-error';
import { storeFailure } from '../rpc/store-failure';
import { MAX_OPEN_PER_USER_BOUND } from './task-defaults';
import type { TaskQueue } from './task-queue';
import { progressEvent } from './task-runner';
import { isFinal, OpenTaskLimitError, type TaskRecord } from './task-store';

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
   * How long a start of a task that another start is still creating waits for that start to end
   * (its `queued` event first) before it answers `unavailable`. @default 3_000
   */
  startWaitMs?: number;
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
    const current = created || rearmed ? record : await this.#afterOtherStart(record);
    try {
      await this.#publishAndEnqueue(current, created, content, queueJobId);
      // Its `queued` event is out and its job queued: a start of it again may queue it too (a no-op).
      // Gateways of the version before this read the hold only (not the queue): they wait on it till then.
      if (created || rearmed) {
        await queue.store.transition(taskId, ['queued'], { start_hold_until: 0 }).catch(() => {});
      }
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
      status: record.status,
      created_at: record.created_at,
      queue_job_id: record.queue_job_id ?? queueJobId,
      celery_task_id: record.queue_job_id ?? queueJobId,
      ...(created ? {} : { existing: true }),
    };
  }

  /**
   * Publishes a queued task's `queued` event unless its job is in the queue, then queues the job
   * (also of a task that existed: a start whose enqueue failed is completed by its retry).
   */
  async #publishAndEnqueue(record: TaskRecord, created: boolean, content: string, queueJobId: string): Promise<void> {
    if (record.status !== 'queued') return;
    // The queued event goes out before the job exists, so no worker's event can precede it. A start
    // of a task whose job is not queued tells it too: its creator's may never have gone out (that
    // start failed or died before it), and no worker's event can be out (a second `queued` at worst).
    const runId = record.queue_job_id ?? queueJobId;
    if (created || !(await this.#inQueue(runId))) {
      await unavailableOnError(() => this.#o.publish(record.user_id, progressEvent(record)));
    }
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
  }

  /**
   * A start of a task another start is still creating (its hold is live: that start may not have
   * published `queued` yet) waits for that start to end, so the job it queues cannot let a worker's
   * events reach the user before that `queued`. A start cut off from Redis before it could say it
   * ended keeps the hold until it passes: past `startWaitMs`, `unavailable` (retry).
   */
  async #afterOtherStart(record: TaskRecord): Promise<TaskRecord> {
    const deadline = Date.now() + (this.#o.startWaitMs ?? 3_000);
    let current = record;
    while (await this.#startUnderWay(current)) {
      if (Date.now() >= deadline) {
        throw new RpcError(
          RpcErrorCode.Unavailable,
          `another start of task ${record.task_id} is still under way; retry (it is queued by then, or this start completes it)`,
        );
      }
      await sleep(50);
      current = (await unavailableOnError(() => this.#o.queue.store.get(record.task_id))) ?? current;
    }
    return current;
  }

  /**
   * Whether the start that created (or started again) a queued task may still be publishing `queued`
   * and queueing its job: its hold is live and its job not in the queue yet (that start queues it
   * once `queued` is out). So a start whose hold was not given back (a gateway that does not give
   * it back, or a write that failed) holds nobody up once its job is queued.
   */
  async #startUnderWay(record: TaskRecord): Promise<boolean> {
    if (record.status !== 'queued') return false;
    if (record.start_hold_until === undefined || record.start_hold_until <= Date.parse(this.#now())) return false;
    return record.queue_job_id === undefined || !(await this.#inQueue(record.queue_job_id));
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

  /**
   * `TASK.cancel`: a queued task ends at once; a running one at its worker's next checkpoint, and so
   * does a queued one whose start is still under way (its `queued` event goes out first).
   */
  async cancel(principal: Principal, taskId: string): Promise<RpcResult<'TASK.cancel'>> {
    const { queue } = this.#o;
    let record = await this.#owned(principal, taskId);
    const answer = (r: TaskRecord, success: boolean) => ({ success, task_id: taskId, status: r.status });
    // Cancelled before it ever ran: that cancel's event may not have gone out (its publish failed,
    // it answered `unavailable`), and no worker tells it. Told again (a second copy at worst).
    if (record.status === 'cancelled' && !record.attempts) {
      await this.#announceDequeued(record);
      return answer(record, true);
    }
    // Cancelled as a cancel asked (a worker's claim or checkpoint honoured it): that request succeeded,
    // also for a cancel told to retry (`unavailable`) that is retried.
    if (record.status === 'cancelled' && record.cancel_requested) return answer(record, true);
    if (isFinal(record.status)) return answer(record, false);

    const dequeued = (await this.#startUnderWay(record)) ? undefined : await this.#dequeue(taskId);
    if (dequeued) return answer(dequeued, true);
    // Running, or queued by a start not yet done: that start (then this wait) or the worker's claim ends it.
    const requested = await unavailableOnError(() =>
      queue.store.transition(taskId, ['queued', 'running'], { cancel_requested: true, updated_at: this.#now() }),
    );
    if (!requested.ok) return answer(requested.record ?? record, false);
    // Bounded wait for the worker's acknowledgement, well within the RPC timeout.
    const deadline = Date.now() + (this.#o.cancelWaitMs ?? 3_000);
    while (Date.now() < deadline) {
      await sleep(50);
      record = (await unavailableOnError(() => queue.store.get(taskId))) ?? record;
      if (isFinal(record.status)) return answer(record, record.status === 'cancelled');
      const done =
        record.status === 'queued' && !(await this.#startUnderWay(record)) ? await this.#dequeue(taskId) : undefined;
      if (done) return answer(done, true);
    }
    // Still queued by a start not yet done: that start may have died (its hold then passes), and a
    // success would promise an end nobody may bring. Asked for (a worker's claim honours it); retry.
    if (await this.#startUnderWay(record)) {
      throw new RpcError(
        RpcErrorCode.Unavailable,
        `the start of task ${taskId} is still under way; retry the cancel (it is queued by then)`,
      );
    }
    return answer(record, true);
  }

  /** Cancels a queued task (its `queued` event is out): publishes `cancelled` and drops its job. */
  async #dequeue(taskId: string): Promise<TaskRecord | undefined> {
    const { queue } = this.#o;
    const dequeued = await unavailableOnError(() =>
      queue.store.transition(taskId, ['queued'], {
        status: 'cancelled',
        message: 'cancelled before it started',
        updated_at: this.#now(),
      }),
    );
    if (!dequeued.ok || !dequeued.record) return undefined;
    await this.#announceDequeued(dequeued.record);
    return dequeued.record;
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
