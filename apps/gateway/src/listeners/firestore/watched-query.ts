import { type Cursor, formatCursor, type ListenerChange, type ListenerStatus, parseCursor } from '@livebus/protocol';
import type { Firestore, Query, QuerySnapshot, Timestamp } from 'firebase-admin/firestore';
import { InvalidEventError } from '../../fleet/bus/invalid-event-error';
import type { Logger } from '../../logger';
import { addToUnsaved, deltaOf, mergeCarried, type UnsavedMark } from '../carry-over';
import { listenerDefaults } from '../listener-defaults';
import type { Emit } from '../listener-source';
import { LogThrottle } from '../log-throttle';
import { type DeliveredDelta, type DeliveredDocs, isAfter, markOf } from '../watermark-store';
import { errorKind } from './error-kind';
import { firestoreJson, timestampText } from './firestore-json';

/** What a {@link WatchedQuery} reports to its source (metrics). */
export interface WatchedQueryObserver {
  reads(userId: string, listener: string, reads: number): void;
  events(listener: string, count: number): void;
  deduplicated(listener: string, count: number): void;
  error(kind: string): void;
  restart(): void;
  /**
   * The listener's failing state changed: `from` and `to` are the kind of its last failure
   * while failing, undefined while not (a failure starts it, a failure of another kind moves
   * it, a published snapshot or a stop ends it).
   */
  failing?(from: string | undefined, to: string | undefined): void;
  /**
   * A snapshot with live changes (not a listener's first) arrived at `arrivedAt` (ms, this
   * clock): its read time and its changes' update times (ms, Firestore's clock).
   */
  delay?(source: string, readMs: number, updateMs: readonly number[], arrivedAt: number): void;
}

/** Options of {@link WatchedQuery}. */
export interface WatchedQueryOptions {
  query: Query;
  userId: string;
  /** Listener name (the `listener` field of its events). */
  listener: string;
  /** The `source` field of its events. */
  source: string;
  /** What it watches (a collection path, a workflow's document path): the `path` of its `listener.status` events. */
  path: string;
  /**
   * The kind of a `failing` status of this listener that the user was told and not yet told the
   * end of (a predecessor's, read back from the user's stream): its recovery is told, and a
   * failure of the same kind is not told again. @default none told
   */
  told?: string;
  /**
   * Tells the user nothing of a failure (no `failing` status) until this settles: a WORKFLOW.watch
   * waiting for its answer, which says itself that the listener could not open (the listener is
   * then stopped first, and nothing is ever told). Settled while failing: the failure is told then.
   * @default none held
   */
  holdStatus?: Promise<void>;
  emit: Emit;
  /** Where the previous owner stopped (see {@link import('../watermark-store').WatermarkStore}); undefined: start afresh. */
  mark: string | undefined;
  /** Documents delivered as present before (path -> update time), stored with the mark. @default {} */
  docs?: DeliveredDocs;
  /** The delivered set overflowed {@link WatchedQueryOptions.trackedDocsMax} before. @default false */
  overflowed?: boolean;
  /** Cursor of the last event the stored mark covers (an older carried one never replaces it). */
  cursor?: Cursor;
  /**
   * Paths tracked at most in the delivered set; past it, documents that are not
   * tracked are deduplicated by the mark alone and their deletion during a takeover
   * goes unreported. @default listenerDefaults.trackedDocsMax (1 000)
   */
  trackedDocsMax?: number;
  /**
   * Stores the mark, the delivered set's changes and the cursor of the last event the
   * mark covers (undefined: unchanged) after each published snapshot; false: the lease
   * is gone (fenced). Also, with no mark (undefined: the stored one stays), the cursor right
   * before a `failing` status told while no cursor is stored, so a successor reads it back.
   */
  saveMark: (mark: string | undefined, delta: DeliveredDelta, cursor: Cursor | undefined) => Promise<boolean>;
  /** Called once when {@link WatchedQueryOptions.saveMark} answers false. */
  onFenced: () => void;
  /**
   * What this listener published on this instance before (a stopped predecessor) but
   * never stored; merged into `mark` and `docs`, and saved once the query starts.
   */
  carried?: UnsavedMark;
  /**
   * Called by {@link WatchedQuery.stop} with what was published but could not be
   * stored (Redis away, or the lease lost while a publish was in flight), so a later
   * attach on this instance resumes from it instead of from the stale stored mark.
   */
  onUnsaved?: (unsaved: UnsavedMark) => void;
  /** Registers a retry of an unsaved mark (the manager calls it on each lease renewal); returns its removal. */
  retrySaves?: (retry: () => void) => () => void;
  observer: WatchedQueryObserver;
  logger: Logger;
  /** @default listenerDefaults.retryMinMs (500) */
  retryMinMs?: number;
  /** @default listenerDefaults.retryMaxMs (30 s) */
  retryMaxMs?: number;
  /** No snapshot for this long: re-open (0: never). @default listenerDefaults.stallMs (30 min) */
  stallMs?: number;
  /**
   * Reads documents by path (undefined: it does not exist), to confirm that a delivered
   * path missing from a first snapshot is really gone before reporting it removed.
   * @default point reads (`getAll`) on the query's Firestore client
   */
  readDocs?: (paths: readonly string[]) => Promise<Map<string, Timestamp | undefined>>;
}

