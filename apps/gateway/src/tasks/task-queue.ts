import type { TaskStore } from './task-store';

/** What a queued job carries: enough for any worker to run the task. */
export interface TaskJobData {
  task_id: string;
  user_id: string;
  kind: 'document_analysis';
  content: string;
  /** The queue's id for this run of the task ({@link TaskQueue.queueJobId}); unset: the task's one id (older gateways). */
  queue_job_id?: string;
}

/** Jobs per queue state, for the depth gauge. */
export interface QueueDepth {
  waiting: number;
  active: number;
  delayed: number;
}

/** Tasks as /healthz shows them. */
export interface TaskQueueHealth {
  /** Workers that sent a heartbeat recently (the in-process queue counts as one). */
  workers: number;
}

/**
 * The port between the gateway and whatever runs tasks: a job is handed over with
 * {@link enqueue} and runs somewhere (in this process, or in a `livebus-gateway worker`
 * process through BullMQ), reporting through the {@link store} and `task.progress_update`
 * events. The gateway never waits for a job.
 */
export interface TaskQueue {
  /** Whether the queue's jobs are shared by the fleet (any worker process may run them), or run in this process only. */
  readonly sharedAcrossInstances: boolean;
  /** Snapshots of the tasks whose jobs this queue carries. */
  readonly store: TaskStore;
  /**
   * The queue's own id for a run of a task: the same task and `run` (its record's `created_at`)
   * always get the same id; a task started again after its record expired is a new run, whose
   * job no finished job of the earlier run can stand in for.
   */
  queueJobId(taskId: string, run: string): string;
  /**
   * Queues a job; a job whose id is already queued or running is left as it is. A job that
   * ended is not kept (BullMQ removes it with its document), so callers queue only tasks whose
   * record is still `queued`; a run of one that ended meanwhile finds it ended and skips it.
   */
  enqueue(job: TaskJobData): Promise<void>;
  /**
   * Whether the job with this id (a run's, {@link queueJobId}) is in the queue: waiting, delayed or
   * running. Optional: without it, every start of a queued task publishes its `queued` event.
   */
  hasJob?(queueJobId: string): boolean | Promise<boolean>;
  /** Drops a job that has not started (best effort: it may have started meanwhile); `queueJobId`: its run's id. */
  remove(taskId: string, queueJobId?: string): Promise<void>;
  depth(): Promise<QueueDepth>;
  /** Synchronous, for /healthz: from the last heartbeat poll. */
  health(): TaskQueueHealth;
  close(): Promise<void>;
}
