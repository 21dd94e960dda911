import type { Firestore, Query, WhereFilterOp } from 'firebase-admin/firestore';
import type { Logger } from '../../logger';
import { firestoreJson, timestampText } from '../firestore/firestore-json';
import { FirestoreListenerSource } from '../firestore/firestore-listener-source';
import type { AttachContext, Detach, Emit, ListenerSource, ListenerSourceStats } from '../listener-source';
import type { ListenerStats } from '../listener-stats';
import { fillPath } from '../listeners-config';
import type { WatermarkStore } from '../watermark-store';
import { fillValue } from '../where-filter';
import { CompanyBroadcaster } from './company-broadcaster';
import type { CompanyConfig, CompanyListenerConfig } from './company-config';
import type { CompanyFanOut } from './company-fanout';
import type { CompanyFollowers } from './company-followers';
import { companyIdProblem } from './company-id';
import type { CompanyStats } from './company-stats';

/** Options of {@link CompanyListenerSource}. */
export interface CompanyListenerSourceOptions {
  firestore: Firestore;
  config: CompanyConfig;
  /** The company marks (keyed by company id, fenced by the company's lease). */
  marks: WatermarkStore;
  fanOut: CompanyFanOut;
  followers: CompanyFollowers;
  stats: CompanyStats;
  listenerStats: ListenerStats;
  logger: Logger;
  retryMaxMs?: number;
  stallMs?: number;
  trackedDocsMax?: number;
}

/** Thrown for a company id that may not be placed in a Firestore path. */
export class CompanyIdError extends Error {
  override readonly name = 'CompanyIdError';
}

/**
 * The company listeners of LISTENERS_FILE: the per-user Firestore source, run with the
 * company id as its owner (marks, delivered sets, fencing and replay are the very same),
 * whose events go to a {@link CompanyBroadcaster} rather than to one user's stream.
 */
export class CompanyListenerSource implements ListenerSource {
  readonly name = 'company';
  readonly #o: CompanyListenerSourceOptions;
  readonly #inner: FirestoreListenerSource;
  readonly #held = new Map<string, CompanyBroadcaster>();

  constructor(options: CompanyListenerSourceOptions) {
    this.#o = options;
    this.#inner = new FirestoreListenerSource({
      firestore: options.firestore,
      listeners: options.config.listeners,
      marks: options.marks,
      logger: options.logger,
      stats: options.listenerStats,
      owner: { placeholder: 'company_id', name: 'company' },
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
      ...(options.stallMs === undefined ? {} : { stallMs: options.stallMs }),
      ...(options.trackedDocsMax === undefined ? {} : { trackedDocsMax: options.trackedDocsMax }),
    });
  }

  /** The broadcaster of a company held here (undefined elsewhere). */
  held(companyId: string): CompanyBroadcaster | undefined {
    return this.#held.get(companyId);
  }

  async attach(companyId: string, _emit: Emit, context: AttachContext = {}): Promise<Detach> {
    const problem = companyIdProblem(companyId);
    if (problem) throw new CompanyIdError(`company id ${JSON.stringify(companyId)} ${problem}`);
    const resume = await this.#o.marks.get(companyId);
    const fresh = Object.keys(resume.marks).length === 0;
    const broadcaster = new CompanyBroadcaster({
      companyId,
      fanOut: this.#o.fanOut,
      followers: this.#o.followers,
      pollMs: this.#o.config.followers_poll_ms,
      initializedTtlMs: 86_400_000,
      stats: this.#o.stats,
      logger: this.#o.logger,
      // Every append under the company's lease, as a user listener's events are under the user's.
      ...(context.fence ? { fence: context.fence } : {}),
      ...(context.onFenced ? { onFenced: context.onFenced } : {}),
    });
    // A takeover resumes from the marks: the documents delivered before are not sent again,
    // but a follower who joins later needs them; read them once (as a new listener would).
    if (!fresh) await this.#seed(companyId, broadcaster);
    await broadcaster.start(fresh);
    let detach: Detach;
    try {
      detach = await this.#inner.attach(companyId, (event) => broadcaster.emit(event), context);
    } catch (error) {
      await broadcaster.stop();
      throw error;
    }
    this.#held.set(companyId, broadcaster);
    return async (options) => {
      if (this.#held.get(companyId) === broadcaster) this.#held.delete(companyId);
      await detach(options);
      await broadcaster.stop();
    };
  }

  async #seed(companyId: string, broadcaster: CompanyBroadcaster): Promise<void> {
    await Promise.all(
      this.#o.config.listeners.map(async (config) => {
        const snapshot = await this.#query(config, companyId).get();
        for (const doc of snapshot.docs) {
          broadcaster.seed(config.name, {
            source: this.name,
            listener: config.name,
            path: doc.ref.path,
            change: 'added',
            initial: true,
            update_time: timestampText(doc.updateTime),
            data: firestoreJson(doc.data()),
          });
        }
      }),
    );
  }

  #query(config: CompanyListenerConfig, companyId: string): Query {
    let query: Query = this.#o.firestore.collection(fillPath(config.collection, { company_id: companyId }));
    for (const [field, op, value] of config.where ?? []) {
      query = query.where(field, op as WhereFilterOp, fillValue(value, '{company_id}', companyId));
    }
    return query;
  }

  stats(): ListenerSourceStats {
    return this.#inner.stats();
  }
}
