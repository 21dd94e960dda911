import { randomUUID } from 'node:crypto';
import type { AppEvent, Cursor } from '@livebus/protocol';
import { PublishError } from '@livebus/publisher';
import type { ReadResult } from '../fleet/bus/event-bus';
import type { ListenerControlMessage } from '../fleet/instances/instance-channel';
import type { InstanceLiveness } from '../fleet/instances/instance-liveness';
import type { Lease, LeaseHolder } from '../fleet/lease/lease';
import { type GatewayHookEvents, type GatewayHooks, Hooks } from '../hooks';
import type { LogEvent, LogFields, Logger } from '../logger';
import { beforeDeadline } from '../redis/before-deadline';
import { checkLimitOption } from '../rpc/limit-option';
import { CarryOver } from './carry-over';
import { FailoverWatch } from './failover-watch';
import { listenerDefaults } from './listener-defaults';
import {
  type AttachContext,
  type Detach,
  type Emit,
  ListenerRefusal,
  type ListenerSource,
  type ListenerSourceStats,
  type WorkflowSource,
} from './listener-source';
import { LogThrottle } from './log-throttle';
import type { WorkflowWatchStore } from './workflow-watch-store';

/**
 * A WORKFLOW.watch of a new job refused: the user watches `watches` jobs, at least `max`
 * (WORKFLOW_MAX_WATCHES_PER_USER), already.
 */
export class WorkflowWatchLimitError extends Error {
  override readonly name = 'WorkflowWatchLimitError';
  constructor(
    readonly watches: number,
    readonly max: number,
  ) {
    super(
      `you watch ${watches} jobs; the maximum is ${max} (WORKFLOW_MAX_WATCHES_PER_USER): unwatch one (WORKFLOW.unwatch) before watching another`,
    );
  }
}

/**
 * A WORKFLOW.watch whose listener did not open within the wait for its initial state: it was
 * failing then (`kind`, as the source names it: `permission_denied`, `failed_precondition` for
 * a missing index, `unavailable`, ...). The watch was taken back out of the user's set.
 */
export class WorkflowWatchOpenError extends Error {
  override readonly name = 'WorkflowWatchOpenError';
  constructor(
    readonly jobId: string,
    readonly kind: string,
  ) {
    super(`the workflow listener of job ${jobId} could not open (${kind})`);
  }
}

/** Options of {@link ListenersManager}. */
export interface ListenersManagerOptions {
  sources: readonly ListenerSource[];
  /**
   * Counters of every listener of the process, when the sources share them (LISTENERS_FILE):
   * also there without a user source. @default the sources' own, merged
   */
  stats?: () => ListenerSourceStats;
  /** @default 5_000 */
  detachDelayMs: number;
  /** Errors only (a failed attach, lease call or watch); lifecycle moments go to {@link hooks}. */
  logger: Logger;
  /**
   * Where the lifecycle moments go: detach delay start / cancelled / executing / complete,
   * registry cleanups, lease acquired / lost / released, listeners attached / detached.
   * @default a fresh emitter nobody listens to
   */
  hooks?: GatewayHooks;
  /**
   * Removes the user's registry entry once their listeners are released; `detachStartedAt`
   * lets the store keep what a reconnect registered in the meantime. In a fleet the
   * store decides atomically and answers `present` when another instance holds a
   * session of the user: then nothing is removed.
   */
  cleanupRegistry: (userId: string, detachStartedAt: Date) => Promise<'cleaned' | 'present'>;
  /**
   * The fleet's detach decision, one atomic step: `won` when this instance runs the
   * cleanup of the user's departure, `taken` when another instance that the user left
   * at the same moment does, `present` when a session of the user is live somewhere.
   * Only `won` runs {@link cleanupRegistry}. @default always `won` (one instance)
   */
  claimCleanup?: (userId: string) => Promise<'won' | 'present' | 'taken'>;
  /**
   * Whether another instance of the fleet holds a session of the user (the fleet's
   * presence directory); a detach whose user is still present elsewhere releases
   * this instance's listeners but cleans nothing. @default never (one instance)
   */
  presentElsewhere?: (userId: string) => Promise<boolean>;
  /**
   * Removes this instance's presence entries of the user that nothing here holds (their remove
   * failed when the sessions closed); resolves with how many. A claim answered `present` by them
   * alone is made again. @default none removed: a claim answered `present` is final
   */
  removeLeftEntries?: (userId: string) => Promise<number>;
  /**
   * Where events from the sources go, with the lease they were read under (`fence`: the
   * sink stores them only while it holds). A returned promise tells the source when the
   * event is published (it moves its resume mark only then), with the event's cursor
   * (stored with the mark); a rejection, that it was not (`code: 'fenced'`: the lease is gone).
   */
  emit: (userId: string, event: AppEvent, fence?: LeaseHolder) => ReturnType<Emit>;
  /**
   * Reads a user's event stream after a cursor, so a source that takes the user's
   * listeners over resumes after what its predecessor published without storing
   * (killed in between). @default none: sources resume from their stored marks alone
   */
  readSince?: (userId: string, cursor: Cursor) => Promise<ReadResult>;
  /**
   * Who holds each user's listeners in the fleet (key: the user id). Only the
   * holder attaches them; an instance with sessions of the user but without the
   * lease polls it and takes over when the holder stops renewing.
   * One instance alone is always the holder of an in-memory lease (compose.ts `memoryPorts`).
   */
  lease: Lease;
  /** This instance's name as lease owner. @default 'local' */
  instanceId?: string;
  /** Lease TTL; renewed every third of it, polled by the others every quarter. @default listenerDefaults.leaseTtlMs (15 s) */
  leaseTtlMs?: number;
  /** Documents watched with WORKFLOW.watch; unset: watches are only counted. */
  workflowSource?: WorkflowSource;
  /**
   * Jobs one user may watch at once (WORKFLOW_MAX_WATCHES_PER_USER), in the fleet's watch set, or
   * without a workflow source in this instance's count: a further job is refused
   * ({@link WorkflowWatchLimitError}, answered `rate_limited`). 0: no bound.
   * @default listenerDefaults.workflowWatchesMax (100)
   */
  workflowWatchesMax?: number;
  /**
   * The jobs each user watches, shared by the fleet: the holder of the user's lease
   * keeps one listener per job, whichever instance received the watch.
   * In memory for one instance (compose.ts `memoryPorts`).
   */
  workflowWatches: WorkflowWatchStore;
  /** First retry delay of a failed cleanup; doubles up to 30 s. @default 250 */
  cleanupRetryMs?: number;
  /**
   * Messages to other instances of the fleet: a WORKFLOW.watch received here goes to the
   * holder of the user's lease, which attaches it at once and answers once the job's initial
   * state is published. Unset: the holder reads the watch set at its next lease renewal.
   */
  channel?: { send(instanceId: string, message: ListenerControlMessage): Promise<void> };
  /** Longest a WORKFLOW.watch waits for the job's initial state before it answers anyway. @default 3_000 */
  watchReplyMs?: number;
  /**
   * The fleet's liveness proofs: with {@link failoverMs}, a holder that stops proving it runs
   * (killed, host lost) is taken over by an instance serving its users on standby within
   * `failoverMs`, instead of when each user's lease expires. Unset: on lease expiry only.
   */
  liveness?: InstanceLiveness;
  /** LISTENER_FAILOVER_MS; 0 turns the liveness takeover off. @default 0 */
  failoverMs?: number;
}