/** A Firestore time in ms since the epoch (fractional). */
const msOf = (t: { seconds: number; nanoseconds: number }) => t.seconds * 1000 + t.nanoseconds / 1e6;

/** Point reads on the query's own client: one billed read per path. */
function pointReads(query: Query): (paths: readonly string[]) => Promise<Map<string, Timestamp | undefined>> {
  return async (paths) => {
    const db = query.firestore;
    const snapshots = await db.getAll(...paths.map((path) => db.doc(path)));
    return new Map(snapshots.map((s) => [s.ref.path, s.exists ? s.updateTime : undefined]));
  };
}

/**
 * Failure kinds never told to the user: a publish (`emit`) or a mark (`mark`) that failed, whose
 * status would go the same way (the user's stream on Redis), and fail with it.
 */
const UNTOLD_KINDS: ReadonlySet<string> = new Set(['emit', 'mark']);

/**
 * The `listener_error` `kind: "status"` lines (a status that could not be published), one throttle
 * per logger, so per process: Redis away fails every failing listener's status at each retry.
 */
const statusLogs = new WeakMap<Logger, LogThrottle>();

/** The queries started and not stopped, per Firestore client (see {@link stopQueriesOn}). */
const openOn = new WeakMap<Firestore, Set<WatchedQuery>>();

/**
 * Stops every {@link WatchedQuery} still open on `firestore` and says how many there were.
 * Shutdown calls it before terminating the client: Firestore refuses to terminate while a
 * listener is registered, and a listener left behind keeps re-opening its stream forever.
 */
export async function stopQueriesOn(firestore: Firestore): Promise<number> {
  const open = [...(openOn.get(firestore) ?? [])];
  // Handed over: the user is told nothing here; the next holder tells its own state.
  await Promise.allSettled(open.map((q) => q.stop({ handover: true })));
  return open.length;
}

/**
 * One Firestore query listener of one user, kept alive: a failed listener
 * (permission denied, network, a stream that stalls) is re-opened with jittered
 * backoff, and every (re)open resumes from what was delivered, so nothing is
 * delivered twice.
 *
 * Snapshots are applied one at a time. The first snapshot of a user with no mark
 * is delivered as `initial` added events. Afterwards each document version is
 * delivered once, judged per document: the listener remembers, per path, the
 * update time it delivered (the delivered set, stored with the mark), and drops a
 * version it already delivered. The first snapshot of a re-open (or of a takeover)
 * therefore delivers what changed meanwhile (`added` for a path never delivered,
 * `modified` otherwise) and a `removed` for every delivered path it lacks (deleted
 * while no listener ran). Deduplicating per document rather than by the snapshot's
 * read time alone matters when read times are not consistent with commit times (a
 * restarted Firestore emulator sends a snapshot that omits a commit older than its
 * read time, and delivers it later); the mark alone is used only for paths past
 * the bound of the delivered set.
 */
