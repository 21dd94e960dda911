import { withRedisTimeout } from '@livebus/publisher';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueDepth } from './task-queue';
import type { TaskWorkOptions } from './task-queue-options';

/** How long a scrape waits for the queue's depth before it leaves the gauge out. */
const DEPTH_TIMEOUT_MS = 1_000;

/** Task metrics on an existing registry (the gateway's, or the worker process's). */
export interface TaskMetrics {
  /** Feeds {@link TaskWorkOptions.observe}. */
  observe: NonNullable<TaskWorkOptions['observe']>;
}

/**
 * Registers `livebus_task_queue_depth{state}` (read from the queue at scrape time),
 * `livebus_task_jobs_total{outcome}` and `livebus_task_duration_seconds{outcome}` (counted
 * where jobs run: a worker process, or the gateway with the embedded queue).
 */
export function registerTaskMetrics(registry: Registry, depth: () => Promise<QueueDepth>): TaskMetrics {
  new Gauge({
    name: 'livebus_task_queue_depth',
    help: 'Task jobs by queue state (waiting, active, delayed for a retry)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        // Bounded: a Redis that stopped answering must not hold the whole scrape.
        const d = await withRedisTimeout(depth(), DEPTH_TIMEOUT_MS);
        for (const state of ['waiting', 'active', 'delayed'] as const) this.set({ state }, d[state]);
      } catch {
        // Redis away: no sample (not the last one again) rather than a failed scrape.
        this.reset();
      }
    },
  });
  const jobs = new Counter({
    name: 'livebus_task_jobs_total',
    help: 'Task job runs by outcome (completed, failed, cancelled, skipped, retried, handed_back)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'livebus_task_duration_seconds',
    help: 'Duration of task job runs by outcome',
    labelNames: ['outcome'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  return {
    observe(outcome, s) {
      jobs.inc({ outcome });
      if (s > 0) seconds.observe({ outcome }, s);
    },
  };
}
