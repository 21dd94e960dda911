import type { Principal } from '../../auth/authenticator';
import type { EventBus, LiveEvent, Unsubscribe } from '../../fleet/bus/event-bus';
import type { RegistryStore } from '../../fleet/registry/registry-store';
import type { GatewayHooks } from '../../hooks';
import type { Logger } from '../../logger';
import type { ListenersManager } from '../listeners-manager';
import type { CompanyFollowers } from './company-followers';
import type { CompanyListenerSource } from './company-source';
import type { CompanyStats, CompanyStatsSnapshot } from './company-stats';
import type { Membership, MembershipRefusal } from './membership';

/** Options of {@link CompanyListeners}. */
export interface CompanyListenersOptions {
  /** Holds each company's listeners once in the fleet (a ListenersManager keyed by company id). */
  manager: ListenersManager;
  source?: CompanyListenerSource;
  followers: CompanyFollowers;
  membership: Membership;
  registry: RegistryStore;
  bus: EventBus;
  /** The principals of the user's live sessions on this instance. */
  principals: (uid: string) => Principal[];
  hooks: GatewayHooks;
  instanceId: string;
  /** How long a follower entry lives without a refresh (refreshed every third of it). */
  followerTtlMs: number;
  /**
   * How long a user keeps following (entry and all) after their last session here closed
   * (`DETACH_DELAY_MS`): a tab that reconnects within it resumes from its cursor and misses
   * nothing, removals included. @default 0 (leaves at once)
   */
  leaveDelayMs?: number;
  stats: CompanyStats;
  /** Redis calls the fan-out made since start. @default none counted */
  fanOutCalls?: () => number;
  logger: Logger;
}

interface UserFollow {
  /** Session id -> opens not yet closed (2 while a replacing socket and its predecessor overlap). */
  sessions: Map<string, number>;
  company: string | undefined;
  chain: Promise<void>;
  unsubscribe: Promise<Unsubscribe | undefined> | undefined;
  /** The pending leave after the last session closed (cancelled when one opens again). */
  leaving: NodeJS.Timeout | undefined;
}

/**
 * Which company each user with sessions here follows: the registry's
 * `companies.current_company_id`, honoured only when the membership sources say the user is
 * a member (checked again at every token refresh and registry change). A follow adds the
 * user to the company's followers in the fleet and counts as a "session" of the company in
 * the company {@link ListenersManager}, which holds the company's listeners once in the
 * fleet with a lease, exactly as it holds a user's.
 *
 * It follows sessions through the gateway's lifecycle hooks (`session.open`, `session.close`,
 * `session.token_refreshed`), so the session core needs no knowledge of companies; the hooks
 * are emitted synchronously at those moments, and a subscriber's failure never reaches the core.
 */
export class CompanyListeners {
  readonly #o: CompanyListenersOptions;
  readonly #users = new Map<string, UserFollow>();
  readonly #pending = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  readonly #off: Array<() => void> = [];
  #closed = false;

  constructor(options: CompanyListenersOptions) {
    this.#o = options;
  }

  /** Starts following sessions (the gateway's lifecycle hooks) and refreshing follower entries. */
  start(): void {
    const { hooks } = this.#o;
    this.#off.push(
      hooks.on('session.open', (e) => {
        if (!e.service) this.#opened(e.uid, e.sessionId);
      }),
      hooks.on('session.close', (e) => {
        if (e.uid !== undefined && e.sessionId !== undefined) this.#closedOne(e.uid, e.sessionId);
      }),
      hooks.on('session.token_refreshed', (e) => {
        if (this.#users.has(e.uid)) void this.#evaluate(e.uid);
      }),
    );
    this.#timer = setInterval(() => void this.#refreshEntries(), this.#o.followerTtlMs / 3);
    this.#timer.unref();
  }

  /** Why `principal` may not follow `companyId` (the RPC's answer), or undefined when it may. */
  async refusal(principal: Principal, companyId: string): Promise<MembershipRefusal | undefined> {
    const verdict = await this.#o.membership.check(principal, companyId);
    if (verdict.member) return undefined;
    this.#o.stats.refused(verdict.reason);
    return verdict;
  }

