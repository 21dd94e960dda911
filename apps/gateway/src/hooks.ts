import type { DisconnectReason } from '@livebus/protocol';

/**
 * The gateway's lifecycle, as typed events: what logs, metrics, the dashboard and tests
 * observe. Components emit; they never format a log line for these moments themselves.
 * The payloads carry what an operator or a test needs to tell one occurrence from
 * another (user, session, counts, reasons), never a token or a message from a peer.
 *
 * Names are `area.moment`; add a moment here, with TSDoc, before emitting it.
 */
export interface GatewayHookEvents {
  /**
   * A session was authenticated and admitted (presence, session limit): it is open and
   * its welcome, with any replay, follows.
   */
  'session.open': { uid: string; sessionId: string; service: boolean; resumeFrom?: string };
  /** A connection closed; `uid` is unset when it closed before its session opened (a hello refused, or not admitted in time). */
  'session.close': {
    uid?: string;
    sessionId?: string;
    code: number;
    reason: string;
    type: DisconnectReason;
    authenticated: boolean;
  };
  /**
   * A resuming session (its hello carried `last_cursor`) got its welcome: `events` were
   * replayed after it, in stream order; `gap` when the cursor was older than the stream
   * keeps (nothing replayed, the client reloads).
   */
  'session.replay': { uid: string; sessionId: string; events: number; gap: boolean };
  /**
   * A hello's token was refused: the socket closed 4001 with `code` as its reason.
   * `reason` is coarse (`missing`, `invalid`, `expired`, or `error` when the authenticator
   * itself failed: then `code` is `internal_error`). Never the token.
   */
  'session.auth_failed': { reason: 'missing' | 'invalid' | 'expired' | 'error'; code: string; error: string };
  /** An `auth` frame extended a live session (same user, fresh token). */
  'session.token_refreshed': { uid: string; sessionId: string; expiresAtMs?: number };
  /**
   * An `auth` frame was refused: a bad token (`reason` as for `session.auth_failed`; the
   * session keeps its deadline) or another user's token (`other_user`: closed 4003).
   */
  'session.token_refresh_failed': {
    uid: string;
    sessionId: string;
    reason: 'missing' | 'invalid' | 'expired' | 'error' | 'other_user';
    error?: string;
  };
  /** A session got no fresh token in time: closed 4011. */
  'session.token_expired': { uid: string; sessionId: string };
  /** An upgrade was answered 503 + Retry-After by admission control. */
  'admission.refused': { reason: string; refused: number; handshakes: number; lagMs: number };
  /** The user's last session here (`sessionId`) closed: the detach delay starts. */
  'detach.delay_start': { uid: string; sessionId: string; delayMs: number };
  /**
   * A session came back before the delay ran out: here (`sessionId`), here after the timer
   * fired but before the detach ran (`late`), or on another instance of the fleet (`elsewhere`).
   */
  'detach.cancelled': { uid: string; sessionId?: string; late?: boolean; elsewhere?: boolean };
  /** The delay ran out with no session anywhere: the user's listeners are released. */
  'detach.executing': { uid: string; listeners: number };
  /** Everything the detach had to release is released. */
  'detach.complete': { uid: string };
  /**
   * The registry cleanup of a departed user: `start`, then `success` or `error`, on the one
   * instance whose claim won; `skipped` (with the reason) on the others.
   */
  'registry.cleanup': {
    uid: string;
    phase: 'start' | 'success' | 'error' | 'skipped';
    attempt?: number;
    outcome?: string;
    reason?: string;
    error?: string;
  };
  /**
   * This instance took the user's listener lease (a new fencing token per acquisition);
   * `from`: taken over from that holder, found dead (see `lease.holder_dead`).
   */
  'lease.acquired': { uid: string; token: number | string; listeners: number; from?: string };
  /**
   * A holder of listeners of users this instance serves on standby is dead (`no_proof`: its
   * liveness proof lapsed for LISTENER_FAILOVER_MS; `restarted`: a new process runs under its
   * INSTANCE_ID): this instance takes those `users` over now.
   */
  'lease.holder_dead': { holder: string; reason: 'no_proof' | 'restarted'; users: number };
  /**
   * This instance lost the lease it held: `fenced` (a newer holder stored a mark; told once by
   * the listener source, without the token, then by the listeners manager, with it),
   * `renew_refused` (another instance holds it) or `renew_failed` (Redis away past the TTL).
   */
  'lease.lost': { uid: string; token?: number | string; reason: string };
  /** This instance renewed the lease it holds (every third of LISTENER_LEASE_TTL_MS). */
  'lease.renewed': { uid: string; token: number | string };
  /**
   * A poll of the lease by this instance, which serves the user on standby, found it held
   * elsewhere (`holder`, when known) or could not take it (every quarter of the TTL).
   */
  'lease.standby': { uid: string; holder?: string };
  /** This instance gave the lease back (`handover`: sessions of the user remain elsewhere). */
  'lease.released': { uid: string; token: number | string; handover: boolean };
  /**
   * The user's listener set is attached here: `listeners` opened by the sources (0 when no
   * source is configured), under the lease `token` (unset without sources: no lease is taken).
   */
  'listener.attached': { uid: string; listeners: number; token?: number | string };
  /**
   * The user's listener set is released here (`handover`: another instance takes it over, or
   * sessions remain elsewhere; otherwise the user left and the listeners' marks are dropped).
   */
  'listener.detached': { uid: string; listeners: number; handover: boolean };
  /**
   * Which company the user's sessions on this instance follow changed, or a follow was
   * refused: `company_id` is what they follow now (null: none), `requested` the registry's
   * `current_company_id`, `reason` why (`member`, `not_member`, `invalid_company_id`,
   * `membership_error`, `none`: no company set, `left`: no session here any more).
   */
  'company.follow': { uid: string; company_id: string | null; requested: string | null; reason: string };
  /**
   * This instance holds a company's listeners now (its lease `token`); see listeners/company/.
   * `from`: taken over from that holder, found dead by its liveness proof (LISTENER_FAILOVER_MS),
   * not at its lease's expiry.
   */
  'company.attached': { company_id: string; listeners: number; token?: number | string; from?: string };
  /** This instance released a company's listeners (`handover`: followers remain elsewhere). */
  'company.detached': { company_id: string; listeners: number; handover: boolean };
  /** This instance lost a company's lease (`fenced`, `renew_refused`, `renew_failed`). */
  'company.lease_lost': { company_id: string; token?: number | string; reason: string };
  /**
   * The start-up read that opens the Firestore client's channel (LISTENERS_FILE set) ended,
   * before the main port listens: `ok`, `error` (Firestore refused or failed) or `timeout`
   * (the start went on without it); `ms` from its start.
   */
  'firestore.warm_up': { ms: number; outcome: 'ok' | 'error' | 'timeout'; error?: string };
}

