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
  /** A session finished its handshake (the welcome was sent). */
  'session.open': { uid: string; sessionId: string; service?: string; resumeFrom?: string };
  /** A connection closed; `uid` is unset when it closed before authenticating. */
  'session.close': {
    uid?: string;
    sessionId?: string;
    code: number;
    reason: string;
    type: DisconnectReason;
    authenticated: boolean;
  };
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
  /** This instance took the user's listener lease (a new fencing token per acquisition). */
  'lease.acquired': { uid: string; token: number | string; listeners: number };
  /**
   * This instance lost the lease it held: `fenced` (a newer holder stored a mark; told once by
   * the listener source, without the token, then by the listeners manager, with it),
   * `renew_refused` (another instance holds it) or `renew_failed` (Redis away past the TTL).
   */
  'lease.lost': { uid: string; token?: number | string; reason: string };
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
}

/** Something that hears one kind of {@link GatewayHookEvents}. */
export type HookListener<T> = (event: T) => void;

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
  readonly #onListenerError: (name: string, error: unknown) => void;

  constructor(options: HooksOptions = {}) {
    this.#onListenerError = options.onListenerError ?? (() => {});
  }

  /** Listens to `name`; returns the function that stops listening. */
  on<K extends keyof E>(name: K, listener: HookListener<E[K]>): () => void {
    let set = this.#listeners.get(name);
    if (!set) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as HookListener<never>);
    return () => {
      set.delete(listener as HookListener<never>);
      if (set.size === 0 && this.#listeners.get(name) === set) this.#listeners.delete(name);
    };
  }

  /** True when somebody listens to `name` (to skip building a costly payload). */
  has(name: keyof E): boolean {
    return this.#listeners.has(name);
  }

  /** Tells every listener of `name`, in the order they subscribed. */
  emit<K extends keyof E>(name: K, event: E[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as HookListener<E[K]>)(event);
      } catch (error) {
        this.#onListenerError(String(name), error);
      }
    }
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
