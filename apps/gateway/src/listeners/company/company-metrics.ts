import { Counter, Gauge, type Registry } from 'prom-client';
import type { CompanyStatsSnapshot } from './company-stats';

/**
 * The company listener metrics, read at scrape time. The `company` label is bounded: only
 * the `metrics_top` companies held here with the most followers are listed.
 */
export function registerCompanyMetrics(registry: Registry, read: () => CompanyStatsSnapshot): void {
  new Gauge({
    name: 'livebus_company_listeners',
    help: 'Companies whose listeners this instance holds (one holder per company in the fleet)',
    registers: [registry],
    collect() {
      this.set(read().held);
    },
  });
  new Gauge({
    name: 'livebus_company_queries_open',
    help: 'Firestore queries open for the company listeners held here',
    registers: [registry],
    collect() {
      this.set(read().queries_open);
    },
  });
  new Gauge({
    name: 'livebus_company_following_users',
    help: 'Users following a company with a session on this instance',
    registers: [registry],
    collect() {
      this.set(read().following);
    },
  });
  new Gauge({
    name: 'livebus_company_followers',
    help: 'Followers of the companies held here with the most followers (top N of LISTENERS_FILE company.metrics_top)',
    labelNames: ['company'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [company, n] of read().top_followers) this.set({ company }, n);
    },
  });
  const counter = (name: string, help: string, pick: (s: CompanyStatsSnapshot) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(read()));
      },
    });
  counter('livebus_company_events_total', 'Company changes published (each to every follower)', (s) => s.events);
  counter('livebus_company_deliveries_total', 'Company changes appended to followers streams', (s) => s.deliveries);
  counter('livebus_company_fanout_calls_total', 'Redis calls of the company fan-out', (s) => s.fanout_calls);
  counter(
    'livebus_company_reads_saved_total',
    'Firestore reads saved against one listener per follower (changes x (followers - 1), plus joiners initial state)',
    (s) => s.reads_saved,
  );
  new Counter({
    name: 'livebus_company_follows_refused_total',
    help: 'Follows of a company refused, by reason (not_member, invalid_company_id, membership_error)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(read().refused)) this.inc({ reason }, n);
    },
  });
}