/** Counters exposed on /healthz, /ws-metrics and /metrics. */
export interface ListenerCounters {
  /** Users whose listener set is attached. */
  attached: number;
  /**
   * Workflow listeners (WORKFLOW.watch) open on this instance: the watched jobs of the
   * users whose lease it holds (without a workflow source: the watches received here).
   */
  workflows: number;
  /** Users waiting for their detach timer. */
  pendingDetaches: number;
  detachCancelled: number;
  detachExecuted: number;
  cleanupErrors: number;
  /** Registry cleanups this instance ran since start (its detach decision won the departure). */
  cleanups: number;
  /** Detaches since start whose decision found the user present elsewhere or claimed by another instance: no cleanup here. */
  cleanupsSkipped: number;
  /** Users with sessions here whose listeners another instance of the fleet holds. */
  standby: number;
}

/*
 * Per-user lifecycle. Session counts change synchronously; attach and detach
 * run one at a time on the user's promise chain, so they never overlap:
 *
 *   sessions 0 -> 1:  cancel a pending timer (detach.cancelled) or
 *                     enqueue attach (no-op if already attached)
 *   sessions 1 -> 0:  start the timer (detach.delay_start)
 *   timer fires:      enqueue detach (detach.executing), which re-checks
 *                     the count when it runs: a session that arrived in the
 *                     meantime wins and nothing is released
 *   detach:           release listeners, claim the departure (the fleet's
 *                     atomic decision: one instance wins), on the winner
 *                     registry.cleanup start/success/error (retried until it
 *                     succeeds or a session returns), detach.complete
 */
/*
 * The fields a user of an instance without listeners never needs (lease, holder, watches,
 * carry-over) are optional and left out of a new state: it is made with the six fields
 * every user needs (136 bytes a user with all fourteen of the fields before `unwatched`, for as long
 * as they are connected).
 */
interface UserState {
  sessions: number;
  attached: boolean;
  detaches: readonly Detach[];
  /**
   * Job id -> its listener's release, on the holder of the user's lease (undefined while
   * it attaches). Without a workflow source: the watches received here, to count them.
   * Made on the first watch: most users watch nothing, and an empty Map costs ~150 bytes.
   */
  workflows?: Map<string, Detach | undefined> | undefined;
  /** Job id -> settles once its watch's initial state is published (holder only); made on the first watch. */
  workflowReady?: Map<string, Promise<void>> | undefined;
  /**
   * Jobs whose watch was answered as failed but could not be taken out of the fleet's set (Redis
   * away): not attached here until watched again. Made when needed.
   */
  unwatched?: Set<string> | undefined;
  /** Fencing token of the lease while this instance holds the user's listeners. */
  token?: number | undefined;
  /** Renews the lease (holder) or polls it (standby). */
  leaseTimer?: NodeJS.Timeout | undefined;
  /** On standby with liveness failover: the holder seen at the last poll. */
  holder?: LeaseHolder | undefined;
  /** When the lease was last renewed: past its TTL without a renewal, another instance may hold it. */
  renewedAt?: number;
  standby?: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The queued attach/detach steps; undefined once they have all run (a settled promise costs ~50 bytes a user). */
  chain: Promise<void> | undefined;
  /**
   * Bumped when a session opens: tells a retrying cleanup it is no longer wanted. (Not the
   * stream epoch of a cursor: this one only counts the user's session openings here.)
   */
  generation: number;
  /**
   * What the user's listeners published here but could not store (Redis away longer
   * than the lease TTL, a publish completing after the lease was lost): the next
   * attach here resumes from it. Dropped with this state when the user leaves. Made
   * with the first listener context (none without listeners: ~300 bytes per user saved).
   */
  carry?: CarryOver | undefined;
}

/** The detaches of a user with no listener attached: one shared empty list, not one per user. */
const NO_DETACHES: readonly Detach[] = Object.freeze([]);
/** What sessionOpened answers when there is nothing to attach (one settled promise for all). */
const ATTACHED: Promise<void> = Promise.resolve();

/** Attaches and releases each user's listeners, with the detach delay that a reconnect cancels. */
export class ListenersManager {
  readonly #users = new Map<string, UserState>();
  readonly #o: Required<
    Omit<ListenersManagerOptions, 'workflowSource' | 'readSince' | 'channel' | 'liveness' | 'stats'>
  > &
    Pick<ListenersManagerOptions, 'workflowSource' | 'readSince' | 'channel' | 'liveness' | 'stats'>;
  /** Follows the holders of the users served here on standby (liveness failover); unset: off. */
  readonly #failover: FailoverWatch | undefined;
  /** WORKFLOW.watch calls sent to the holder, by message id -> resolves when it answers. */
  readonly #watchReplies = new Map<string, () => void>();
  /**
   * `uid\njob` of the WORKFLOW.watch calls waiting for their attach -> why it failed
   * (null: no failure yet). Only waiting calls are recorded, so nothing accumulates.
   */
  readonly #workflowErrors = new Map<string, unknown>();
  /**
   * `uid\njob` -> the WORKFLOW.watch of that job opening now: a call arriving meanwhile (another tab,
   * a reconnect's re-watch) waits for it and gets its answer.
   */
  readonly #watchOpens = new Map<string, Promise<void>>();
  /**
   * `uid\njob` -> settles once that opening watch is answered: its listener tells the user nothing
   * of a failure until then ({@link AttachContext.holdStatus}); the answer says it.
   */
  readonly #statusHolds = new Map<string, Promise<void>>();
  #cancelled = 0;
  #executed = 0;
  // Maintained on every transition so /healthz and /metrics read them in O(1).
  #attachedCount = 0;
  #pendingCount = 0;
  #workflowCount = 0;
  #cleanupErrors = 0;
  #cleanups = 0;
  #cleanupsSkipped = 0;
  #standbyCount = 0;
  #closed = false;
  /** The lines an outage repeats for every user, by kind (see {@link #logRepeated}). */
  readonly #repeated = new Map<string, LogThrottle>();