export class WatchedQuery {
  readonly #o: Required<
    Omit<WatchedQueryOptions, 'carried' | 'cursor' | 'onUnsaved' | 'retrySaves' | 'readDocs' | 'told' | 'holdStatus'>
  > &
    Pick<WatchedQueryOptions, 'onUnsaved' | 'retrySaves' | 'readDocs'>;
  #unsubscribe: (() => void) | undefined;
  #chain: Promise<void> = Promise.resolve();
  #mark: string | undefined;
  readonly #docs: Map<string, string>;
  #overflowed: boolean;
  #seenFirst = false;
  #attempt = 0;
  /** When the first failure of the current run of retries happened (its recovery says how long). */
  #failingSince = 0;
  /** The kind of the last failure of the current run (a new kind is warned about); undefined: not failing. */
  #failingKind: string | undefined;
  /**
   * The kind of the last `failing` status published to the user and not ended since (by a
   * `recovered`, or a `failing` with `retrying: false`); undefined: the user believes it healthy.
   */
  #told: string | undefined;
  /** Whether a cursor of this listener is stored or being stored (a successor reads the stream after it). */
  #cursored: boolean;
  /**
   * The cursor right before a `failing` status told while no cursor was stored, to store (a
   * successor reads the status back after it and tells the recovery); undefined: none to store.
   */
  #toldAt: Cursor | undefined;
  /** Failures are not told yet ({@link WatchedQueryOptions.holdStatus}). */
  #holding = false;
  #lastSnapshotAt = Date.now();
  #retryTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #generation = 0;
  /** Published but not stored yet: saved with the next snapshot, on a lease renewal, or handed over on stop. */
  #unsaved: UnsavedMark | undefined;
  #retryQueued = false;
  #stopRetries: (() => void) | undefined;
  #firstPublished!: () => void;
  readonly #first = new Promise<void>((resolve) => {
    this.#firstPublished = resolve;
  });

  constructor(options: WatchedQueryOptions) {
    this.#o = {
      retryMinMs: listenerDefaults.retryMinMs,
      retryMaxMs: listenerDefaults.retryMaxMs,
      stallMs: listenerDefaults.stallMs,
      docs: {},
      overflowed: false,
      trackedDocsMax: listenerDefaults.trackedDocsMax,
      ...options,
    };
    const merged = mergeCarried(
      {
        mark: options.mark,
        docs: this.#o.docs,
        overflowed: this.#o.overflowed,
        ...(options.cursor ? { cursor: options.cursor } : {}),
      },
      options.carried,
    );
    this.#mark = merged.mark;
    this.#docs = new Map(Object.entries(merged.docs));
    this.#overflowed = merged.overflowed;
    this.#unsaved = merged.unsaved;
    this.#cursored = options.cursor !== undefined || merged.unsaved?.cursor !== undefined;
    this.#told = options.told;
    if (options.holdStatus) {
      this.#holding = true;
      void options.holdStatus.then(() => {
        this.#holding = false;
        // Failing when the hold ends: told now (nothing once stopped: the watch was taken back).
        const kind = this.#failingKind;
        if (!this.#stopped && kind !== undefined && this.#tells(kind)) this.#queueTell(kind, true);
      });
    }
  }

  /** Whether a failure of `kind` is to be told now: not told yet, not held, of a kind told at all. */
  #tells(kind: string): boolean {
    return kind !== this.#told && !this.#holding && !UNTOLD_KINDS.has(kind);
  }

  /**
   * Resolves once a first snapshot's events are published (also when it had none), or
   * when the query is stopped: what a watch's reply waits for.
   */
  published(): Promise<void> {
    return this.#first;
  }

  /**
   * Whether the listener is open: registered with the Firestore client and not failing. Not
   * while it waits to retry, nor once re-opened until a snapshot is published again (the
   * client may be retrying the stream meanwhile).
   */
  get open(): boolean {
    return this.#unsubscribe !== undefined && this.#failingKind === undefined;
  }

  /** Whether the listener is failing: from a failure until its next published snapshot (retries included). */
  get failing(): boolean {
    return this.#failingKind !== undefined;
  }

  /** The kind of the last failure while the listener is {@link failing} (`permission_denied`, ...); else undefined. */
  get failingKind(): string | undefined {
    return this.#failingKind;
  }

  /** Opens the listener. */
  start(): void {
    this.#register(true);
    // A carried-over mark goes to the store under this attach's lease before any snapshot.
    if (this.#unsaved) this.#retrySave();
    this.#stopRetries = this.#o.retrySaves?.(() => this.#retrySave());
    this.#open();
    if (this.#o.stallMs > 0) {
      this.#stallTimer = setInterval(() => this.#checkStall(), Math.min(this.#o.stallMs / 2, 60_000));
      this.#stallTimer.unref();
    }
  }

  /** Adds this query to (or removes it from) its client's open set; fakes without a client are not tracked. */
  #register(open: boolean): void {
    const firestore = this.#o.query.firestore as Firestore | undefined;
    if (!firestore) return;
    const set = openOn.get(firestore);
    if (!open) set?.delete(this);
    else if (set) set.add(this);
    else openOn.set(firestore, new Set([this]));
  }

  #open(): void {
    if (this.#stopped) return;
    const generation = ++this.#generation;
    this.#seenFirst = false;
    this.#lastSnapshotAt = Date.now();
    this.#unsubscribe = this.#o.query.onSnapshot(
      (snapshot) => {
        const arrivedAt = Date.now();
        // Queued, so a slow publish never lets two snapshots interleave.
        this.#chain = this.#chain.then(() => this.#apply(snapshot, generation, arrivedAt));
      },
      (error) => this.#fail(errorKind(error), error, generation),
    );
  }

  async #apply(snapshot: QuerySnapshot, generation: number, arrivedAt: number): Promise<void> {
    if (this.#stopped || generation !== this.#generation) return;
    this.#lastSnapshotAt = Date.now();
    const first = !this.#seenFirst;
    this.#seenFirst = true;
    const fresh = first && this.#mark === undefined;
    const changes = snapshot.docChanges();
    // Firestore bills every document of a first snapshot (at least one read), then one per change.
    this.#o.observer.reads(this.#o.userId, this.#o.listener, first ? Math.max(1, snapshot.size) : changes.length);
    const events: ListenerChange[] = [];
    const delta: DeliveredDelta = { put: {}, del: [] };
    /** Update times of the changes (the delivery latency's origin), for the snapshot delay. */
    const updated: number[] = [];
    const change = (path: string, type: ListenerChange['change'], at: Timestamp, data?: unknown) => {
      if (type !== 'removed') updated.push(msOf(at));
      events.push({
        source: this.#o.source,
        listener: this.#o.listener,
        path,
        change: type,
        initial: fresh,
        update_time: timestampText(at),
        ...(type === 'removed' ? {} : { data: firestoreJson(data) }),
      });
    };
    let dropped = 0;
    const present = first && !fresh ? new Set<string>() : undefined;
    for (const c of changes) {
      const doc = c.doc;
      const path = doc.ref.path;
      if (c.type === 'removed') {
        change(path, 'removed', snapshot.readTime);
        delta.del.push(path);
        continue;
      }
      present?.add(path);
      const delivered = this.#docs.get(path) ?? delta.put[path];
      let type = c.type;
      if (delivered !== undefined) {
        if (!isAfter(doc.updateTime, delivered)) {
          dropped++; // this version was delivered before the re-open or takeover
          continue;
        }
        if (first) type = 'modified';
      } else if (this.#overflowed && !isAfter(doc.updateTime, this.#mark)) {
        dropped++; // not tracked (past the bound): the mark decides
        continue;
      } else if (first && !fresh) {
        type = this.#overflowed && !isAfter(doc.createTime, this.#mark) ? 'modified' : 'added';
      }
      change(path, type, doc.updateTime, doc.data());
      delta.put[path] = markOf(doc.updateTime);
    }
    if (present) {
      // Delivered as present, absent now: deleted while no listener ran, unless still there.
      let gone: string[];
      try {
        gone = await this.#confirmGone([...this.#docs.keys()].filter((path) => !present.has(path)));
      } catch (error) {
        this.#fail('read', error, generation);
        return;
      }
      if (this.#stopped || generation !== this.#generation) return;
      for (const path of gone) {
        change(path, 'removed', snapshot.readTime);
        delta.del.push(path);
      }
    }
    if (dropped > 0) this.#o.observer.deduplicated(this.#o.listener, dropped);
    let cursor: Cursor | undefined;
    /** The changes of `delta` published so far: a failure part way keeps them from going out twice. */
    const sent: DeliveredDelta = { put: {}, del: [] };
    try {
      for (const data of events) {
        try {
          const published = await this.#o.emit({ event: 'listener.change', data });
          if (published) cursor = published.cursor;
        } catch (error) {
          if (!(error instanceof InvalidEventError)) throw error;
          // Never publishable (a document larger than an event may be): skipped, and counted as
          // delivered, rather than re-read and refused for ever with every change after it.
          this.#o.logger.warn('listener_change_skipped', {
            uid: this.#o.userId,
            listener: this.#o.listener,
            path: data.path,
            error: error.message,
          });
          this.#o.observer.error('too_large');
        }
        if (data.change === 'removed') sent.del.push(data.path);
        else if (delta.put[data.path] !== undefined) sent.put[data.path] = delta.put[data.path] as string;
      }
    } catch (error) {
      if ((error as { code?: unknown }).code === 'fenced') {
        // The lease is gone (another instance holds it): stop, as when a mark is refused.
        if (!this.#stopped) this.#o.onFenced();
        return;
      }
      // Not all published: what went out is tracked (the re-open does not send it again), the
      // mark stays, and the re-open from it re-reads and sends the rest.
      this.#track(sent);
      this.#fail('emit', error, generation);
      return;
    }
    if (events.length > 0) this.#o.observer.events(this.#o.listener, events.length);
    if (events.length > 0 && !first) {
      this.#o.observer.delay?.(this.#o.source, msOf(snapshot.readTime), updated, arrivedAt);
    }
    if (first) this.#firstPublished();
    if (this.#attempt > 0) {
      this.#o.logger.info('listener_recovered', {
        uid: this.#o.userId,
        listener: this.#o.listener,
        attempts: this.#attempt,
        down_ms: Date.now() - this.#failingSince,
      });
    }
    this.#attempt = 0;
    this.#setFailing(undefined);
    // After the changes the failure held back, before the mark: a successor reading the stream
    // after the stored cursor sees the failing status and whether its end was told.
    if (this.#told !== undefined && !(await this.#tell('recovered', undefined, true))) return;
    this.#track(delta);
    const mark = markOf(snapshot.readTime);
    this.#mark = mark;
    // Published now, whether or not the store takes it (this snapshot's removals happened by its read time).
    this.#unsaved = addToUnsaved(this.#unsaved, mark, delta, mark, cursor);
    if (cursor !== undefined) this.#cursored = true;
    await this.#save();
  }

  /**
   * The delivered paths a first snapshot lacks that are really gone. A first snapshot
   * can lack documents that exist: the Firestore emulator, when a write lands while a
   * new listen loads, marks a partial result set current and sends the rest in the next
   * snapshot. A point read settles it: the very version delivered, unchanged, still
   * matches the query (filters read only the document's fields), so it was not removed.
   */
  async #confirmGone(missing: string[]): Promise<string[]> {
    if (missing.length === 0) return missing;
    const read = await (this.#o.readDocs ?? pointReads(this.#o.query))(missing);
    this.#o.observer.reads(this.#o.userId, this.#o.listener, missing.length);
    return missing.filter((path) => {
      const updated = read.get(path);
      const delivered = this.#docs.get(path);
      return updated === undefined || delivered === undefined || isAfter(updated, delivered);
    });
  }

  /** Queues a save of the unsaved mark (at most one waiting) behind the snapshot being applied. */
  #retrySave(): void {
    if (this.#stopped || this.#retryQueued || (!this.#unsaved && !this.#toldAt)) return;
    this.#retryQueued = true;
    this.#chain = this.#chain.then(() => {
      this.#retryQueued = false;
      return this.#save();
    });
  }

  /**
   * Stores the unsaved mark (or else the cursor a told failure left, {@link #toldAt}); kept
   * when the store is away, handed over on stop when the lease is gone.
   */
  async #save(): Promise<void> {
    const unsaved = this.#unsaved;
    const toldAt = this.#toldAt;
    if (!unsaved && !toldAt) return;
    let saved: boolean;
    try {
      saved = unsaved
        ? await this.#o.saveMark(unsaved.mark, deltaOf(unsaved), unsaved.cursor ?? toldAt)
        : await this.#o.saveMark(undefined, { put: {}, del: [] }, toldAt);
    } catch (error) {
      // Redis away: kept, and retried on the next snapshot or lease renewal.
      this.#o.logger.warn('listener_error', {
        uid: this.#o.userId,
        listener: this.#o.listener,
        kind: 'mark',
        error: String(error),
      });
      return;
    }
    if (saved) {
      if (this.#unsaved === unsaved) this.#unsaved = undefined;
      if (this.#toldAt === toldAt) this.#toldAt = undefined;
      return;
    }
    if (!this.#stopped) this.#o.onFenced();
  }

  /** Applies a published snapshot's changes to the delivered set, within its bound. */
  #track(delta: DeliveredDelta): void {
    // Only tracked paths are stored, so only their removals need storing (this bounds the unsaved mark).
    delta.del = delta.del.filter((path) => this.#docs.delete(path));
    for (const [path, mark] of Object.entries(delta.put)) {
      if (this.#docs.has(path) || this.#docs.size < this.#o.trackedDocsMax) {
        this.#docs.set(path, mark);
        continue;
      }
      delete delta.put[path];
      if (!this.#overflowed) {
        this.#overflowed = true;
        delta.overflow = true;
        this.#o.logger.warn('listener_docs_overflow', {
          uid: this.#o.userId,
          listener: this.#o.listener,
          tracked: this.#docs.size,
        });
      }
    }
  }

  #checkStall(): void {
    if (this.#stopped || !this.#unsubscribe) return;
    const silentMs = Date.now() - this.#lastSnapshotAt;
    if (silentMs < this.#o.stallMs) return;
    this.#o.logger.warn('listener_stalled', { uid: this.#o.userId, listener: this.#o.listener, silent_ms: silentMs });
    this.#o.observer.error('stalled');
    this.#close();
    this.#o.observer.restart();
    this.#open();
  }

  #fail(kind: string, error: unknown, generation: number): void {
    if (this.#stopped || generation !== this.#generation) return;
    this.#close();
    this.#o.observer.error(kind);
    const attempt = ++this.#attempt;
    if (attempt === 1) this.#failingSince = Date.now();
    const newKind = attempt === 1 || kind !== this.#failingKind;
    this.#setFailing(kind);
    const base = Math.min(this.#o.retryMaxMs, this.#o.retryMinMs * 2 ** (attempt - 1));
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    // A warning for the first failure, and for a failure of another kind (`unavailable`, then
    // `permission_denied` after a rules deploy); retries failing the same way at debug (a Firestore
    // outage fails every user's listener, each retrying every 30 s at most), then
    // `listener_recovered` once one succeeds. Every failure is counted (livebus_listener_errors_total).
    this.#o.logger[newKind ? 'warn' : 'debug']('listener_error', {
      uid: this.#o.userId,
      listener: this.#o.listener,
      kind,
      attempt,
      retry_in_ms: delay,
      error: String(error),
    });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#o.observer.restart();
      this.#open();
    }, delay);
    this.#retryTimer.unref();
    // Told on a change of state only: a new kind, or one whose telling failed before (Redis away);
    // never a publish that failed (its status would fail the same way), nor while held.
    if (this.#tells(kind)) this.#queueTell(kind, true);
  }

  /** Publishes a `failing` status behind the snapshot being applied (the user's stream keeps their order). */
  #queueTell(kind: string, retrying: boolean): void {
    this.#chain = this.#chain.then(async () => {
      // Settled meanwhile (recovered, or told already by an earlier queued one).
      if (retrying && (this.#stopped || this.#failingKind !== kind || this.#told === kind)) return;
      await this.#tell('failing', kind, retrying);
    });
  }

  /**
   * Publishes a `listener.status` to the user and records what they were told; false when it was
   * not published (fenced: the lease is gone and the listener stops; anything else is logged,
   * and the status told again at the next change of state or failed retry).
   */
  async #tell(status: ListenerStatus['status'], kind: string | undefined, retrying: boolean): Promise<boolean> {
    const data: ListenerStatus = {
      source: this.#o.source,
      listener: this.#o.listener,
      path: this.#o.path,
      status,
      ...(status === 'failing' ? { kind, retrying } : {}),
    };
    let cursor: Cursor | undefined;
    try {
      const published = await this.#o.emit({ event: 'listener.status', data });
      if (published) cursor = published.cursor;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'fenced') {
        if (!this.#stopped) this.#o.onFenced();
        return false;
      }
      this.#logStatusError(error);
      return status === 'recovered'; // a recovery goes on (its changes are out); its telling is lost
    }
    this.#told = status === 'failing' && retrying ? kind : undefined;
    if (this.#told !== undefined && cursor !== undefined) await this.#storeToldAt(cursor);
    return true;
  }

  /**
   * A failure told while no cursor of this listener is stored (before its first change): the
   * cursor right before its status is stored, else a successor would not know it was told,
   * nor tell its recovery. Later statuses come after it, and its first change's cursor replaces it.
   */
  async #storeToldAt(cursor: Cursor): Promise<void> {
    const at = parseCursor(cursor);
    if (this.#cursored || !at || at.offset === 0) return;
    this.#cursored = true;
    this.#toldAt = formatCursor(at.epoch, at.offset - 1);
    await this.#save();
  }

  /**
   * A status not published (Redis away): `listener_error` `kind: "status"`, warned at the first of
   * the process, then at most once per {@link import('../log-throttle').REPEATED_LOG_MS} with
   * `suppressed` (how many went at debug since); the others at debug.
   */
  #logStatusError(error: unknown): void {
    const logger = this.#o.logger;
    let throttle = statusLogs.get(logger);
    if (!throttle) {
      throttle = new LogThrottle();
      statusLogs.set(logger, throttle);
    }
    const suppressed = throttle.take(Date.now());
    const fields = { uid: this.#o.userId, listener: this.#o.listener, kind: 'status', error: String(error) };
    if (suppressed === undefined) logger.debug('listener_error', fields);
    else logger.warn('listener_error', { ...fields, suppressed });
  }

  /** Sets the kind the listener is failing with (undefined: not failing), told to the observer. */
  #setFailing(kind: string | undefined): void {
    const from = this.#failingKind;
    if (from === kind) return;
    this.#failingKind = kind;
    this.#o.observer.failing?.(from, kind);
  }

  #close(): void {
    this.#generation++;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    unsubscribe?.();
  }

  /**
   * Closes the listener for good; resolves once no snapshot is being applied (a
   * publish in flight completes first). A mark published but not stored is tried
   * once more (the lease may still be held), then handed to `onUnsaved`.
   */
  async stop(options: { handover?: boolean } = {}): Promise<void> {
    // Closed for good while the user was told it fails (not handed over: the next holder tells
    // its own state): the failure ends here, and the user is told no retry follows.
    const told = this.#told;
    if (told !== undefined && !options.handover && !this.#stopped) {
      this.#chain = this.#chain.then(async () => {
        await this.#tell('failing', told, false);
      });
    }
    this.#stopped = true;
    this.#register(false);
    this.#setFailing(undefined);
    this.#firstPublished();
    clearTimeout(this.#retryTimer);
    clearInterval(this.#stallTimer);
    this.#stopRetries?.();
    this.#stopRetries = undefined;
    this.#close();
    await this.#chain;
    await this.#save();
    const unsaved = this.#unsaved;
    this.#unsaved = undefined;
    if (unsaved) this.#o.onUnsaved?.(unsaved);
  }
}