  /** The registry's company of `uid` changed (set here or seen on the user's stream): move their sessions. */
  async registryChanged(uid: string, companyId: string | null): Promise<void> {
    if (!this.#users.has(uid)) return;
    await this.#evaluate(uid, companyId);
  }

  /** The company `uid` follows here (undefined: none). */
  following(uid: string): string | undefined {
    return this.#users.get(uid)?.company;
  }

  stats(): CompanyStatsSnapshot {
    let following = 0;
    for (const u of this.#users.values()) if (u.company) following++;
    return this.#o.stats.snapshot(following, this.#o.source?.stats().open ?? 0, this.#o.fanOutCalls?.() ?? 0);
  }

  /** Shutdown: stops refreshing and drops this instance's follower entries. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const user of this.#users.values()) clearTimeout(user.leaving);
    for (const off of this.#off.splice(0)) off();
    await Promise.all([...this.#users.keys()].map((uid) => this.#leave(uid)));
  }

  #opened(uid: string, sessionId: string): void {
    if (this.#closed) return;
    let user = this.#users.get(uid);
    if (!user) {
      user = {
        sessions: new Map(),
        company: undefined,
        chain: Promise.resolve(),
        unsubscribe: undefined,
        leaving: undefined,
      };
      this.#users.set(uid, user);
      // A change made on another instance reaches this one as registry.updated on the user's stream.
      user.unsubscribe = this.#o.bus.subscribe(uid, (e) => this.#onUserEvent(uid, e)).catch(() => undefined);
    }
    clearTimeout(user.leaving); // back within the delay: the follow (and its entry) never stopped
    user.leaving = undefined;
    user.sessions.set(sessionId, (user.sessions.get(sessionId) ?? 0) + 1);
    void this.#evaluate(uid);
  }

  /** A session closed (a replaced socket too: its successor opened first, so the count stays above 0). */
  #closedOne(uid: string, sessionId: string): void {
    const user = this.#users.get(uid);
    const open = user?.sessions.get(sessionId);
    if (!user || open === undefined) return; // a service session, or one opened before start
    if (open > 1) user.sessions.set(sessionId, open - 1);
    else user.sessions.delete(sessionId);
    if (user.sessions.size > 0) return;
    const delay = this.#o.leaveDelayMs ?? 0;
    if (delay <= 0) {
      void this.#leave(uid);
      return;
    }
    clearTimeout(user.leaving);
    user.leaving = setTimeout(() => {
      user.leaving = undefined;
      if (this.#users.get(uid) === user && user.sessions.size === 0) void this.#leave(uid);
    }, delay);
    user.leaving.unref();
  }

  async #leave(uid: string): Promise<void> {
    const user = this.#users.get(uid);
    if (!user) return;
    this.#users.delete(uid);
    void user.unsubscribe?.then((off) => off?.());
    await this.#step(user, async () => {
      if (user.company) {
        await this.#unfollow(uid, user.company);
        user.company = undefined;
        this.#o.hooks.emit('company.follow', { uid, company_id: null, requested: null, reason: 'left' });
      }
    });
  }

  #onUserEvent(uid: string, event: LiveEvent): void {
    // Runs for every event of every user with a session here: read the name where a frame puts
    // it (after type, cursor and ts) instead of scanning the whole text; only the rare
    // registry.updated is parsed.
    const name = event.text.indexOf('"event":"');
    if (name < 0 || !event.text.startsWith('registry.updated"', name + 9)) return;
    if (!event.text.includes('current_company_id')) return;
    try {
      const frame = JSON.parse(event.text) as {
        data?: { registry?: { companies?: { current_company_id?: unknown } } };
      };
      const company = frame.data?.registry?.companies?.current_company_id;
      if (company === null || typeof company === 'string') void this.registryChanged(uid, company);
    } catch {
      // Not a frame of ours: nothing to follow.
    }
  }

  #step(user: UserFollow, step: () => Promise<void>): Promise<void> {
    const next = user.chain.then(step).catch((error: unknown) => {
      this.#o.logger.warn('listener_error', { kind: 'company_follow', error: String(error) });
    });
    user.chain = next;
    this.#pending.add(next);
    void next.then(() => this.#pending.delete(next));
    return next;
  }

  /** Settles once every follow decision queued so far has run (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Decides what the user follows here; `requested` unset: read from the registry. */
  #evaluate(uid: string, requested?: string | null): Promise<void> {
    const user = this.#users.get(uid);
    if (!user) return Promise.resolve();
    return this.#step(user, async () => {
      if (this.#users.get(uid) !== user) return;
      const wanted =
        requested !== undefined
          ? requested
          : ((await this.#o.registry.getUnified(uid))?.companies.current_company_id ?? null);
      const principal = latest(this.#o.principals(uid));
      let target: string | undefined;
      let reason = 'none';
      if (wanted !== null && principal) {
        const verdict = await this.#o.membership.check(principal, wanted);
        if (verdict.member) {
          target = wanted;
          reason = 'member';
        } else {
          reason = verdict.reason;
          this.#o.stats.refused(verdict.reason);
          // Membership could not be read (Firestore away): no verdict, so a follow already
          // decided stands; the next decision (a token refresh, a registry change) reads again.
          if (verdict.reason === 'membership_error' && user.company === wanted) target = wanted;
        }
      }
      if (this.#users.get(uid) !== user) return;
      const changed = target !== user.company;
      if (changed) {
        // Each step recorded once done: one that throws (Redis away) leaves `user.company` saying
        // what holds, and the next decision finds the change still to make.
        if (user.company) {
          await this.#unfollow(uid, user.company);
          user.company = undefined;
        }
        if (target) {
          await this.#follow(uid, target);
          user.company = target;
        }
      }
      if (changed || reason !== 'member') {
        this.#o.hooks.emit('company.follow', { uid, company_id: target ?? null, requested: wanted, reason });
      }
    });
  }

  async #follow(uid: string, companyId: string): Promise<void> {
    await this.#o.followers.add(companyId, this.#o.instanceId, [uid], this.#o.followerTtlMs);
    void this.#o.manager.sessionOpened(companyId, uid);
    // Holder here: the new follower gets its initial state now, not at the next poll.
    this.#o.source?.held(companyId)?.poke();
  }

  async #unfollow(uid: string, companyId: string): Promise<void> {
    // Out of the followers first: the holder stops sending at its next poll at the latest.
    await this.#o.followers
      .remove(companyId, this.#o.instanceId, uid)
      .catch((error: unknown) =>
        this.#o.logger.warn('listener_error', { company_id: companyId, kind: 'followers', error: String(error) }),
      );
    this.#o.manager.sessionClosed(companyId, uid);
    this.#o.source?.held(companyId)?.poke();
  }

  /**
   * Extends this instance's follower entries. It never creates one: an entry removed while
   * the refresh is in flight (membership lost, company switched, user gone) stays removed.
   * An entry that is missing although the user still follows (expired, Redis data lost) is
   * added again on the user's own chain, after checking the follow is still current.
   */
  async #refreshEntries(): Promise<void> {
    const byCompany = new Map<string, string[]>();
    for (const [uid, user] of this.#users) {
      if (!user.company) continue;
      const uids = byCompany.get(user.company);
      if (uids) uids.push(uid);
      else byCompany.set(user.company, [uid]);
    }
    for (const [companyId, listed] of byCompany) {
      const uids = listed.filter((uid) => this.#users.get(uid)?.company === companyId);
      try {
        const missing = await this.#o.followers.refresh(companyId, this.#o.instanceId, uids, this.#o.followerTtlMs);
        for (const uid of missing) this.#restore(uid, companyId);
      } catch (error) {
        this.#o.logger.warn('listener_error', { company_id: companyId, kind: 'followers', error: String(error) });
      }
    }
  }

  /** Adds back the entry of a user who still follows `companyId` here (checked on their chain). */
  #restore(uid: string, companyId: string): void {
    const user = this.#users.get(uid);
    if (!user) return;
    void this.#step(user, async () => {
      if (this.#users.get(uid) !== user || user.company !== companyId) return;
      await this.#o.followers.add(companyId, this.#o.instanceId, [uid], this.#o.followerTtlMs);
      this.#o.source?.held(companyId)?.poke();
    });
  }
}

/** The principal of the most recent token (the latest expiry; none: never expires). */
function latest(principals: Principal[]): Principal | undefined {
  let best: Principal | undefined;
  for (const p of principals) {
    if (!best || (p.expiresAtMs ?? Number.POSITIVE_INFINITY) > (best.expiresAtMs ?? Number.POSITIVE_INFINITY)) best = p;
  }
  return best;
}