  constructor(options: ListenersManagerOptions) {
    checkLimitOption('workflowWatchesMax (WORKFLOW_MAX_WATCHES_PER_USER)', options.workflowWatchesMax);
    this.#o = {
      cleanupRetryMs: 250,
      hooks: new Hooks<GatewayHookEvents>(),
      presentElsewhere: async () => false,
      claimCleanup: async () => 'won',
      removeLeftEntries: async () => 0,
      instanceId: 'local',
      leaseTtlMs: listenerDefaults.leaseTtlMs,
      watchReplyMs: 3_000,
      failoverMs: 0,
      workflowWatchesMax: listenerDefaults.workflowWatchesMax,
      ...options,
    };
    const { liveness, failoverMs, instanceId, hooks } = this.#o;
    const listens = this.#o.sources.length > 0 || this.#o.workflowSource !== undefined;
    this.#failover =
      liveness && failoverMs > 0 && listens
        ? new FailoverWatch({ liveness, failoverMs, instanceId, hooks, onDead: (owner) => this.#holderDead(owner) })
        : undefined;
  }

  /**
   * A line that a Redis or Firestore outage repeats for every user at every retry (a lease call, an
   * attach): the first of its `kind` at `level`, then at most one per {@link import('./log-throttle').REPEATED_LOG_MS} with
   * `suppressed`, how many of that kind went at debug since, as `bus_listener_error` does.
   */
  #logRepeated(level: 'error' | 'warn', event: LogEvent, kind: string, fields: LogFields): void {
    // By line and case: a detach in an outage fails both user_attach_error's and listener_lease_error's release.
    const key = `${event}:${kind}`;
    let throttle = this.#repeated.get(key);
    if (!throttle) {
      throttle = new LogThrottle();
      this.#repeated.set(key, throttle);
    }
    const suppressed = throttle.take(Date.now());
    if (suppressed === undefined) this.#o.logger.debug(event, fields);
    else this.#o.logger[level](event, { ...fields, suppressed });
  }

  /** Starts proving this instance alive and following the holders of standby users (liveness failover). */
  start(): void {
    this.#failover?.start();
  }

