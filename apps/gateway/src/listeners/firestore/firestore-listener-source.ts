import type { Firestore, Query, WhereFilterOp } from 'firebase-admin/firestore';
import type { Logger } from '../../logger';
import { carryOptions, replayListener } from '../carry-over';
import {
  type AttachContext,
  type Detach,
  type Emit,
  ListenerRefusal,
  type ListenerSource,
  type ListenerSourceStats,
} from '../listener-source';
import { ListenerStats } from '../listener-stats';
import { fillPath, type UserListenerConfig } from '../listeners-config';
import type { WatermarkStore } from '../watermark-store';
import { fillValue } from '../where-filter';
import { WatchedQuery } from './watched-query';

/** Options of {@link FirestoreListenerSource}. */
export interface FirestoreListenerSourceOptions {
  /** The process's one Firestore client (every listener shares its channels). */
  firestore: Firestore;
  /** The `user` entries of LISTENERS_FILE. */
  listeners: readonly UserListenerConfig[];
  marks: WatermarkStore;
  logger: Logger;
  /** Shared with the workflow source so /metrics has one set of figures. @default a new one (10 000 users) */
  stats?: ListenerStats;
  /** @default listenerDefaults.retryMinMs (500) */
  retryMinMs?: number;
  /** @default listenerDefaults.retryMaxMs (30 s) */
  retryMaxMs?: number;
  /** @default listenerDefaults.stallMs (30 min) */
  stallMs?: number;
  /** Paths each listener tracks at most to report deletions during a takeover. @default listenerDefaults.trackedDocsMax (1 000) */
  trackedDocsMax?: number;
  /**
   * The placeholder the owner's id fills in paths and `where` values, and the `source` of the
   * events: `uid`/`firestore` for the per-user listeners, `company_id`/`company` for the
   * company listeners (listeners/company/). @default { placeholder: 'uid', name: 'firestore' }
   */
  owner?: { placeholder: string; name: string };
}

/** Thrown for a user id that cannot be placed in a Firestore path. */
export class ListenerUserIdError extends ListenerRefusal {
  override readonly name = 'ListenerUserIdError';
}

/**
 * The per-user listeners of LISTENERS_FILE on Firestore. Each attach opens one
 * {@link WatchedQuery} per configured listener, resuming from the marks the
 * previous owner of the user stored and from what it published after them (read
 * back from the user's stream: it may have been killed before storing), and its
 * detach closes them (forgetting the marks unless the listeners are handed over to
 * another instance).
 */
export class FirestoreListenerSource implements ListenerSource {
  readonly name: string;
  readonly #placeholder: string;
  readonly #o: FirestoreListenerSourceOptions;
  readonly #stats: ListenerStats;
  readonly #live = new Set<WatchedQuery>();

  constructor(options: FirestoreListenerSourceOptions) {
    this.#o = options;
    this.name = options.owner?.name ?? 'firestore';
    this.#placeholder = options.owner?.placeholder ?? 'uid';
    this.#stats = options.stats ?? new ListenerStats(10_000);
  }

  #path(config: UserListenerConfig, userId: string): string {
    return fillPath(config.collection, { [this.#placeholder]: userId });
  }

  #query(config: UserListenerConfig, userId: string): Query {
    const placeholder = this.#placeholder;
    let query: Query = this.#o.firestore.collection(this.#path(config, userId));
    for (const [field, op, value] of config.where ?? []) {
      query = query.where(field, op as WhereFilterOp, fillValue(value, `{${placeholder}}`, userId));
    }
    return query;
  }

  async attach(userId: string, emit: Emit, context: AttachContext = {}): Promise<Detach> {
    if (userId.includes('/')) throw new ListenerUserIdError(`user id ${JSON.stringify(userId)} contains '/'`);
    const resume = await this.#o.marks.get(userId);
    const replayed = await Promise.all(
      this.#o.listeners.map((config) =>
        replayListener(
          context.readSince,
          { mark: resume.marks[config.name], cursor: resume.cursors[config.name] },
          (of) => of.source === this.name && of.listener === config.name,
          (reason) =>
            this.#o.logger.warn('listener_error', {
              uid: userId,
              listener: config.name,
              kind: 'replay',
              error: reason,
            }),
        ),
      ),
    );
    let fenced = false;
    const queries = this.#o.listeners.map(
      (config, i) =>
        new WatchedQuery({
          query: this.#query(config, userId),
          userId,
          listener: config.name,
          source: this.name,
          path: this.#path(config, userId),
          ...(replayed[i]?.told === undefined ? {} : { told: replayed[i]?.told }),
          emit,
          mark: resume.marks[config.name],
          docs: resume.docs[config.name] ?? {},
          overflowed: resume.overflowed.includes(config.name),
          ...(resume.cursors[config.name] ? { cursor: resume.cursors[config.name] } : {}),
          saveMark: (mark, delta, cursor) =>
            context.fence
              ? this.#o.marks.set(userId, config.name, mark, context.fence, delta, cursor)
              : Promise.resolve(true),
          onFenced: () => {
            if (fenced) return;
            fenced = true;
            // Told once: by the manager (onFenced), which names the lease's token, else here.
            if (context.onFenced) context.onFenced();
            else context.hooks?.emit('lease.lost', { uid: userId, reason: 'fenced' });
          },
          ...carryOptions(context.carry, config.name, replayed[i]?.carried),
          observer: this.#stats,
          logger: this.#o.logger,
          ...(this.#o.retryMinMs === undefined ? {} : { retryMinMs: this.#o.retryMinMs }),
          ...(this.#o.retryMaxMs === undefined ? {} : { retryMaxMs: this.#o.retryMaxMs }),
          ...(this.#o.stallMs === undefined ? {} : { stallMs: this.#o.stallMs }),
          ...(this.#o.trackedDocsMax === undefined ? {} : { trackedDocsMax: this.#o.trackedDocsMax }),
        }),
    );
    for (const q of queries) {
      this.#live.add(q);
      q.start();
    }
    const detach: Detach = async (options = {}) => {
      await Promise.all(queries.map((q) => q.stop(options)));
      for (const q of queries) this.#live.delete(q);
      if (!options.handover) await this.#o.marks.clear(userId);
    };
    detach.ready = Promise.all(queries.map((q) => q.published())).then(() => undefined);
    return detach;
  }

  /** Its listeners open now: registered with Firestore and not failing ({@link WatchedQuery.open}). */
  queriesOpen(): number {
    let open = 0;
    for (const q of this.#live) if (q.open) open++;
    return open;
  }

  /** The shared counters, with this source's listeners open now. */
  stats(): ListenerSourceStats {
    return this.#stats.snapshot(this.queriesOpen());
  }
}
