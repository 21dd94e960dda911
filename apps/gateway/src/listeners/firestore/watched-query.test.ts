import type { ListenerChange } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Query, Timestamp } from 'firebase-admin/firestore';
import { InvalidEventError } from '../../fleet/bus/invalid-event-error';
import type { Logger } from '../../logger';
import { markOf } from '../watermark-store';
import { stopQueriesOn, WatchedQuery, type WatchedQueryObserver, type WatchedQueryOptions } from './watched-query';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const quiet: WatchedQueryObserver = { reads() {}, events() {}, deduplicated() {}, error() {}, restart() {} };
const at = (seconds: number) => ({ seconds, nanoseconds: 0 }) as Timestamp;

type Change = [path: string, type: 'added' | 'modified' | 'removed', updated: number];

/** A query whose snapshots the test sends, one at a time, as Firestore's listen stream would. */
function scriptedQuery() {
  let next: ((snapshot: unknown) => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  let opens = 0;
  const query = {
    onSnapshot(onNext: (snapshot: unknown) => void, onError: (error: Error) => void) {
      opens++;
      next = onNext;
      failed = onError;
      return () => {
        next = undefined;
        failed = undefined;
      };
    },
  } as unknown as Query;
  const send = (readTime: number, size: number, changes: Change[]) =>
    next?.({
      readTime: at(readTime),
      size,
      docChanges: () =>
        changes.map(([path, type, updated]) => ({
          type,
          doc: { ref: { path }, updateTime: at(updated), createTime: at(updated), data: () => ({ n: updated }) },
        })),
    });
  return {
    query,
    send,
    /** The open listen stream fails, as Firestore's does when it is unreachable. */
    fail: (error: Error) => failed?.(error),
    /** How many times a listener was opened on it. */
    get opens() {
      return opens;
    },
  };
}

/** A listener of user u1's `notes` on `q`, fresh unless `options` say otherwise. */
function watchedOn(q: ReturnType<typeof scriptedQuery>, options: Partial<WatchedQueryOptions>): WatchedQuery {
  return new WatchedQuery({
    query: q.query,
    userId: 'u1',
    listener: 'notes',
    source: 'firestore',
    path: 'users/u1/notes',
    emit: async () => undefined,
    mark: undefined,
    readDocs: async () => new Map(),
    saveMark: async () => true,
    onFenced: () => {},
    observer: quiet,
    logger: silent,
    retryMinMs: 10,
    ...options,
  });
}

/** A listener resuming from a delivered set ('c/kept' at 10, 'c/deleted' at 11, mark at 12). */
function resumed(readDocs: (paths: readonly string[]) => Promise<Map<string, Timestamp | undefined>>) {
  const q = scriptedQuery();
  const events: string[] = [];
  const watched = watchedOn(q, {
    emit: async (event) => {
      if (event.event !== 'listener.change') return; // its listener.status: told apart below
      const data = event.data as ListenerChange;
      events.push(`${data.change} ${data.path}`);
    },
    mark: markOf(at(12)),
    docs: { 'c/kept': markOf(at(10)), 'c/deleted': markOf(at(11)) },
    readDocs,
  });
  watched.start();
  return { q, events, watched };
}

describe('WatchedQuery: deletions reported when a listener resumes', () => {
  it('a first snapshot that lacks a delivered document which is still there, unchanged, reports no removal (the emulator sends the rest later)', async () => {
    const { q, events, watched } = resumed(
      async (paths) => new Map(paths.map((p) => [p, p === 'c/kept' ? at(10) : undefined])),
    );
    // As the Firestore emulator does when a write lands while the listen loads: a partial
    // result set marked current, then the documents it left out in the next snapshot.
    q.send(20, 1, [['c/new', 'added', 19]]);
    q.send(21, 2, [['c/kept', 'added', 10]]);
    q.send(22, 3, [['c/marker', 'added', 22]]);
    await waitFor(() => events.includes('added c/marker'), 'the marker');
    expect(events).toEqual(['added c/new', 'removed c/deleted', 'added c/marker']);
    await watched.stop();
  });

  it('a delivered document that is gone, or changed since and absent from the first snapshot, is reported removed once', async () => {
    const { q, events, watched } = resumed(
      async (paths) => new Map(paths.map((p) => [p, p === 'c/kept' ? at(15) : undefined])),
    );
    q.send(20, 0, []);
    q.send(21, 1, [['c/marker', 'added', 21]]);
    await waitFor(() => events.includes('added c/marker'), 'the marker');
    expect(events).toEqual(['removed c/kept', 'removed c/deleted', 'added c/marker']);
    await watched.stop();
  });

  it('a failed check publishes nothing and re-opens the listener, which checks again', async () => {
    let calls = 0;
    const { q, events, watched } = resumed(async (paths) => {
      calls++;
      if (calls === 1) throw new Error('unavailable');
      return new Map(paths.map((p) => [p, p === 'c/kept' ? at(10) : undefined]));
    });
    q.send(20, 0, []);
    await waitFor(() => calls === 1 && q.opens === 2, 're-opened after the failed check');
    q.send(21, 1, [['c/kept', 'added', 10]]);
    q.send(22, 2, [['c/marker', 'added', 22]]);
    await waitFor(() => events.includes('added c/marker'), 'the marker');
    expect(events).toEqual(['removed c/deleted', 'added c/marker']);
    await watched.stop();
  });
});

describe('WatchedQuery: a listener that keeps failing', () => {
  it('warns at its first failure, tells its retries at debug, and says when it recovered', async () => {
    const q = scriptedQuery();
    const logged: string[] = [];
    const log = (level: string) => (event: string, fields?: Record<string, unknown>) => {
      if (event.startsWith('listener_')) logged.push(`${level} ${event} ${fields?.attempt ?? fields?.attempts}`);
    };
    const watched = watchedOn(q, {
      logger: { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') },
    });
    watched.start();
    // Unavailable twice, then refused (a rules deploy): the new kind is a warning again.
    for (const [opens, code] of [
      [1, 14],
      [2, 14],
      [3, 7],
      [4, 7],
    ]) {
      await waitFor(() => q.opens === opens, `open ${opens}`);
      q.fail(Object.assign(new Error(`${code} failed`), { code }));
    }
    await waitFor(() => q.opens === 5, 'the fifth open');
    q.send(20, 0, []);
    await waitFor(() => logged.some((l) => l.includes('recovered')), 'the recovery');
    expect(logged).toEqual([
      'warn listener_error 1',
      'debug listener_error 2',
      'warn listener_error 3',
      'debug listener_error 4',
      'info listener_recovered 4',
    ]);
    await watched.stop();
  });
});

describe('WatchedQuery: failing, from a failure until a snapshot is published again', () => {
  /** A listener on `q` whose failing changes the test records, as `from>to` (`-`: not failing). */
  function recorded(q: ReturnType<typeof scriptedQuery>) {
    const changes: string[] = [];
    const observer: WatchedQueryObserver = {
      ...quiet,
      failing: (from, to) => changes.push(`${from ?? '-'}>${to ?? '-'}`),
    };
    return { changes, watched: watchedOn(q, { observer }) };
  }

  it('is failing through its retries, with the kind of its last failure, until a snapshot is published', async () => {
    const q = scriptedQuery();
    const { changes, watched } = recorded(q);
    watched.start();
    expect([watched.failing, watched.open]).toEqual([false, true]);
    for (const [opens, code] of [
      [1, 14],
      [2, 14],
      [3, 7],
    ]) {
      await waitFor(() => q.opens === opens, `open ${opens}`);
      q.fail(Object.assign(new Error(`${code} failed`), { code }));
      // Re-opened or waiting to be: failing either way until a snapshot is published.
      expect(watched.failing).toBe(true);
      expect(watched.failingKind).toBe(code === 7 ? 'permission_denied' : 'unavailable');
      expect(watched.open).toBe(false);
    }
    await waitFor(() => q.opens === 4, 'the fourth open');
    // Registered again, and the client may be retrying its stream: not open until a snapshot.
    expect([watched.failing, watched.open]).toEqual([true, false]);
    q.send(20, 0, []);
    await waitFor(() => !watched.failing, 'recovered');
    expect([watched.open, watched.failingKind]).toEqual([true, undefined]);
    expect(changes).toEqual(['->unavailable', 'unavailable>permission_denied', 'permission_denied>-']);
    await watched.stop();
    expect(changes).toHaveLength(3);
  });

  it('is not failing once stopped while failing', async () => {
    const q = scriptedQuery();
    const { changes, watched } = recorded(q);
    watched.start();
    q.fail(new Error('Exceeded maximum number of retries allowed.'));
    expect(watched.failing).toBe(true);
    await watched.stop();
    expect(watched.failing).toBe(false);
    expect(changes).toEqual(['->unavailable', 'unavailable>-']);
  });
});

describe('WatchedQuery: the user is told when it fails and when it recovers (listener.status)', () => {
  /** A listener on `q` whose published events the test records (`refuse`: a status publish that fails). */
  function telling(q: ReturnType<typeof scriptedQuery>, options: Partial<WatchedQueryOptions> = {}) {
    const events: string[] = [];
    let refuse = 0;
    const watched = watchedOn(q, {
      emit: async (event) => {
        if (event.event === 'listener.change') events.push(`${event.data.change} ${event.data.path}`);
        else if (event.event === 'listener.status') {
          if (refuse > 0) {
            refuse--;
            throw new Error('redis away');
          }
          const { status, kind, retrying, listener, path, source } = event.data;
          expect([source, listener, path]).toEqual(['firestore', 'notes', 'users/u1/notes']);
          events.push([status, kind, retrying].filter((x) => x !== undefined).join(' '));
        }
      },
      ...options,
    });
    return { events, watched, refuseNext: (n: number) => (refuse = n) };
  }
  const failWith = async (q: ReturnType<typeof scriptedQuery>, opens: number, code: number) => {
    await waitFor(() => q.opens === opens, `open ${opens}`);
    q.fail(Object.assign(new Error(`${code} failed`), { code }));
  };

  it('tells failing once per kind (not per retry), then recovered once, after the changes the failure held back', async () => {
    const q = scriptedQuery();
    const { events, watched } = telling(q);
    watched.start();
    q.send(10, 0, []);
    await failWith(q, 1, 14);
    await failWith(q, 2, 14);
    await failWith(q, 3, 9);
    await failWith(q, 4, 9);
    await waitFor(() => q.opens === 5, 'the fifth open');
    q.send(20, 1, [['users/u1/notes/a', 'added', 19]]);
    await waitFor(() => events.includes('recovered'), 'the recovery');
    q.send(21, 1, [['users/u1/notes/a', 'modified', 21]]);
    await waitFor(() => events.includes('modified users/u1/notes/a'), 'the next change');
    expect(events).toEqual([
      'failing unavailable true',
      'failing failed_precondition true',
      'added users/u1/notes/a',
      'recovered',
      'modified users/u1/notes/a',
    ]);
    await watched.stop();
    expect(events).toHaveLength(5);
  });

  it('a failing status that could not be published is told at the next failed retry; no recovered without it', async () => {
    const q = scriptedQuery();
    const { events, watched, refuseNext } = telling(q);
    watched.start();
    refuseNext(1);
    await failWith(q, 1, 7);
    await waitFor(() => q.opens === 2, 'the retry');
    // Its telling failed, and it recovered before failing again: the user heard nothing, and is told nothing.
    q.send(10, 0, []);
    await waitFor(() => !watched.failing, 'recovered');
    await failWith(q, 2, 7);
    await waitFor(() => events.length === 1, 'failing told');
    refuseNext(0);
    await failWith(q, 3, 7);
    await waitFor(() => q.opens === 4, 'the retry');
    q.send(11, 0, []);
    await waitFor(() => events.length === 2, 'recovered told');
    expect(events).toEqual(['failing permission_denied true', 'recovered']);
    await watched.stop();
  });

  it('closed while failing: told that no retry follows, unless handed over (the next holder tells its state)', async () => {
    for (const handover of [false, true]) {
      const q = scriptedQuery();
      const { events, watched } = telling(q);
      watched.start();
      await failWith(q, 1, 7);
      await waitFor(() => events.length === 1, 'failing told');
      await watched.stop({ handover });
      expect({ handover, events }).toEqual({
        handover,
        events: handover
          ? ['failing permission_denied true']
          : ['failing permission_denied true', 'failing permission_denied false'],
      });
    }
  });

  it('a failure its predecessor told (told) is ended by its first snapshot, and not told again for the same kind', async () => {
    const q = scriptedQuery();
    const { events, watched } = telling(q, { told: 'unavailable' });
    watched.start();
    await failWith(q, 1, 14);
    await waitFor(() => q.opens === 2, 'the retry');
    q.send(10, 1, [['users/u1/notes/a', 'added', 9]]);
    await waitFor(() => events.includes('recovered'), 'the recovery');
    expect(events).toEqual(['added users/u1/notes/a', 'recovered']);
    await watched.stop();
  });
});

describe('WatchedQuery: Redis away while the listener fails (listener.status cannot be published)', () => {
  /** A logger that records `level kind` of each listener_error line. */
  function recording() {
    const lines: string[] = [];
    const log = (level: string) => (event: string, fields?: Record<string, unknown>) => {
      if (event === 'listener_error') lines.push(`${level} ${fields?.kind}`);
    };
    return { lines, logger: { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') } };
  }

  it('a publish that fails (kind emit) is not told: the status would take the path that fails', async () => {
    const q = scriptedQuery();
    const { lines, logger } = recording();
    let statuses = 0;
    const watched = watchedOn(q, {
      logger,
      emit: async (event) => {
        if (event.event === 'listener.status') statuses++;
        throw new Error('redis away');
      },
    });
    watched.start();
    for (let opens = 1; opens <= 4; opens++) {
      await waitFor(() => q.opens === opens, `open ${opens}`);
      q.send(10 + opens, 1, [['users/u1/notes/a', 'added', 9]]);
    }
    await waitFor(() => q.opens === 5, 'the fourth retry');
    expect(watched.failingKind).toBe('emit');
    expect({ statuses, lines }).toEqual({
      statuses: 0,
      lines: ['warn emit', 'debug emit', 'debug emit', 'debug emit'],
    });
    await watched.stop();
    expect(statuses).toBe(0);
  });

  it("a status that cannot be published is tried at each failed retry, its failure warned once for the process's listeners", async () => {
    const { lines, logger } = recording();
    let statuses = 0;
    const emit = async () => {
      statuses++;
      throw new Error('redis away');
    };
    const queries = [scriptedQuery(), scriptedQuery()];
    const watched = queries.map((q) => watchedOn(q, { logger, emit }));
    for (const w of watched) w.start();
    for (let opens = 1; opens <= 3; opens++) {
      for (const q of queries) {
        await waitFor(() => q.opens === opens, `open ${opens}`);
        q.fail(Object.assign(new Error('14 unreachable'), { code: 14 }));
      }
    }
    await waitFor(() => statuses === 6, 'six tells tried');
    await waitFor(() => lines.filter((l) => l.endsWith('status')).length === 6, 'six status lines');
    expect(lines.filter((l) => l.endsWith('status'))).toEqual([
      'warn status',
      'debug status',
      'debug status',
      'debug status',
      'debug status',
      'debug status',
    ]);
    for (const w of watched) await w.stop();
  });
});

describe('WatchedQuery: status held (holdStatus: a WORKFLOW.watch waiting for its answer)', () => {
  it('tells nothing while held, nor when stopped while held; released while failing: tells the failure', async () => {
    for (const outcome of ['stopped', 'released'] as const) {
      const q = scriptedQuery();
      const statuses: string[] = [];
      let release!: () => void;
      const holdStatus = new Promise<void>((resolve) => {
        release = resolve;
      });
      const watched = watchedOn(q, {
        holdStatus,
        emit: async (event) => {
          if (event.event === 'listener.status') statuses.push(`${event.data.status} ${event.data.retrying}`);
        },
      });
      watched.start();
      for (let opens = 1; opens <= 2; opens++) {
        await waitFor(() => q.opens === opens, `open ${opens}`);
        q.fail(Object.assign(new Error('7 refused'), { code: 7 }));
      }
      await waitFor(() => q.opens === 3, 'the retry');
      expect(statuses).toEqual([]);
      if (outcome === 'stopped') {
        await watched.stop();
        release();
        await new Promise<void>((resolve) => setImmediate(resolve));
        expect({ outcome, statuses }).toEqual({ outcome, statuses: [] });
        continue;
      }
      release();
      await waitFor(() => statuses.length === 1, 'the failure told');
      await watched.stop();
      expect({ outcome, statuses }).toEqual({ outcome, statuses: ['failing true', 'failing false'] });
    }
  });
});

describe('WatchedQuery: a publish that fails part way through a snapshot', () => {
  /** A fresh listener whose emit the test scripts: `refuse(path)` says how the publish of that path fails. */
  function publishing(refuse: (path: string, attempt: number) => Error | undefined) {
    const q = scriptedQuery();
    const events: string[] = [];
    const skipped: string[] = [];
    const attempts = new Map<string, number>();
    const logger: Logger = {
      ...silent,
      warn: (event, fields) => {
        if (event === 'listener_change_skipped') skipped.push(String(fields?.path));
      },
    };
    const watched = watchedOn(q, {
      emit: async (event) => {
        if (event.event !== 'listener.change') return;
        const data = event.data as ListenerChange;
        const n = (attempts.get(data.path) ?? 0) + 1;
        attempts.set(data.path, n);
        const error = refuse(data.path, n);
        if (error) throw error;
        events.push(`${data.change} ${data.path}`);
      },
      logger,
    });
    watched.start();
    return { q, events, skipped, watched };
  }

  it('does not send again what went out before the failure when the re-open reads the same snapshot', async () => {
    const { q, events, watched } = publishing((path, n) =>
      path === 'c/b' && n === 1 ? new Error('redis_unavailable') : undefined,
    );
    const snapshot: Change[] = [
      ['c/a', 'added', 10],
      ['c/b', 'added', 11],
      ['c/c', 'added', 12],
    ];
    q.send(20, 3, snapshot);
    await waitFor(() => q.opens === 2, 're-opened after the failed publish');
    q.send(21, 3, snapshot);
    await waitFor(() => events.includes('added c/c'), 'the rest');
    expect(events).toEqual(['added c/a', 'added c/b', 'added c/c']);
    await watched.stop();
  });

  it('skips a change that can never be published (InvalidEventError), says so, and goes on with the rest', async () => {
    const { q, events, skipped, watched } = publishing((path) =>
      path === 'c/huge' ? new InvalidEventError('the frame would exceed 1048576 bytes') : undefined,
    );
    q.send(20, 3, [
      ['c/a', 'added', 10],
      ['c/huge', 'added', 11],
      ['c/c', 'added', 12],
    ]);
    await waitFor(() => events.includes('added c/c'), 'the change after it');
    q.send(22, 3, [['c/d', 'added', 22]]);
    await waitFor(() => events.includes('added c/d'), 'a later snapshot');
    expect(events).toEqual(['added c/a', 'added c/c', 'added c/d']);
    expect(skipped).toEqual(['c/huge']);
    expect(q.opens).toBe(1);
    await watched.stop();
  });
});

describe('stopQueriesOn: what shutdown stops before terminating the Firestore client', () => {
  /** A query of `client` counting its open listeners (Firestore refuses to terminate while any is). */
  function queryOf(client: object, open: { count: number }) {
    return {
      firestore: client,
      onSnapshot() {
        open.count++;
        return () => {
          open.count--;
        };
      },
    } as unknown as Query;
  }
  const watch = (query: Query) =>
    new WatchedQuery({
      query,
      userId: 'u1',
      listener: 'notes',
      source: 'firestore',
      path: 'users/u1/notes',
      emit: async () => {},
      mark: undefined,
      saveMark: async () => true,
      onFenced: () => {},
      observer: quiet,
      logger: silent,
    });

  it('stops the queries still open on that client only, and counts them', async () => {
    const client = {};
    const other = {};
    const open = { count: 0 };
    const elsewhere = { count: 0 };
    const detached = watch(queryOf(client, open));
    const left = [watch(queryOf(client, open)), watch(queryOf(client, open))];
    const kept = watch(queryOf(other, elsewhere));
    for (const q of [detached, ...left, kept]) q.start();
    await detached.stop();
    expect(open.count).toBe(2);

    expect(await stopQueriesOn(client as never)).toBe(2);
    expect(open.count).toBe(0);
    expect(elsewhere.count).toBe(1);
    // Stopped once: nothing is left to stop on that client.
    expect(await stopQueriesOn(client as never)).toBe(0);
    await kept.stop();
    expect(await stopQueriesOn(other as never)).toBe(0);
  });
});
