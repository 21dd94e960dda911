import type { AppEvent, Cursor } from '@livebus/protocol';
import type { ReadResult } from '../fleet/bus/event-bus';
import type { LeaseHolder } from '../fleet/lease/lease';
import type { GatewayHooks } from '../hooks';
import type { CarryOver } from './carry-over';

/** How a {@link Detach} releases listeners. */
export interface DetachOptions {
  /**
   * Another instance takes the user's listeners over (lease lost or handed over,
   * sessions left elsewhere): keep what it needs to resume without re-delivering.
   * False: the user left the fleet; their next attach starts afresh. @default false
   */
  handover?: boolean;
}

/**
 * Publishes one event of a source. A returned promise tells the source when the event
 * is published (a rejection: it was not); it resolves with the event's cursor in the
 * user's stream when the sink knows it, which the source stores with its mark.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a sink that knows no cursor (a test's) resolves with nothing.
export type Emit = (event: AppEvent) => void | Promise<{ cursor: Cursor } | undefined | void>;

/**
 * Releases what a {@link ListenerSource} attached. `ready`, when set, resolves once the
 * listener's first snapshot is published (a WORKFLOW.watch answers after its initial state).
 * `failing`, when set, says the kind of the listener's last failure while it is failing (from
 * a failure until it publishes a snapshot again, retries included), undefined while it is not:
 * a WORKFLOW.watch whose listener is failing when its wait for `ready` ends answers an error.
 */
export type Detach = ((options?: DetachOptions) => Promise<void>) & {
  ready?: Promise<void>;
  failing?: () => string | undefined;
};

/** What the {@link import('./listeners-manager').ListenersManager} tells a source when it attaches. */
export interface AttachContext {
  /** The lease under which this instance holds the user's listeners, to fence writes of shared state. */
  fence?: LeaseHolder;
  /**
   * The source lost the right to run (a fenced write was refused: another instance
   * holds the lease now); the manager releases the user's listeners.
   */
  onFenced?: () => void;
  /**
   * The user's carry-over on this instance: a source keeps there, per listener, what
   * it published but could not store, and resumes from it on its next attach here;
   * unset: nothing is carried (the stored marks alone).
   */
  carry?: CarryOver;
  /**
   * Reads the user's stream after a cursor: a source resumes from the events it
   * published after its stored cursor, which an owner killed before storing its mark
   * left there; unset: from the stored marks alone.
   */
  readSince?: (cursor: Cursor) => Promise<ReadResult>;
  /** The gateway's lifecycle events, for the moments a source sees first (a fenced write). */
  hooks?: GatewayHooks;
  /**
   * A workflow listener opened for a WORKFLOW.watch waiting for its answer: it tells the user
   * (`listener.status`) nothing of a failure until this settles, since the answer says whether it
   * opened; a watch answered `unavailable` is closed before, and never told. @default none held
   */
  holdStatus?: Promise<void>;
}

/**
 * Thrown by {@link ListenerSource.attach} when it can never attach the user (an id that cannot
 * be placed in the source's paths): the user's listeners are not tried again, on a timer, while
 * the session lasts. Any other failure is taken as passing (Firestore away) and retried.
 */
export class ListenerRefusal extends Error {
  override readonly name: string = 'ListenerRefusal';
}

/** Counters of a source, for /metrics and /ws-metrics. */
export interface ListenerSourceStats {
  /** Firestore listeners (queries) open now. */
  open: number;
  /** Document reads billed, per listener name, and the top users. */
  reads: {
    total: number;
    by_listener: Record<string, number>;
    users_tracked: number;
    top_readers: [string, number][];
  };
  /** Events published, per listener name. */
  events: Record<string, number>;
  /** Changes dropped because they were delivered before a takeover or restart, per listener name. */
  deduplicated: Record<string, number>;
  /** Listener failures by kind (`permission_denied`, `unavailable`, `stalled`, `emit`, ...). */
  errors: Record<string, number>;
  /**
   * Listeners failing now (from a failure until they publish a snapshot again, retries
   * included), by the kind of their last failure; unset: the source does not tell.
   */
  failing?: Record<string, number>;
  /** Listeners re-opened after a failure or a stall. */
  restarts: number;
  /** When a listener last failed with an outage's kind (`FIRESTORE_OUTAGE`), ms since the epoch; unset: none has. */
  lastErrorAt?: number;
}

/**
 * Port: something that watches data on behalf of a user and emits events
 * (Firestore snapshots, Redis channels). Attached when the user's first session
 * opens, released after the detach delay once the last one closes.
 */
export interface ListenerSource {
  readonly name: string;
  /**
   * Attaches the user's listeners. `emit` may return a promise: a source waits for
   * it before counting an event delivered (and a rejection means it was not).
   */
  attach(userId: string, emit: Emit, context?: AttachContext): Promise<Detach>;
  /** Counters for /metrics and /ws-metrics. */
  stats?(): ListenerSourceStats;
}

/** Port: one document per job watched on request (WORKFLOW.watch). */
export interface WorkflowSource {
  /** The job's owner user id; undefined when the job does not exist. */
  owner(jobId: string): Promise<string | undefined>;
  /**
   * Attaches a listener on the job's document; its changes go to `userId`. Called on
   * the instance holding the user's lease, with its fence: a later holder resumes
   * from what this one delivered. `handover: false` on detach: the watch ended.
   */
  attach(userId: string, jobId: string, emit: Emit, context?: AttachContext): Promise<Detach>;
}
