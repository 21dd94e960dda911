import type { AppEvent } from '@livebus/protocol';
import { FieldPath, type Firestore } from 'firebase-admin/firestore';
import type { Logger } from '../logger';
import type { Detach, WorkflowSource } from './listener-source';
import type { ListenerStats } from './listener-stats';
import { fillPath, type ListenersConfig } from './listeners-config';
import { WatchedQuery } from './watched-query';

/** Options of {@link FirestoreWorkflowSource}. */
export interface FirestoreWorkflowSourceOptions {
  firestore: Firestore;
  /** The `workflow` entry of LISTENERS_FILE. */
  workflow: NonNullable<ListenersConfig['workflow']>;
  logger: Logger;
  stats: ListenerStats;
  /** @default 30_000 */
  retryMaxMs?: number;
  /** @default 1_800_000 */
  stallMs?: number;
}

/** Thrown for a job id that cannot be placed in a Firestore path. */
export class WorkflowJobIdError extends Error {
  override readonly name = 'WorkflowJobIdError';
}

/**
 * WORKFLOW.watch on Firestore: one listener on the job's document (`listener`
 * `workflow`, source `workflow`). Its first snapshot is delivered as an `initial`
 * `added` event when the document exists, then every change.
 */
export class FirestoreWorkflowSource implements WorkflowSource {
  readonly #o: FirestoreWorkflowSourceOptions;
  #open = 0;

  constructor(options: FirestoreWorkflowSourceOptions) {
    this.#o = options;
  }

  #path(jobId: string): string {
    if (jobId.includes('/')) throw new WorkflowJobIdError(`job id ${JSON.stringify(jobId)} contains '/'`);
    return fillPath(this.#o.workflow.document, { job_id: jobId });
  }

  async owner(jobId: string): Promise<string | undefined> {
    const snapshot = await this.#o.firestore.doc(this.#path(jobId)).get();
    const owner: unknown = snapshot.get(this.#o.workflow.owner_field);
    return snapshot.exists && typeof owner === 'string' ? owner : undefined;
  }

  async attach(userId: string, jobId: string, emit: (event: AppEvent) => void | Promise<void>): Promise<Detach> {
    const ref = this.#o.firestore.doc(this.#path(jobId));
    // A query on the document id, not ref.onSnapshot: one code path (docChanges) for every listener.
    const query = ref.parent.where(FieldPath.documentId(), '==', ref.id);
    const watched = new WatchedQuery({
      query,
      userId,
      listener: 'workflow',
      source: 'workflow',
      emit,
      mark: undefined,
      // Workflow listeners are per watch, not handed over: nothing to fence.
      saveMark: async () => true,
      onFenced: () => {},
      observer: this.#o.stats,
      logger: this.#o.logger,
      ...(this.#o.retryMaxMs === undefined ? {} : { retryMaxMs: this.#o.retryMaxMs }),
      ...(this.#o.stallMs === undefined ? {} : { stallMs: this.#o.stallMs }),
    });
    watched.start();
    this.#open++;
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      this.#open--;
      await watched.stop();
    };
  }

  /** Workflow listeners open now. */
  get open(): number {
    return this.#open;
  }
}