/** Something that hears one kind of {@link GatewayHookEvents}. */
export type HookListener<T> = (event: T) => void;

/** Options of {@link Hooks.on}. */
export interface ListenOptions {
  /**
   * The listener's exception reaches the emitter (after every other listener was told),
   * instead of being reported and skipped. Only for the gateway's own subscribers that
   * are part of the moment, its log lines (logHooks): they were written inline before
   * the hooks, where a failure was the emitting handler's bug, handled by its guard (a
   * socket handler closes its socket 1011 and logs `ws_handler_error`). @default false
   */
  propagate?: boolean;
}

/** Options of {@link Hooks}. */
export interface HooksOptions {
  /** Told when a listener throws; the emitter and the other listeners carry on. @default ignore */
  onListenerError?: (name: string, error: unknown) => void;
}

/**
 * A small typed emitter. Emitting with nobody listening costs one map lookup, so
 * components emit on hot paths freely. A listener that throws is reported and skipped:
 * an observer never breaks the gateway it observes.
 */
export class Hooks<E extends object = GatewayHookEvents> {
  readonly #listeners = new Map<keyof E, Set<HookListener<never>>>();
  /**
   * The listeners of a name as an array, what {@link emit} iterates: made at the first emit
   * after a change instead of a copy per emit (some moments come once per connection).
   */
  readonly #snapshots = new Map<keyof E, ReadonlyArray<HookListener<never>>>();
  readonly #onListenerError: (name: string, error: unknown) => void;
  /** Listeners subscribed with {@link ListenOptions.propagate}. */
  readonly #propagating = new WeakSet<HookListener<never>>();

  constructor(options: HooksOptions = {}) {
    this.#onListenerError = options.onListenerError ?? (() => {});
  }

  /** Listens to `name`; returns the function that stops listening. */
  on<K extends keyof E>(name: K, listener: HookListener<E[K]>, options: ListenOptions = {}): () => void {
    let set = this.#listeners.get(name);
    if (!set) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    // A wrapper of its own, so the same function may be subscribed both ways.
    const entry: HookListener<never> = options.propagate
      ? (event) => listener(event)
      : (listener as HookListener<never>);
    if (options.propagate) this.#propagating.add(entry);
    set.add(entry);
    this.#snapshots.delete(name);
    return () => {
      set.delete(entry);
      this.#snapshots.delete(name);
      if (set.size === 0 && this.#listeners.get(name) === set) this.#listeners.delete(name);
    };
  }

  /** True when somebody listens to `name` (to skip building a costly payload). */
  has(name: keyof E): boolean {
    return this.#listeners.has(name);
  }

  /**
   * Tells every listener of `name`, in the order they subscribed. Throws only what a
   * listener subscribed with {@link ListenOptions.propagate} threw (the first such), once
   * all were told.
   */
  emit<K extends keyof E>(name: K, event: E[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    let listeners = this.#snapshots.get(name);
    if (!listeners) {
      listeners = [...set];
      this.#snapshots.set(name, listeners);
    }
    let failed: { error: unknown } | undefined;
    // Those listening when the emit began, in order: one that subscribes or leaves meanwhile
    // makes a new array for the next emit and leaves this one as it was.
    for (let i = 0; i < listeners.length; i++) {
      const listener = listeners[i] as HookListener<never>;
      try {
        (listener as HookListener<E[K]>)(event);
      } catch (error) {
        if (!this.#propagating.has(listener)) this.#onListenerError(String(name), error);
        else failed ??= { error };
      }
    }
    if (failed) throw failed.error;
  }

  /**
   * The next `name` event that `match` accepts. For tests and tools: wait on a
   * lifecycle moment instead of polling or reading logs. Rejects after `timeoutMs`
   * (a bound on waiting, not a claim about speed) naming the event it waited for.
   */
  next<K extends keyof E>(
    name: K,
    match: (event: E[K]) => boolean = () => true,
    { timeoutMs = 10_000 }: { timeoutMs?: number } = {},
  ): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no '${String(name)}' event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(name, (event) => {
        if (!match(event)) return;
        clearTimeout(timer);
        off();
        resolve(event);
      });
    });
  }
}

/** The hooks a gateway emits on. */
export type GatewayHooks = Hooks<GatewayHookEvents>;
