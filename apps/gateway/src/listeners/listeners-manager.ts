import type { AppEvent } from '@livebus/protocol';
import type { Logger } from '../logger';
import type { Detach, ListenerSource } from './listener-source';

/** Options of {@link ListenersManager}. */
export interface ListenersManagerOptions {
  sources: readonly ListenerSource[];
  /** @default 5_000 */
  detachDelayMs: number;
  logger: Logger;
  /**
   * Removes the user's registry entry once their listeners are released; `detachStartedAt`
   * lets the store keep what a reconnect registered in the meantime. In a fleet the
   * store decides atomically and answers `present` when another instance holds a
   * session of the user: then nothing is removed.
   */
  cleanupRegistry: (userId: string, detachStartedAt: Date) => Promise<'cleaned' | 'present'>;
  /**
   * Whether another instance of the fleet holds a session of the user (the fleet's
   * presence directory); a detach whose user is still present elsewhere releases
   * this instance's listeners but cleans nothing. @default never (one instance)
   */
  presentElsewhere?: (userId: string) => Promise<boolean>;
  /** Where events from the sources go. */
  emit: (userId: string, event: AppEvent) => void;
  /** Called for every detach outcome (metrics). */
  onDetachOutcome?: (outcome: 'cancelled' | 'executed') => void;
  /** First retry delay of a failed cleanup; doubles up to 30 s. @default 250 */
  cleanupRetryMs?: number;
}

/** Counters exposed on /healthz, /ws-metrics and /metrics. */
export interface ListenerCounters {
  /** Users whose listener set is attached. */
  attached: number;
  /** Workflow listeners (WORKFLOW.watch) across users. */
  workflows: number;
  /** Users waiting for their detach timer. */
  pendingDetaches: number;
  detachCancelled: number;
  detachExecuted: number;
  cleanupErrors: number;
}

/*
 * Per-user lifecycle. Session counts change synchronously; attach and detach
 * run one at a time on the user's promise chain, so they never overlap:
 *
 *   sessions 0 -> 1:  cancel a pending timer (user_detach_cancelled) or
 *                     enqueue attach (no-op if already attached)
 *   sessions 1 -> 0:  start the timer (user_detach_delay_start)
 *   timer fires:      enqueue detach (user_detach_executing), which re-checks
 *                     the count when it runs: a session that arrived in the
 *                     meantime wins and nothing is released
 *   detach:           release listeners, REGISTRY_CLEANUP_* (retried until it
 *                     succeeds or a session returns), ws_cleanup_complete
 */
interface UserState {
  sessions: number;
  attached: boolean;
  detaches: Detach[];
  workflows: Set<string>;
  timer: NodeJS.Timeout | undefined;
  chain: Promise<void>;
  /** Bumped when a session opens: tells a retrying cleanup it is no longer wanted. */
  epoch: number;
}

/** Attaches and releases each user's listeners, with the detach delay that a reconnect cancels. */
export class ListenersManager {
  readonly #users = new Map<string, UserState>();
  readonly #o: Required<ListenersManagerOptions>;
  #cancelled = 0;
  #executed = 0;
  // Maintained on every transition so /healthz and /metrics read them in O(1).
  #attachedCount = 0;
  #pendingCount = 0;
  #workflowCount = 0;
  #cleanupErrors = 0;
  #closed = false;

  constructor(options: ListenersManagerOptions) {
    this.#o = { cleanupRetryMs: 250, onDetachOutcome: () => {}, presentElsewhere: async () => false, ...options };
  }

