import { FieldPath, type Firestore } from 'firebase-admin/firestore';
import type { Logger } from '../../logger';
import { carryOptions, replayListener } from '../carry-over';
import type { AttachContext, Detach, Emit, WorkflowSource } from '../listener-source';
import type { ListenerStats } from '../listener-stats';
import { fillPath, type ListenersConfig } from '../listeners-config';
import type { WatermarkStore } from '../watermark-store';
import { WatchedQuery } from './watched-query';

/** Options of {@link FirestoreWorkflowSource}. */
export interface FirestoreWorkflowSourceOptions {
  firestore: Firestore;
  /** The `workflow` entry of LISTENERS_FILE. */
  workflow: NonNullable<ListenersConfig['workflow']>;
  logger: Logger;
  stats: ListenerStats;
  /** Where each watch stands, so a new holder of the user's lease resumes it; unset: every attach starts afresh. */
  marks?: WatermarkStore;
  /** @default listenerDefaults.retryMaxMs (30 s) */
  retryMaxMs?: number;
  /** @default listenerDefaults.stallMs (30 min) */
  stallMs?: number;
  /** @default listenerDefaults.trackedDocsMax (1 000) */
  trackedDocsMax?: number;
}

/** Name of a watch in the {@link WatermarkStore} (its events still say `listener: 'workflow'`). */
export const workflowMarkName = (jobId: string) => `workflow:${jobId}`;

/** Thrown for a job id that cannot be placed in a Firestore path. */
export class WorkflowJobIdError extends Error {
  override readonly name = 'WorkflowJobIdError';
}

/**
 * WORKFLOW.watch on Firestore: one listener on the job's document (`listener`
 * `workflow`, source `workflow`). Its first snapshot is delivered as an `initial`
 * `added` event when the document exists, then every change. A holder that takes
 * the user's lease over resumes each watch from the stored marks, like the per-user
 * listeners.
 */
export class FirestoreWorkflowSource implements WorkflowSource {
  readonly #o: FirestoreWorkflowSourceOptions;
  /** The watches attached and not detached. */
  readonly #live = new Set<WatchedQuery>();

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

  async attach(userId: string, jobId: string, emit: Emit, context: AttachContext = {}): Promise<Detach> {
    const ref = this.#o.firestore.doc(this.#path(jobId));
    const name = workflowMarkName(jobId);
    const marks = this.#o.marks;
    const fence = context.fence;
    const resume = marks && fence ? await marks.get(userId) : undefined;
    // Every watch's events say `listener: 'workflow'`: this one's are those of its document.
    const replayed = await replayListener(
      context.readSince,
      { mark: resume?.marks[name], cursor: resume?.cursors[name] },
      (of) => of.source === 'workflow' && of.listener === 'workflow' && of.path === ref.path,
      (reason) => this.#o.logger.warn('listener_error', { uid: userId, listener: name, kind: 'replay', error: reason }),
    );
    let fenced = false;
    // A query on the document id, not ref.onSnapshot: one code path (docChanges) for every listener.
    const query = ref.parent.where(FieldPath.documentId(), '==', ref.id);
    const watched = new WatchedQuery({
      query,
      userId,
      listener: 'workflow',
      source: 'workflow',
      path: ref.path,
      ...(replayed.told === undefined ? {} : { told: replayed.told }),
      ...(context.holdStatus ? { holdStatus: context.holdStatus } : {}),
      emit,
      mark: resume?.marks[name],
      docs: resume?.docs[name] ?? {},
      overflowed: resume?.overflowed.includes(name) ?? false,
      ...(resume?.cursors[name] ? { cursor: resume.cursors[name] } : {}),
      saveMark: (mark, delta, cursor) =>
        marks && fence ? marks.set(userId, name, mark, fence, delta, cursor) : Promise.resolve(true),
      onFenced: () => {
        if (fenced) return;
        fenced = true;
        context.onFenced?.();
      },
      ...carryOptions(context.carry, name, replayed.carried),
      observer: this.#o.stats,
      logger: this.#o.logger,
      ...(this.#o.retryMaxMs === undefined ? {} : { retryMaxMs: this.#o.retryMaxMs }),
      ...(this.#o.stallMs === undefined ? {} : { stallMs: this.#o.stallMs }),
      ...(this.#o.trackedDocsMax === undefined ? {} : { trackedDocsMax: this.#o.trackedDocsMax }),
    });
    watched.start();
    this.#live.add(watched);
    let stopped = false;
    const detach: Detach = async (options = {}) => {
      if (stopped) return;
      stopped = true;
      this.#live.delete(watched);
      await watched.stop(options);
      // The watch ended (not handed over): its next watch starts with an initial event again.
      if (!options.handover && marks) await marks.forget(userId, name);
    };
    detach.ready = watched.published();
    detach.failing = () => watched.failingKind;
    return detach;
  }

  /** Workflow listeners attached now (open, or failing and retrying). */
  get open(): number {
    return this.#live.size;
  }

  /** Workflow listeners open now: registered with Firestore and not failing ({@link WatchedQuery.open}). */
  queriesOpen(): number {
    let open = 0;
    for (const watched of this.#live) if (watched.open) open++;
    return open;
  }
}
