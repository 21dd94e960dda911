import type { AppEvent, Cursor, ListenerChange } from '@livebus/protocol';
import type { LeaseHolder } from '../../fleet/lease/lease';
import type { Logger } from '../../logger';
import type { CompanyAppendOptions, CompanyFanOut } from './company-fanout';
import type { CompanyFollowers } from './company-followers';
import type { CompanyStats } from './company-stats';

/** Most initial-state events appended per script call. */
const INITIAL_BATCH = 200;

/**
 * Most appends (events x joiners) of one initial-state call. A script runs without a break on
 * Redis: 200 events to 2 000 joiners in one call held it ~3.9 s, past the 2 s PING probe and
 * LISTENER_FAILOVER_MS (500 joiners: 0.6 s); 5 000 appends hold it some tens of milliseconds.
 */
const MAX_INITIAL_APPENDS_PER_CALL = 5_000;

/**
 * The calls a joiners' initial state is sent in: events in batches of {@link INITIAL_BATCH}, each
 * batch to the joiners in groups small enough that a call makes at most
 * {@link MAX_INITIAL_APPENDS_PER_CALL} appends (at least one joiner a call). Every joiner gets
 * every batch, in order.
 */
function initialCalls<E>(joined: readonly string[], events: readonly E[]): Array<{ userIds: string[]; events: E[] }> {
  const calls: Array<{ userIds: string[]; events: E[] }> = [];
  for (let i = 0; i < events.length; i += INITIAL_BATCH) {
    const batch = events.slice(i, i + INITIAL_BATCH);
    const perCall = Math.max(1, Math.floor(MAX_INITIAL_APPENDS_PER_CALL / batch.length));
    for (let j = 0; j < joined.length; j += perCall)
      calls.push({ userIds: joined.slice(j, j + perCall), events: batch });
  }
  return calls;
}

/** Options of {@link CompanyBroadcaster}. */
export interface CompanyBroadcasterOptions {
  companyId: string;
  fanOut: CompanyFanOut;
  followers: CompanyFollowers;
  /** How often the followers are read (joins get their initial state, departures stop). */
  pollMs: number;
  /** How long the record of followers' initial state is kept past the last poll. */
  initializedTtlMs: number;
  stats: CompanyStats;
  logger: Logger;
  /**
   * The company's lease this instance holds it under: every append is fenced by it (refused,
   * `PublishError` `fenced`, once another instance holds the lease). Unset: unfenced.
   */
  fence?: LeaseHolder;
  /** An initial state was refused as fenced: the holder lets the company go (the manager's `onFenced`). */
  onFenced?: () => void;
}

/**
 * On the holder of a company's lease: sends each change of the company's listeners to
 * the company's journal and to every follower's stream, in the order the listeners
 * produced them, and sends a follower that joined its initial state (the documents
 * delivered so far, as `initial` `added` events) before any later change, so the two
 * never cross. Everything runs on one chain per company.
 */
export class CompanyBroadcaster {
  readonly #o: CompanyBroadcasterOptions;
  /** Listener name -> path -> the last event delivered for it (removed paths are dropped). */
  readonly #state = new Map<string, Map<string, ListenerChange>>();
  #followers: string[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: CompanyBroadcasterOptions) {
    this.#o = options;
  }

  /** Followers the changes go to now. */
  get followers(): number {
    return this.#followers.length;
  }

  /**
   * Starts polling the followers. `fresh`: the listeners start with no delivered state,
   * so their first snapshot (sent as `initial` to every follower) is everyone's initial
   * state: the followers of now are recorded as initialized.
   */
  async start(fresh: boolean): Promise<void> {
    const listed = await this.#o.followers.list(this.#o.companyId);
    this.#followers = listed.map((f) => f.uid);
    this.#o.stats.followers(this.#o.companyId, this.#followers.length);
    if (fresh) await this.#o.followers.initialized(this.#o.companyId, this.#followers, this.#o.initializedTtlMs);
    this.#schedule();
  }

  /** Seeds the delivered state (a takeover: what the predecessor delivered, read afresh). */
  seed(listener: string, change: ListenerChange): void {
    this.#remember(change, listener);
  }

  /** Reads the followers now (a follow on this instance), not at the next poll. */
  poke(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#enqueue(() => this.#refresh()).finally(() => this.#schedule());
  }

  /** Publishes one change to the journal and every follower; resolves with its journal cursor. */
  emit(event: AppEvent): Promise<{ cursor: Cursor } | undefined> {
    return this.#enqueue(async () => {
      const followers = this.#followers;
      // Refused as fenced: the rejection reaches the listener, which hands the company back.
      const cursor = await this.#o.fanOut.append(this.#o.companyId, followers, [event], this.#appendOptions(true));
      if (event.event === 'listener.change') this.#remember(event.data);
      this.#o.stats.delivered(this.#o.companyId, followers.length);
      return cursor === undefined ? undefined : { cursor };
    });
  }

  /** Stops polling; resolves once nothing is in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.stats.followers(this.#o.companyId, undefined);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#chain.catch(() => {});
  }

  #enqueue<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(step);
    this.#chain = next.catch(() => {});
    return next;
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#enqueue(() => this.#refresh()).finally(() => this.#schedule());
    }, this.#o.pollMs);
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    if (this.#stopped) return;
    const { companyId } = this.#o;
    let listed: Awaited<ReturnType<CompanyFollowers['list']>>;
    try {
      listed = await this.#o.followers.list(companyId);
    } catch (error) {
      this.#o.logger.warn('listener_error', { company_id: companyId, kind: 'followers', error: String(error) });
      return; // keep the followers known; the next poll reads again
    }
    // Stopped while reading (the lease released): no longer counted as held, nothing more sent.
    if (this.#stopped) return;
    const joined = listed.filter((f) => !f.initialized).map((f) => f.uid);
    this.#followers = listed.map((f) => f.uid);
    this.#o.stats.followers(companyId, this.#followers.length);
    if (joined.length === 0) return;
    const initial = this.#initialEvents();
    try {
      // In bounded calls (events and joiners): a large company does not hold Redis in one long script.
      for (const call of initialCalls(joined, initial)) {
        if (this.#stopped) return; // the successor sends the rest (not recorded as initialized)
        await this.#o.fanOut.append(companyId, call.userIds, call.events, this.#appendOptions(false));
      }
      if (this.#stopped) return;
      await this.#o.followers.initialized(companyId, joined, this.#o.initializedTtlMs);
      this.#o.stats.joined(companyId, joined.length, initial.length);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'fenced') {
        // Another instance holds the company now: it sends the initial state; this one lets go.
        this.#o.onFenced?.();
        return;
      }
      // Not recorded as initialized: the next poll sends it again (at least once).
      this.#o.logger.warn('listener_error', { company_id: companyId, kind: 'initial', error: String(error) });
    }
  }

  /** What each append is told: to the journal or not, fenced by the lease held (when known). */
  #appendOptions(journal: boolean): CompanyAppendOptions {
    return this.#o.fence ? { journal, fence: this.#o.fence } : { journal };
  }

  #initialEvents(): AppEvent[] {
    const out: AppEvent[] = [];
    for (const docs of this.#state.values()) {
      for (const change of docs.values()) {
        out.push({ event: 'listener.change', data: { ...change, change: 'added', initial: true } });
      }
    }
    return out;
  }

  #remember(change: ListenerChange, listener = change.listener ?? ''): void {
    let docs = this.#state.get(listener);
    if (!docs) {
      docs = new Map();
      this.#state.set(listener, docs);
    }
    if (change.change === 'removed') docs.delete(change.path);
    else docs.set(change.path, change);
  }
}