  #user(userId: string): UserState {
    let state = this.#users.get(userId);
    if (!state) {
      state = {
        sessions: 0,
        attached: false,
        detaches: [],
        workflows: new Set(),
        timer: undefined,
        chain: Promise.resolve(),
        epoch: 0,
      };
      this.#users.set(userId, state);
    }
    return state;
  }

  #enqueue(userId: string, state: UserState, step: () => Promise<void>): Promise<void> {
    // Each step runs after the previous one settles; a failure never breaks the chain.
    const next = state.chain.then(step).catch((error: unknown) => {
      this.#o.logger.error('user_attach_error', { uid: userId, error: String(error) });
    });
    // The state is forgotten only once nothing more is queued on it: a session opening
    // meanwhile must join this chain, not start a second one beside it.
    const tail: Promise<void> = next.then(() => {
      if (state.chain === tail) this.#forgetIfIdle(userId, state);
    });
    state.chain = tail;
    return next;
  }

  /** A session of the user opened. Resolves once the user's listeners are attached. */
  sessionOpened(userId: string, sessionId: string): Promise<void> {
    const state = this.#user(userId);
    state.sessions++;
    state.epoch++;
    if (state.timer) {
      clearTimeout(state.timer);
      state.timer = undefined;
      this.#pendingCount--;
      this.#cancelled++;
      this.#o.onDetachOutcome('cancelled');
      this.#o.logger.info('user_detach_cancelled', { uid: userId, session_id: sessionId });
    }
    return this.#enqueue(userId, state, () => this.#attach(userId, state));
  }

  /** A session of the user closed; the last one starts the detach delay. */
  sessionClosed(userId: string, sessionId: string): void {
    const state = this.#users.get(userId);
    if (!state || state.sessions === 0) return;
    state.sessions--;
    if (state.sessions > 0 || this.#closed) return;
    this.#o.logger.info('user_detach_delay_start', {
      uid: userId,
      session_id: sessionId,
      delay_ms: this.#o.detachDelayMs,
    });
    this.#pendingCount++;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.#pendingCount--;
      void this.#enqueue(userId, state, () => this.#detach(userId, state));
    }, this.#o.detachDelayMs);
  }

  /** Adds a workflow listener for the user (WORKFLOW.watch); released with the rest at detach. */
  watchWorkflow(userId: string, jobId: string): void {
    const workflows = this.#user(userId).workflows;
    if (!workflows.has(jobId)) this.#workflowCount++;
    workflows.add(jobId);
  }

  /** Removes a workflow listener; false when it was not watched. */
  unwatchWorkflow(userId: string, jobId: string): boolean {
    const removed = this.#users.get(userId)?.workflows.delete(jobId) ?? false;
    if (removed) this.#workflowCount--;
    return removed;
  }

  async #attach(userId: string, state: UserState): Promise<void> {
    if (state.attached || state.sessions === 0) return;
    const emit = (event: AppEvent) => this.#o.emit(userId, event);
    const attached: Detach[] = [];
    try {
      for (const source of this.#o.sources) attached.push(await source.attach(userId, emit));
    } catch (error) {
      // All or nothing: release what did attach so a retry starts clean.
      await Promise.allSettled(attached.map((d) => d()));
      throw error;
    }
    state.detaches = attached;
    state.attached = true;
    this.#attachedCount++;
  }

  async #detach(userId: string, state: UserState): Promise<void> {
    if (state.sessions > 0) {
      // A session came back after the timer fired but before this step ran: it wins.
      this.#cancelled++;
      this.#o.onDetachOutcome('cancelled');
      this.#o.logger.info('user_detach_cancelled', { uid: userId, late: true });
      return;
    }
    const epoch = state.epoch;
    const startedAt = new Date();
    // A reconnect that landed on another instance within the delay cancels the cleanup there too.
    const elsewhere = await this.#o.presentElsewhere(userId).catch((error: unknown) => {
      this.#o.logger.warn('user_attach_error', { uid: userId, error: `presence: ${String(error)}` });
      return false; // the cleanup below decides atomically anyway
    });
    if (state.sessions > 0) return this.#detach(userId, state);
    if (elsewhere) {
      this.#cancelled++;
      this.#o.onDetachOutcome('cancelled');
      this.#o.logger.info('user_detach_cancelled', { uid: userId, elsewhere: true });
      await this.#release(userId, state);
      return;
    }
    this.#executed++;
    this.#o.onDetachOutcome('executed');
    this.#o.logger.info('user_detach_executing', { uid: userId, listeners: state.detaches.length });
    await this.#release(userId, state);
    await this.#cleanup(userId, state, epoch, startedAt);
    this.#o.logger.info('ws_cleanup_complete', { uid: userId });
  }

  /** Releases the user's listeners on this instance. */
  async #release(userId: string, state: UserState): Promise<void> {
    const detaches = state.detaches;
    state.detaches = [];
    if (state.attached) this.#attachedCount--;
    state.attached = false;
    this.#workflowCount -= state.workflows.size;
    state.workflows.clear();
    const released = await Promise.allSettled(detaches.map((d) => d()));
    for (const r of released) {
      if (r.status === 'rejected') this.#o.logger.warn('user_attach_error', { uid: userId, error: String(r.reason) });
    }
  }

  async #cleanup(userId: string, state: UserState, epoch: number, startedAt: Date): Promise<void> {
    let delay = this.#o.cleanupRetryMs;
    for (let attempt = 1; ; attempt++) {
      this.#o.logger.info('REGISTRY_CLEANUP_START', { uid: userId, attempt });
      try {
        const outcome = await this.#o.cleanupRegistry(userId, startedAt);
        // `present`: a session opened on another instance meanwhile; the atomic check kept the registry.
        this.#o.logger.info('REGISTRY_CLEANUP_SUCCESS', { uid: userId, attempt, outcome });
        return;
      } catch (error) {
        this.#cleanupErrors++;
        this.#o.logger.error('REGISTRY_CLEANUP_ERROR', { uid: userId, attempt, error: String(error) });
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, 30_000);
      // A returning session re-registers itself; a cleanup now would remove its fresh entry.
      if (state.epoch !== epoch || this.#closed) return;
    }
  }

  #forgetIfIdle(userId: string, state: UserState): void {
    if (state.sessions === 0 && !state.attached && !state.timer && state.workflows.size === 0) {
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
   */
  async flush(): Promise<void> {
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
    };
  }
}
