import { randomUUID } from 'node:crypto';
import type { InstanceLiveness } from '../fleet/instances/instance-liveness';
import type { GatewayHooks } from '../hooks';

/** Options of {@link FailoverWatch}. */
export interface FailoverWatchOptions {
  liveness: InstanceLiveness;
  instanceId: string;
  /**
   * How long an instance may go without proving it runs before the others take its users'
   * listeners (LISTENER_FAILOVER_MS). It beats every quarter of it; the others check every
   * eighth.
   */
  failoverMs: number;
  /** A holder this instance follows is dead: take over the users it held. */
  onDead: (owner: string) => void;
  hooks: GatewayHooks;
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/** What this instance knows of one holder it follows. */
interface Followed {
  users: Set<string>;
  /** The holder's incarnation when first seen alive (another one later: it restarted). */
  incarnation: string | undefined;
  /** Since when every check of it answered promptly: a missing proof counts only after a whole window of them. */
  healthySince: number;
}

/**
 * Instance liveness for listener failover. Every instance proves it runs (a key with its
 * incarnation, PX `failoverMs`, written every quarter of it), and checks, every eighth of
 * it, the proofs of the holders of the users it serves on standby: one read per holder
 * instance, whatever the number of users. A holder is dead when its proof is gone, or is of
 * another incarnation (restarted under the same INSTANCE_ID). Missing only counts after a
 * whole `failoverMs` of prompt checks: while Redis fails over (or this process stalls) the
 * proofs cannot be read nor written, and a holder gets a full window to write its proof
 * again before anyone takes its users.
 */
export class FailoverWatch {
  readonly #o: FailoverWatchOptions;
  readonly #now: () => number;
  readonly #incarnation = randomUUID();
  readonly #followed = new Map<string, Followed>();
  #beatTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: FailoverWatchOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Beats now and every quarter of the window; checks every eighth. */
  start(): void {
    if (this.#beatTimer) return;
    const { failoverMs } = this.#o;
    void this.beat();
    this.#beatTimer = setInterval(() => void this.beat(), Math.max(10, failoverMs / 4));
    this.#checkTimer = setInterval(() => void this.check(), Math.max(10, failoverMs / 8));
    this.#beatTimer.unref();
    this.#checkTimer.unref();
  }

  /** Stops beating and checking; the proof goes at once (shutdown, after the leases were released). */
  async stop(): Promise<void> {
    if (!this.#beatTimer) return;
    clearInterval(this.#beatTimer);
    clearInterval(this.#checkTimer);
    this.#beatTimer = undefined;
    this.#checkTimer = undefined;
    await this.#o.liveness.retire(this.#o.instanceId, this.#incarnation).catch(() => {});
  }

  /** Writes this instance's proof. Never rejects (Redis away: the next beat tries again). */
  async beat(): Promise<void> {
    await this.#o.liveness.beat(this.#o.instanceId, this.#incarnation, this.#o.failoverMs).catch(() => {});
  }

  /** Follows `owner` for `userId` (this instance serves the user on standby; `owner` holds the lease). */
  follow(userId: string, owner: string): void {
    if (owner === this.#o.instanceId) return;
    // The same holder named again (every standby poll): its window goes on. Made anew, it would
    // restart at every poll, and a poll shorter than the window (LISTENER_LEASE_TTL_MS / 4 below
    // LISTENER_FAILOVER_MS) would never find the holder dead.
    if (this.#followed.get(owner)?.users.has(userId)) return;
    this.unfollow(userId);
    let f = this.#followed.get(owner);
    if (!f) {
      f = { users: new Set(), incarnation: undefined, healthySince: this.#now() };
      this.#followed.set(owner, f);
    }
    f.users.add(userId);
  }

  /** Stops following for `userId` (attached here, or gone). */
  unfollow(userId: string): void {
    for (const [owner, f] of this.#followed) {
      if (!f.users.delete(userId)) continue;
      if (f.users.size === 0) this.#followed.delete(owner);
    }
  }

  /** One check of every followed holder; tells `onDead` of each found dead. */
  async check(): Promise<void> {
    if (this.#checking || this.#followed.size === 0) return;
    this.#checking = true;
    try {
      const owners = [...this.#followed.keys()];
      const startedAt = this.#now();
      let read: Map<string, string | undefined> | undefined;
      try {
        read = await this.#o.liveness.read(owners);
      } catch {
        read = undefined;
      }
      const now = this.#now();
      // Failed or slow (Redis failing over, this process stalled): nothing can be judged from it.
      const prompt = read !== undefined && now - startedAt <= this.#o.failoverMs / 4;
      for (const owner of owners) this.#judge(owner, prompt ? read?.get(owner) : null, now);
    } finally {
      this.#checking = false;
    }
  }

  /** `proof`: the incarnation read, undefined when missing, null when the check was not prompt. */
  #judge(owner: string, proof: string | undefined | null, now: number): void {
    const f = this.#followed.get(owner);
    if (!f) return;
    if (proof === null) {
      f.healthySince = now;
      return;
    }
    if (proof !== undefined) {
      f.incarnation ??= proof;
      if (proof === f.incarnation) return;
    } else if (now - f.healthySince < this.#o.failoverMs) return;
    this.#followed.delete(owner);
    this.#o.hooks.emit('lease.holder_dead', {
      holder: owner,
      reason: proof === undefined ? 'no_proof' : 'restarted',
      users: f.users.size,
    });
    this.#o.onDead(owner);
  }
}
