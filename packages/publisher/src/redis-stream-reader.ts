import { type Cursor, formatCursor, parseCursor } from '@livebus/protocol';
import { newEpoch } from './epoch';
import type { RedisClient } from './redis/client';
import { userKeys } from './redis/keyspace';
import { streamScripts } from './redis/stream-scripts';
import type { StoredEvent } from './redis-stream-writer';
import { type ResolvedRetention, type RetentionOptions, resolveRetention } from './retention';

/** What a resuming reader gets: the events after its cursor, or `gap`. `cursor` is the stream's head. */
export type StreamRead =
  | { status: 'resumed'; events: StoredEvent[]; cursor: Cursor }
  | { status: 'gap'; events: []; cursor: Cursor };

/**
 * Reads users' Redis streams for resume. Both reads create the user's epoch when
 * it is missing (atomically, in the Lua script): a head handed to a fresh
 * session must still be the same epoch when that session later resumes from it.
 */
export class RedisStreamReader {
  readonly #client: RedisClient;
  readonly #r: ResolvedRetention;

  constructor(client: RedisClient, options: RetentionOptions = {}) {
    this.#client = client;
    this.#r = resolveRetention(options);
  }

  /** The cursor of the user's latest event (`<epoch>:0` for a stream with none yet). */
  async head(userId: string): Promise<Cursor> {
    const k = userKeys(userId);
    const [epoch, offset] = (await streamScripts.head.run(
      this.#client,
      [k.stream, k.meta],
      [newEpoch(), this.#r.metaTtlMs],
    )) as [string, number];
    return formatCursor(epoch, Number(offset));
  }

  /** Events after `afterCursor`, or `gap` when some are gone or the cursor is of another epoch. */
  readSince(userId: string, afterCursor: Cursor): Promise<StreamRead> {
    return this.#read(userId, afterCursor, false);
  }

  /**
   * Every event the stream still holds after `afterCursor`, even where some are
   * missing (trimmed, or offsets skipped at a failover): what was published since,
   * as far as the stream knows. `gap` only for a cursor of another epoch or past the head.
   * Not for resuming a session (it would not hear of the hole); for a reader that
   * must not publish again what is already there.
   */
  readRetained(userId: string, afterCursor: Cursor): Promise<StreamRead> {
    return this.#read(userId, afterCursor, true);
  }

  async #read(userId: string, afterCursor: Cursor, holes: boolean): Promise<StreamRead> {
    const at = parseCursor(afterCursor);
    const k = userKeys(userId);
    const reply = (await streamScripts.readSince.run(
      this.#client,
      [k.stream, k.meta],
      [
        newEpoch(),
        this.#r.metaTtlMs,
        this.#r.retentionMs,
        // An unparseable cursor gets an epoch no stream has ('' is never generated).
        at?.epoch ?? '',
        at?.offset ?? 0,
        holes ? '1' : '',
      ],
    )) as [string, number, 'ok' | 'gap', ...string[]];
    const [epoch, top, status, ...data] = reply;
    const cursor = formatCursor(epoch, Number(top));
    if (status === 'gap') return { status: 'gap', events: [], cursor };
    return { status: 'resumed', events: data.map((d) => JSON.parse(d) as StoredEvent), cursor };
  }
}
