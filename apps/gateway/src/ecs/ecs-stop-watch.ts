import type { Logger } from '../logger';

/** How often the task metadata endpoint is polled; docker/ecs's deregistration delay allows for it. */
export const ECS_STOP_POLL_MS = 2_000;

/** Options of {@link watchEcsStop}. */
export interface EcsStopWatchOptions {
  /** `ECS_CONTAINER_METADATA_URI_V4`, set by the ECS agent in every container; unset: not on ECS, nothing to watch. */
  metadataUri: string | undefined;
  /** Called once, when the task's desired status becomes `STOPPED`. */
  onStop: () => void;
  /** @default {@link ECS_STOP_POLL_MS} */
  intervalMs?: number;
  /** Gets `ecs_task_status` (info) once per change of the task's desired or known status. */
  logger?: Logger;
}

/**
 * Starts the gateway's graceful shutdown as soon as ECS decides to stop the task.
 * ECS first deregisters the task from the ALB target group and waits out the
 * deregistration delay, and only then sends SIGTERM; meanwhile the ALB keeps the
 * open WebSockets and cuts them when the delay ends (clients see 1006). The
 * task's `DesiredStatus` turns `STOPPED` at the start of that wait, so polling it
 * lets the gateway close every socket with 1012 and a reconnect hint first.
 * AWS does not document that `DesiredStatus` turns before the delay ends: each change is
 * logged, so that operators can see which path ran (docs/runbook.md).
 * Returns a function that stops watching. Errors are ignored: SIGTERM still works.
 */
export function watchEcsStop(options: EcsStopWatchOptions): () => void {
  const { metadataUri, onStop } = options;
  if (!metadataUri) return () => {};
  let done = false;
  let last = '';
  const poll = async () => {
    try {
      const res = await fetch(`${metadataUri}/task`, { signal: AbortSignal.timeout(1_000) });
      if (!res.ok) return;
      const task = (await res.json()) as { DesiredStatus?: string; KnownStatus?: string };
      const status = { desired_status: task.DesiredStatus, known_status: task.KnownStatus };
      if (JSON.stringify(status) !== last && !done) {
        last = JSON.stringify(status);
        options.logger?.info('ecs_task_status', status);
      }
      if (task.DesiredStatus === 'STOPPED' && !done) {
        done = true;
        clearInterval(timer);
        onStop();
      }
    } catch {
      // The agent restarts or is slow: try again on the next tick.
    }
  };
  const timer = setInterval(() => void poll(), options.intervalMs ?? ECS_STOP_POLL_MS);
  timer.unref();
  return () => {
    done = true;
    clearInterval(timer);
  };
}