  /** A holder of users served here on standby is dead: take each of them over now, from it exactly. */
  #holderDead(owner: string): void {
    for (const [userId, state] of this.#users) {
      const from = state.holder;
      if (!state.standby || from?.owner !== owner) continue;
      void this.#enqueue(userId, state, () => this.#attach(userId, state, from));
    }
  }

  /** On standby: who holds the user's lease, followed for liveness failover. */
  async #followHolder(userId: string, state: UserState): Promise<void> {
    const failover = this.#failover;
    if (!failover) return;
    state.holder = await this.#o.lease.holder(userId).catch(() => undefined);
    if (state.holder) failover.follow(userId, state.holder.owner);
    else failover.unfollow(userId);
  }

  #unfollow(userId: string, state: UserState): void {
    state.holder = undefined;
    this.#failover?.unfollow(userId);
  }

  #user(userId: string): UserState {
    let state = this.#users.get(userId);
    if (!state) {
      state = {
        sessions: 0,
        attached: false,
        detaches: NO_DETACHES,
        timer: undefined,
        chain: undefined,
        generation: 0,
      };
      this.#users.set(userId, state);
    }
    return state;
  }

  #enqueue(userId: string, state: UserState, step: () => Promise<void>): Promise<void> {
    // Each step runs after the previous one settles; a failure never breaks the chain.
    const next = (state.chain ?? Promise.resolve()).then(step).catch((error: unknown) => {
      const fields = { uid: userId, error: String(error) };
      // A refusal comes once per session opened; any other failure again at every retry, for every user.
      if (error instanceof ListenerRefusal) this.#o.logger.error('user_attach_error', fields);
      else this.#logRepeated('error', 'user_attach_error', 'attach', fields);
    });
    // The state is forgotten only once nothing more is queued on it: a session opening
    // meanwhile must join this chain, not start a second one beside it.
    const tail: Promise<void> = next.then(() => {
      if (state.chain !== tail) return;
      state.chain = undefined;
      this.#forgetIfIdle(userId, state);
    });
    state.chain = tail;
    return next;
  }

  /** A session of the user opened. Resolves once the user's listeners are attached. */
  sessionOpened(userId: string, sessionId: string): Promise<void> {
    const state = this.#user(userId);
    state.sessions++;
    state.generation++;
    if (state.timer) {
      clearTimeout(state.timer);
      state.timer = undefined;
      this.#pendingCount--;
      this.#cancelled++;
      this.#o.hooks.emit('detach.cancelled', { uid: userId, sessionId });
    }
    if (state.chain === undefined && this.#o.sources.length === 0 && !this.#o.workflowSource) {
      // Nothing configured to attach (the common case without LISTENERS_FILE): no chain of
      // promises per hello, just the bookkeeping, still after the caller's own moments.
      queueMicrotask(() => this.#markAttached(userId, state));
      return ATTACHED;
    }
    return this.#enqueue(userId, state, () => this.#attach(userId, state));
  }

  /** {@link #attach} when there is nothing to hold: marks the user attached, no lease, no timers. */
  #markAttached(userId: string, state: UserState): void {
    if (state.attached || state.sessions === 0 || this.#closed) return;
    state.attached = true;
    this.#attachedCount++;
    this.#o.hooks.emit('listener.attached', { uid: userId, listeners: 0 });
  }

  /** A session of the user closed; the last one starts the detach delay. */
  sessionClosed(userId: string, sessionId: string): void {
    const state = this.#users.get(userId);
    if (!state || state.sessions === 0) return;
    state.sessions--;
    if (state.sessions > 0 || this.#closed) return;
    this.#o.hooks.emit('detach.delay_start', { uid: userId, sessionId, delayMs: this.#o.detachDelayMs });
    this.#pendingCount++;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.#pendingCount--;
      void this.#enqueue(userId, state, () => this.#detach(userId, state));
    }, this.#o.detachDelayMs);
  }

  /** Whether WORKFLOW.watch attaches real listeners (a workflow source is configured). */
  get workflowsEnabled(): boolean {
    return this.#o.workflowSource !== undefined;
  }

  /**
   * The owner of a job as the workflow source sees it; undefined when it does not exist (or no source).
   * Rejects after `watchReplyMs` without an answer: the Firestore client retries a read of an
   * unreachable Firestore for longer than an RPC may run (`RPC_TIMEOUT_MS`), so WORKFLOW.watch
   * answers `unavailable` (retry) rather than `timeout`.
   */
  async workflowOwner(jobId: string): Promise<string | undefined> {
    const source = this.#o.workflowSource;
    if (!source) return undefined;
    const read = await beforeDeadline(
      source.owner(jobId).then((owner) => ({ owner })),
      this.#o.watchReplyMs,
    );
    if (!read) throw new Error(`the owner of job ${jobId} was not read within ${this.#o.watchReplyMs} ms`);
    return read.owner;
  }

  /**
   * Adds a watch of the user (WORKFLOW.watch) to the fleet's set; the holder of the
   * user's lease keeps one listener per watched job, so two tabs on two instances
   * watching one job get one listener and each change once. When this instance is
   * the holder the listener is attached before this resolves (rejecting when it
   * cannot attach); otherwise the holder is told over the instance channel and attaches
   * it at once (without a channel, or for a holder that does not answer: at its next
   * lease renewal). Either way this resolves once the job's initial state is published
   * (at most `watchReplyMs` later), so a change written after it is an event of its own.
   * A call for a job whose watch is opening here already gets that call's outcome.
   */
  async watchWorkflow(userId: string, jobId: string): Promise<void> {
    const state = this.#user(userId);
    if (!this.#o.workflowSource) {
      // Nothing to listen with: watches are only counted, here.
      const max = this.#o.workflowWatchesMax;
      if (state.workflows?.has(jobId)) return;
      const watches = state.workflows?.size ?? 0;
      if (max > 0 && watches >= max) throw new WorkflowWatchLimitError(watches, max);
      state.workflows ??= new Map();
      state.workflows.set(jobId, undefined);
      this.#workflowCount++;
      return;
    }
    const key = `${userId}\n${jobId}`;
    // One opening at a time per job of the user: a call arriving while one waits gets that call's
    // answer (both unavailable, or both success), never a success the first one's failure takes back.
    let opening = this.#watchOpens.get(key);
    if (!opening) {
      opening = this.#openWatch(userId, state, jobId, key).finally(() => this.#watchOpens.delete(key));
      this.#watchOpens.set(key, opening);
    }
    return opening;
  }

  /** {@link watchWorkflow} with a workflow source, one call at a time per job of the user (`key`). */
  async #openWatch(userId: string, state: UserState, jobId: string, key: string): Promise<void> {
    const max = this.#o.workflowWatchesMax;
    // Watched here already (an earlier call answered): the watch stands whatever its listener does now.
    const watchedHere = state.workflows?.has(jobId) === true;
    let answered!: () => void;
    this.#statusHolds.set(
      key,
      new Promise<void>((resolve) => {
        answered = resolve;
      }),
    );
    try {
      if (!(await this.#o.workflowWatches.add(userId, jobId, max))) {
        // The count, for the caller's answer: read after the refusal (at least `max` when the read fails).
        const watched = await this.#o.workflowWatches.list(userId).catch(() => []);
        throw new WorkflowWatchLimitError(Math.max(watched.length, max), max);
      }
      // In the set again: a removal still pending from an earlier failed watch of it is not wanted now.
      state.unwatched?.delete(jobId);
      this.#workflowErrors.set(key, null);
      await this.#enqueue(userId, state, () => this.#syncWorkflows(userId, state));
      const error = this.#workflowErrors.get(key);
      this.#workflowErrors.delete(key);
      if (error !== null && error !== undefined) {
        // Not attached here: take it out of the set, so no holder retries a watch the caller was told failed.
        if (!state.workflows?.has(jobId)) await this.#takeBack(userId, state, jobId);
        throw error;
      }
      try {
        await this.#initialState(userId, state, jobId, !watchedHere);
      } catch (error) {
        // Answered as failed, so not watched: out of the set and its listener released, as an unwatch
        // (its failure never told to the stream: the answer says it).
        await this.#takeBack(userId, state, jobId);
        throw error;
      }
    } finally {
      this.#workflowErrors.delete(key);
      this.#statusHolds.delete(key);
      answered();
    }
  }

  /**
   * A watch answered as failed: out of the fleet's set, and its listener here closed before the
   * answer whatever the set did (its status hold ends with the answer: a listener left running
   * would tell the stream of a watch the caller was told is not watched). A removal that fails
   * (Redis away) is kept in {@link UserState.unwatched}: not attached again here while this
   * instance holds the user's listeners. Not retried: a removal landing later could take out a watch
   * of the job made since, here or on another instance (answered success there).
   */
  async #takeBack(userId: string, state: UserState, jobId: string): Promise<void> {
    try {
      await this.#o.workflowWatches.remove(userId, jobId);
    } catch (error) {
      this.#o.logger.warn('workflow_watch_error', { uid: userId, job_id: jobId, op: 'remove', error: String(error) });
      state.unwatched ??= new Set();
      state.unwatched.add(jobId);
    }
    await this.#enqueue(userId, state, () => this.#closeWorkflow(userId, state, jobId));
  }

  /** Closes the listener of one watched job held here (nothing when there is none). */
  async #closeWorkflow(userId: string, state: UserState, jobId: string): Promise<void> {
    const workflows = state.workflows;
    if (!workflows?.has(jobId)) return;
    const detach = workflows.get(jobId);
    workflows.delete(jobId);
    state.workflowReady?.delete(jobId);
    this.#workflowCount--;
    await detach?.().catch((error: unknown) =>
      this.#o.logger.warn('workflow_watch_error', { uid: userId, job_id: jobId, op: 'detach', error: String(error) }),
    );
  }

  /**
   * Waits (bounded) until the watch's initial state is published, here or on the holder. Here,
   * with `checkOpen` (a new watch): rejects with a {@link WorkflowWatchOpenError} when the listener
   * has not opened by then and is failing (a refused query, Firestore away); one only slow to
   * open (no failure yet) resolves.
   */
  async #initialState(userId: string, state: UserState, jobId: string, checkOpen: boolean): Promise<void> {
    const ready = state.workflowReady?.get(jobId);
    if (ready) {
      const opened = await beforeDeadline(
        ready.then(() => true),
        this.#o.watchReplyMs,
      );
      const kind = opened || !checkOpen ? undefined : state.workflows?.get(jobId)?.failing?.();
      if (kind !== undefined) throw new WorkflowWatchOpenError(jobId, kind);
      return;
    }
    const channel = this.#o.channel;
    if (!channel || state.token !== undefined) return;
    const holder = await this.#o.lease.holder(userId).catch(() => undefined);
    if (!holder || holder.owner === this.#o.instanceId) return; // none yet: whoever takes it reads the set
    const id = randomUUID();
    const answered = new Promise<void>((resolve) => this.#watchReplies.set(id, resolve));
    try {
      await channel.send(holder.owner, { type: 'watch', uid: userId, job_id: jobId, from: this.#o.instanceId, id });
      await beforeDeadline(answered, this.#o.watchReplyMs);
    } catch (error) {
      this.#o.logger.warn('workflow_watch_error', { uid: userId, job_id: jobId, op: 'notify', error: String(error) });
    } finally {
      this.#watchReplies.delete(id);
    }
  }

  /**
   * A message of another instance about a user's listeners: `watch` (a WORKFLOW.watch it
   * received: attach now if this instance holds the user's lease, then answer) or the
   * answer to one this instance sent.
   */
  onControl(message: ListenerControlMessage): void {
    if (message.type === 'watched') {
      this.#watchReplies.get(message.id)?.();
      return;
    }
    const { uid, job_id: jobId, from, id } = message;
    const answer = (ok: boolean) => {
      void this.#o.channel?.send(from, { type: 'watched', uid, id, ok }).catch(() => {});
    };
    const state = this.#users.get(uid);
    if (!state) {
      answer(false);
      return;
    }
    // Watched again from another instance (added to the set before this message): wanted now.
    state.unwatched?.delete(jobId);
    // Behind an attach in progress (the lease just taken): attached by then, or not the holder.
    void this.#enqueue(uid, state, () => this.#syncWorkflows(uid, state)).then(async () => {
      const ready = state.workflowReady?.get(jobId);
      if (ready) await beforeDeadline(ready, this.#o.watchReplyMs);
      answer(ready !== undefined);
    });
  }

  /**
   * Ends a watch of the user for the whole fleet (every tab: the events go to the
   * user's stream, which every tab reads); false when it was not watched.
   */
  async unwatchWorkflow(userId: string, jobId: string): Promise<boolean> {
    const state = this.#users.get(userId);
    if (!this.#o.workflowSource) {
      if (!state?.workflows?.has(jobId)) return false;
      state.workflows.delete(jobId);
      this.#workflowCount--;
      return true;
    }
    const removed = await this.#o.workflowWatches.remove(userId, jobId);
    if (state) await this.#enqueue(userId, state, () => this.#syncWorkflows(userId, state));
    return removed;
  }

  /**
   * On the holder of the user's lease: opens a listener for each job in the fleet's
   * watch set and closes those no longer in it. Elsewhere: nothing.
   */
  async #syncWorkflows(userId: string, state: UserState): Promise<void> {
    const source = this.#o.workflowSource;
    if (!source || !state.attached || state.token === undefined) return;
    let wanted: Set<string>;
    try {
      wanted = new Set(await this.#o.workflowWatches.list(userId));
    } catch (error) {
      this.#o.logger.warn('workflow_watch_error', { uid: userId, op: 'list', error: String(error) });
      return; // keep what runs; the next renewal reads again
    }
    // Answered as failed, still in the set only because its removal failed: not watched.
    for (const jobId of state.unwatched ?? []) wanted.delete(jobId);
    state.workflows ??= new Map();
    const workflows = state.workflows;
    for (const jobId of [...workflows.keys()]) {
      if (!wanted.has(jobId)) await this.#closeWorkflow(userId, state, jobId);
    }
    const token = state.token;
    const context = this.#context(userId, state, token);
    for (const jobId of wanted) {
      if (workflows.has(jobId)) continue;
      try {
        const emit = (event: AppEvent) => this.#o.emit(userId, event, context.fence);
        // Opened for a watch call waiting here: its failures are told once that call is answered.
        const holdStatus = this.#statusHolds.get(`${userId}\n${jobId}`);
        const detach = await source.attach(userId, jobId, emit, holdStatus ? { ...context, holdStatus } : context);
        workflows.set(jobId, detach);
        if (detach.ready) {
          state.workflowReady ??= new Map();
          state.workflowReady.set(jobId, detach.ready);
        }
        this.#workflowCount++;
      } catch (error) {
        const key = `${userId}\n${jobId}`;
        if (this.#workflowErrors.has(key)) this.#workflowErrors.set(key, error);
        this.#o.logger.warn('workflow_watch_error', { uid: userId, job_id: jobId, op: 'attach', error: String(error) });
      }
    }
  }

  /** Closes the workflow listeners held here (`handover`: the next holder resumes them). */
  async #releaseWorkflows(userId: string, state: UserState, handover: boolean): Promise<void> {
    const workflows = state.workflows;
    if (!workflows) return;
    const detaches = this.#o.workflowSource ? [...workflows.values()] : [];
    this.#workflowCount -= workflows.size;
    workflows.clear();
    state.workflowReady?.clear();
    const released = await Promise.allSettled(detaches.map((d) => d?.({ handover })));
    for (const r of released) {
      if (r.status === 'rejected') {
        this.#o.logger.warn('workflow_watch_error', { uid: userId, op: 'detach', error: String(r.reason) });
      }
    }
  }

  /** Takes the user's lease (`from`: over from that holder, found dead) and attaches the listeners. */
  async #attach(userId: string, state: UserState, from?: LeaseHolder): Promise<void> {
    if (state.attached || state.sessions === 0 || this.#closed) return;
    if (this.#o.sources.length === 0 && !this.#o.workflowSource) {
      // Nothing to hold once in the fleet: no lease, no timers.
      this.#markAttached(userId, state);
      return;
    }
    const { lease, instanceId: owner, leaseTtlMs } = this.#o;
    let token: number | undefined;
    // The lease runs from before the call: a renewal is due a third of the TTL after this.
    const acquiredAt = Date.now();
    try {
      const got = from ? lease.takeOver(userId, from, owner, leaseTtlMs) : lease.acquire(userId, owner, leaseTtlMs);
      token = (await got)?.token;
    } catch (error) {
      this.#logRepeated('warn', 'listener_lease_error', 'acquire', {
        uid: userId,
        op: 'acquire',
        error: String(error),
      });
    }
    if (token === undefined) {
      // Another instance holds the user's listeners (or Redis is away): poll until it lets go.
      this.#setStandby(state, true);
      await this.#followHolder(userId, state);
      this.#o.hooks.emit('lease.standby', { uid: userId, ...(state.holder ? { holder: state.holder.owner } : {}) });
      this.#scheduleLease(userId, state, leaseTtlMs / 4);
      return;
    }
    this.#setStandby(state, false);
    this.#unfollow(userId, state);
    // Renewed from now on: opening the listeners may outlast the lease (a company listener reads
    // its whole collection first, on a slow Firestore), and the renewal steps wait behind this one.
    const held = new AttachingLease(acquiredAt, leaseTtlMs, (since) => this.#renewOnce(userId, token, since));
    const context = this.#context(userId, state, token);
    const emit = (event: AppEvent) => (held.open ? this.#o.emit(userId, event, context.fence) : fencedEmit(userId));
    const attached: Detach[] = [];
    try {
      for (const source of this.#o.sources) {
        attached.push(await source.attach(userId, emit, context));
      }
      // Another instance may hold the lease by now: it runs the listeners, not this one.
      if (held.lapsed) throw new Error(`the lease lapsed while the listeners attached (${held.why})`);
    } catch (error) {
      held.stop(false);
      // All or nothing: release what did attach so a retry starts clean, and never keep
      // the lease without listeners (another instance may succeed where this one failed).
      await Promise.allSettled(attached.map((d) => d({ handover: true })));
      await lease.release(userId, owner, token).catch(() => {});
      // A refusal would be met again at every try (logged each time): the next session's open tries again.
      if (!(error instanceof ListenerRefusal)) this.#scheduleLease(userId, state, leaseTtlMs / 3);
      throw error;
    }
    state.detaches = attached;
    state.attached = true;
    state.token = token;
    state.renewedAt = held.renewedAt;
    this.#attachedCount++;
    let lapsed: boolean;
    try {
      this.#o.hooks.emit('lease.acquired', {
        uid: userId,
        token,
        listeners: attached.length,
        ...(from ? { from: from.owner } : {}),
      });
      this.#o.hooks.emit('listener.attached', { uid: userId, listeners: attached.length, token });
      await this.#syncWorkflows(userId, state);
    } finally {
      lapsed = held.stop(true);
      state.renewedAt = held.renewedAt;
    }
    if (lapsed) {
      await this.#lost(userId, state, token, held.why);
      return;
    }
    this.#scheduleLease(userId, state, Math.max(0, held.renewedAt + leaseTtlMs / 3 - Date.now()));
  }

  /** What a source attached under the lease `token` is told. */
  #context(userId: string, state: UserState, token: number): AttachContext {
    const readSince = this.#o.readSince;
    state.carry ??= new CarryOver();
    return {
      fence: { owner: this.#o.instanceId, token },
      onFenced: () => void this.#enqueue(userId, state, () => this.#lost(userId, state, token, 'fenced')),
      carry: state.carry,
      hooks: this.#o.hooks,
      ...(readSince ? { readSince: (cursor: Cursor) => readSince(userId, cursor) } : {}),
    };
  }

  #setStandby(state: UserState, standby: boolean): void {
    if ((state.standby ?? false) === standby) return;
    state.standby = standby;
    this.#standbyCount += standby ? 1 : -1;
  }

  /** Renews (holder) or polls (standby) the user's lease after `ms`, on the user's chain. */
  #scheduleLease(userId: string, state: UserState, ms: number): void {
    clearTimeout(state.leaseTimer);
    state.leaseTimer = undefined;
    if (this.#closed || (!state.attached && state.sessions === 0)) return;
    state.leaseTimer = setTimeout(() => {
      state.leaseTimer = undefined;
      void this.#enqueue(userId, state, () => this.#leaseTick(userId, state));
    }, ms);
    state.leaseTimer.unref();
  }

  async #leaseTick(userId: string, state: UserState): Promise<void> {
    if (state.attached && state.token !== undefined) {
      const token = state.token;
      const renewingAt = Date.now();
      const renewed = await this.#renewOnce(userId, token, state.renewedAt ?? 0);
      if (renewed) {
        state.renewedAt = renewingAt;
        this.#o.hooks.emit('lease.renewed', { uid: userId, token });
        // Redis is reachable and the lease ours: marks it failed to take meanwhile are stored now.
        state.carry?.renewed();
      }
      // Unknown (Redis away) only until the lease would have expired: past that another instance may hold it.
      if (renewed === false || Date.now() - (state.renewedAt ?? 0) >= this.#o.leaseTtlMs) {
        await this.#lost(userId, state, token, renewed === false ? 'renew_refused' : 'renew_failed');
        return;
      }
      this.#scheduleLease(userId, state, this.#o.leaseTtlMs / 3);
      // Watches received by other instances since the last renewal.
      await this.#syncWorkflows(userId, state);
      return;
    }
    await this.#attach(userId, state);
  }

  /**
   * Renews the user's lease `token`, last renewed at `renewedAt`: true, false (refused: another
   * instance holds it) or undefined (failed, or no answer before the lease would expire: the
   * holder must stop by then, see beforeDeadline).
   */
  async #renewOnce(userId: string, token: number, renewedAt: number): Promise<boolean | undefined> {
    try {
      return await beforeDeadline(
        this.#o.lease.renew(userId, this.#o.instanceId, token, this.#o.leaseTtlMs),
        renewedAt + this.#o.leaseTtlMs - Date.now(),
      );
    } catch (error) {
      this.#logRepeated('warn', 'listener_lease_error', 'renew', { uid: userId, op: 'renew', error: String(error) });
      return undefined;
    }
  }

  /** The lease went to another instance: release the listeners, keep what it needs to resume, poll again. */
  async #lost(userId: string, state: UserState, token: number, reason: string): Promise<void> {
    if (!state.attached || state.token !== token) return;
    this.#o.hooks.emit('lease.lost', { uid: userId, token, reason });
    await this.#releaseListeners(userId, state, true);
    if (state.sessions > 0) {
      this.#setStandby(state, true);
      this.#scheduleLease(userId, state, this.#o.leaseTtlMs / 4);
    }
  }

  /** Closes the sources' listeners and the workflow listeners held here (not the lease). */
  async #releaseListeners(userId: string, state: UserState, handover: boolean): Promise<void> {
    if (state.attached) await this.#releaseWorkflows(userId, state, handover);
    const detaches = state.detaches;
    const wasAttached = state.attached;
    state.detaches = NO_DETACHES;
    if (wasAttached) this.#attachedCount--;
    state.attached = false;
    state.token = undefined;
    // A failed watch's mark lasts one holding: the next holder, here again or elsewhere, opens what the set says.
    state.unwatched = undefined;
    const released = await Promise.allSettled(detaches.map((d) => d({ handover })));
    for (const r of released) {
      if (r.status === 'rejected') {
        this.#logRepeated('warn', 'user_attach_error', 'release', { uid: userId, error: String(r.reason) });
      }
    }
    if (wasAttached) this.#o.hooks.emit('listener.detached', { uid: userId, listeners: detaches.length, handover });
  }

  async #detach(userId: string, state: UserState): Promise<void> {
    if (state.sessions > 0) {
      // A session came back after the timer fired but before this step ran: it wins.
      this.#cancelled++;
      this.#o.hooks.emit('detach.cancelled', { uid: userId, late: true });
      return;
    }
    const generation = state.generation;
    const startedAt = new Date();
    // A reconnect that landed on another instance within the delay cancels the cleanup there too.
    const elsewhere = await this.#o.presentElsewhere(userId).catch((error: unknown) => {
      this.#logRepeated('warn', 'user_attach_error', 'presence', { uid: userId, error: `presence: ${String(error)}` });
      return false; // the cleanup below decides atomically anyway
    });
    if (state.sessions > 0) return this.#detach(userId, state);
    if (elsewhere) {
      this.#cancelled++;
      this.#o.hooks.emit('detach.cancelled', { uid: userId, elsewhere: true });
      await this.#release(userId, state, true);
      return;
    }
    this.#executed++;
    this.#o.hooks.emit('detach.executing', { uid: userId, listeners: state.detaches.length });
    await this.#release(userId, state, false);
    await this.#cleanup(userId, state, generation, startedAt);
    this.#o.hooks.emit('detach.complete', { uid: userId });
  }

  /**
   * Releases the user's listeners on this instance, then their lease (in that order:
   * the next holder never runs beside this one). `handover`: sessions remain elsewhere.
   */
  async #release(userId: string, state: UserState, handover: boolean): Promise<void> {
    clearTimeout(state.leaseTimer);
    state.leaseTimer = undefined;
    this.#setStandby(state, false);
    this.#unfollow(userId, state);
    const token = state.token;
    await this.#releaseWorkflows(userId, state, handover);
    await this.#releaseListeners(userId, state, handover);
    // The user leaves this instance: the next attach here (if any) resumes from the store alone.
    state.carry?.clear();
    if (!handover && this.#o.workflowSource) {
      // The user left the fleet: their watches end with them.
      await this.#o.workflowWatches
        .clear(userId)
        .catch((error: unknown) =>
          this.#o.logger.warn('workflow_watch_error', { uid: userId, op: 'clear', error: String(error) }),
        );
    }
    if (token !== undefined) {
      await this.#o.lease.release(userId, this.#o.instanceId, token).then(
        () => this.#o.hooks.emit('lease.released', { uid: userId, token, handover }),
        (error: unknown) =>
          this.#logRepeated('warn', 'listener_lease_error', 'release', {
            uid: userId,
            op: 'release',
            error: String(error),
          }),
      );
    }
  }

  /**
   * The registry half of a detach, on the one instance whose claim won the departure
   * (several instances reach here at once when the user left all of them together).
   * Claim and cleanup are retried until they succeed or a session returns.
   */
  async #cleanup(userId: string, state: UserState, generation: number, startedAt: Date): Promise<void> {
    let delay = this.#o.cleanupRetryMs;
    let claimed = false;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!claimed) {
          let claim = await this.#o.claimCleanup(userId);
          // Present by this instance's own entries of closed sessions (Redis was away when they
          // closed): without them the departure is this one's, else it would never be cleaned up.
          // Asked again whatever was removed: a left-over entry may have expired in between.
          if (claim === 'present') {
            await this.#o.removeLeftEntries(userId);
            claim = await this.#o.claimCleanup(userId);
          }
          if (claim !== 'won') {
            this.#cleanupsSkipped++;
            this.#o.hooks.emit('registry.cleanup', { uid: userId, phase: 'skipped', reason: claim });
            return;
          }
          claimed = true;
        }
        this.#o.hooks.emit('registry.cleanup', { uid: userId, phase: 'start', attempt });
        const outcome = await this.#o.cleanupRegistry(userId, startedAt);
        // `present`: a session opened on another instance since the claim; the atomic check kept the
        // registry. Nothing was removed: counted with the skipped ones, so that the fleet's
        // `registry_cleanups` counts removals only.
        if (outcome === 'present') this.#cleanupsSkipped++;
        else this.#cleanups++;
        this.#o.hooks.emit('registry.cleanup', { uid: userId, phase: 'success', attempt, outcome });
        return;
      } catch (error) {
        this.#cleanupErrors++;
        this.#o.hooks.emit('registry.cleanup', { uid: userId, phase: 'error', attempt, error: String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, 30_000);
      // A returning session re-registers itself; a cleanup now would remove its fresh entry.
      if (state.generation !== generation || this.#closed) return;
    }
  }

  #forgetIfIdle(userId: string, state: UserState): void {
    if (state.sessions === 0 && !state.attached && !state.timer && !state.leaseTimer && !state.workflows?.size) {
      if (this.#users.get(userId) === state) this.#users.delete(userId);
    }
  }

  /** Settles once every queued attach/detach has run (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const chains = [...this.#users.values()].map((s) => s.chain);
      await Promise.all(chains);
      const after = [...this.#users.values()].map((s) => s.chain);
      if (after.length === chains.length && after.every((c, i) => c === chains[i])) return;
    }
  }

  /**
   * Shutdown: runs every pending detach now instead of waiting for its timer,
   * so registry entries are not left behind, then waits for all of them.
   *
   * `reconnectWindowMs`: how long the clients this shutdown closed were told to take to come
   * back (on another instance of the fleet). Pending detaches wait that long first, so that a
   * user who came back elsewhere hands the listeners over (the resume marks and the workflow
   * watches stay for the next holder, the registry is not cleaned) instead of leaving the fleet;
   * a user who did not come back is cleaned up as before. 0 (one instance, nowhere else to go):
   * no wait.
   */
  async flush(reconnectWindowMs = 0): Promise<void> {
    let pending = false;
    for (const state of this.#users.values()) pending ||= state.timer !== undefined;
    if (pending && reconnectWindowMs > 0) await new Promise((resolve) => setTimeout(resolve, reconnectWindowMs));
    this.#closed = true;
    for (const [userId, state] of this.#users) {
      if (state.timer) {
        clearTimeout(state.timer);
        state.timer = undefined;
        this.#pendingCount--;
        void this.#enqueue(userId, state, () => this.#detach(userId, state));
      }
    }
    await this.idle();
    // Every lease is released now: the proof can go (nobody needs to wait for it to lapse).
    await this.#failover?.stop();
  }

  /** Whether the user's listener set is attached. */
  isAttached(userId: string): boolean {
    return this.#users.get(userId)?.attached ?? false;
  }

  /** Users with a detach timer running (for /debug). */
  pendingDetaches(): string[] {
    return [...this.#users].filter(([, s]) => s.timer).map(([uid]) => uid);
  }

  counters(): ListenerCounters {
    return {
      attached: this.#attachedCount,
      workflows: this.#workflowCount,
      pendingDetaches: this.#pendingCount,
      detachCancelled: this.#cancelled,
      detachExecuted: this.#executed,
      cleanupErrors: this.#cleanupErrors,
      cleanups: this.#cleanups,
      cleanupsSkipped: this.#cleanupsSkipped,
      standby: this.#standbyCount,
    };
  }

  /** Counters of the sources that keep them (reads, events, errors), merged. */
  sourceStats(): ListenerSourceStats | undefined {
    if (this.#o.stats) return this.#o.stats();
    const all = this.#o.sources.flatMap((s) => (s.stats ? [s.stats()] : []));
    return all.length <= 1 ? all[0] : mergeStats(all);
  }
}

/**
 * How long an attach may keep its lease renewed, in lease TTLs: an attach that never ends (a
 * Firestore read that hangs) must not keep the user's listeners from every instance for good.
 * Past it the lease is left to lapse, and another instance takes the user over.
 */
const ATTACH_RENEWED_TTLS = 4;

/**
 * A lease just taken, renewed while its holder attaches the listeners: the manager's renewal
 * steps run on the user's chain, behind the attach. {@link lapsed} once a renewal was refused or
 * none answered for a TTL, or {@link ATTACH_RENEWED_TTLS} passed: another instance may hold the
 * lease then, and the holder must let go.
 */
class AttachingLease {
  renewedAt: number;
  readonly #acquiredAt: number;
  readonly #ttlMs: number;
  readonly #renew: (renewedAt: number) => Promise<boolean | undefined>;
  #refused = false;
  #timer: NodeJS.Timeout | undefined;
  /** While attaching: open until the lease lapses; after {@link stop}, as it was left. */
  #open: boolean | undefined;

  constructor(acquiredAt: number, ttlMs: number, renew: (renewedAt: number) => Promise<boolean | undefined>) {
    this.renewedAt = acquiredAt;
    this.#acquiredAt = acquiredAt;
    this.#ttlMs = ttlMs;
    this.#renew = renew;
    this.#schedule(acquiredAt + ttlMs / 3 - Date.now());
  }

  get lapsed(): boolean {
    return this.#refused || Date.now() - this.renewedAt >= this.#ttlMs;
  }

  /** Why it lapsed, as `lease.lost` says it. */
  get why(): 'renew_refused' | 'renew_failed' {
    return this.#refused ? 'renew_refused' : 'renew_failed';
  }

  /**
   * Whether the listeners attached under it may publish: while attaching, until it lapses; once
   * kept, for good (the holder's renewals take over, and let go in time); once given up, never.
   */
  get open(): boolean {
    return this.#open ?? !this.lapsed;
  }

  /** Stops renewing; `keep`: the holder goes on with the lease (unless it lapsed). Answers whether it lapsed. */
  stop(keep: boolean): boolean {
    clearTimeout(this.#timer);
    const lapsed = this.lapsed;
    this.#open ??= keep && !lapsed;
    return lapsed;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, ms));
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const renewingAt = Date.now();
    // Attaching for too long: no more renewals, the lease lapses a TTL after the last one.
    if (renewingAt - this.#acquiredAt >= ATTACH_RENEWED_TTLS * this.#ttlMs) return;
    const renewed = await this.#renew(this.renewedAt);
    if (this.#open !== undefined) return; // stopped meanwhile: the holder's own renewals go on
    if (renewed) this.renewedAt = renewingAt;
    else if (renewed === false) this.#refused = true;
    if (!this.lapsed) this.#schedule(this.#ttlMs / 3);
  }
}

/** What an emit of listeners whose lease lapsed answers: the source stops, as on a fenced append. */
function fencedEmit(userId: string): Promise<never> {
  return Promise.reject(
    new PublishError('fenced', `the listener lease of ${userId} lapsed while its listeners attached: not published`),
  );
}

function mergeStats(all: ListenerSourceStats[]): ListenerSourceStats {
  const failedAt = all.flatMap((s) => (s.lastErrorAt === undefined ? [] : [s.lastErrorAt]));
  const lastErrorAt = failedAt.length === 0 ? undefined : Math.max(...failedAt);
  const sum = (pick: (s: ListenerSourceStats) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(pick(s))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    open: all.reduce((a, s) => a + s.open, 0),
    reads: {
      total: all.reduce((a, s) => a + s.reads.total, 0),
      by_listener: sum((s) => s.reads.by_listener),
      users_tracked: all.reduce((a, s) => a + s.reads.users_tracked, 0),
      top_readers: all
        .flatMap((s) => s.reads.top_readers)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10),
    },
    events: sum((s) => s.events),
    deduplicated: sum((s) => s.deduplicated),
    errors: sum((s) => s.errors),
    restarts: all.reduce((a, s) => a + s.restarts, 0),
    ...(all.some((s) => s.failing) ? { failing: sum((s) => s.failing ?? {}) } : {}),
    ...(lastErrorAt === undefined ? {} : { lastErrorAt }),
  };
}
