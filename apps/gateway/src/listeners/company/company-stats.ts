/** What /metrics, /ws-metrics and the dashboard show of the company listeners of one instance. */
export interface CompanyStatsSnapshot {
  /** Companies whose listeners this instance holds. */
  held: number;
  /** Users following a company with a session here. */
  following: number;
  /** Firestore queries the company listeners held here keep open. */
  queries_open: number;
  /** The companies held here with the most followers, `[company, followers]`, at most `metrics_top`. */
  top_followers: [string, number][];
  /** listener.change events the holder published (each to every follower). */
  events: number;
  /** Appends to followers' streams (events x followers). */
  deliveries: number;
  /** Redis calls the fan-out made (one per change and slot batch, plus initial states). */
  fanout_calls: number;
  /**
   * Firestore document reads saved against one listener per follower: every change would
   * have been read once per follower, every joiner's initial state once more.
   */
  reads_saved: number;
  /** Follows refused, by reason (`not_member`, `invalid_company_id`, `membership_error`). */
  refused: Record<string, number>;
}

/** Counters of the company listeners (see {@link CompanyStatsSnapshot}). */
export class CompanyStats {
  readonly #followers = new Map<string, number>();
  readonly #refused: Record<string, number> = {};
  #events = 0;
  #deliveries = 0;
  #readsSaved = 0;
  readonly #top: number;

  constructor(top: number) {
    this.#top = top;
  }

  /** A change went to `followers` streams. */
  delivered(_companyId: string, followers: number): void {
    this.#events++;
    this.#deliveries += followers;
    this.#readsSaved += Math.max(0, followers - 1);
  }

  /** `joined` followers got `documents` as their initial state, read by nobody. */
  joined(_companyId: string, joined: number, documents: number): void {
    this.#readsSaved += joined * Math.max(1, documents);
  }

  /** The holder's view of a company's followers (polled). */
  followers(companyId: string, count: number | undefined): void {
    if (count === undefined) this.#followers.delete(companyId);
    else this.#followers.set(companyId, count);
  }

  refused(reason: string): void {
    this.#refused[reason] = (this.#refused[reason] ?? 0) + 1;
  }

  snapshot(following: number, queriesOpen = 0, fanoutCalls = 0): CompanyStatsSnapshot {
    return {
      held: this.#followers.size,
      following,
      queries_open: queriesOpen,
      top_followers: [...this.#followers].sort((a, b) => b[1] - a[1]).slice(0, this.#top),
      events: this.#events,
      deliveries: this.#deliveries,
      fanout_calls: fanoutCalls,
      reads_saved: this.#readsSaved,
      refused: { ...this.#refused },
    };
  }
}
