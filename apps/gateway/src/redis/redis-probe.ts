import { isCluster, type RedisClient, RedisTimeoutError, withRedisTimeout } from '@livebus/publisher';

/** Options of {@link RedisProbe}. */
export interface RedisProbeOptions {
  /** Time between two PINGs. @default 1_000 */
  intervalMs?: number;
  /** Time a PING has to be answered. @default 2_000 */
  timeoutMs?: number;
  /** Told when Redis stops answering (with why) and when it answers again. */
  onChange?: (answering: boolean, why: string) => void;
  /** Told at every round that got no answer in time (with why), the first one included. */
  onUnanswered?: (why: string) => void;
  /**
   * Told at every round Redis answered that it is loading its dataset (with why: {@link LOADING_WHY}):
   * alive, serving no command yet. Not a round without an answer: the connection is kept.
   */
  onLoading?: (why: string) => void;
  /**
   * A standalone connection that has not answered this many rounds in a row is replaced
   * (`disconnect(true)`: ioredis reconnects, resolving the name again). @default 5
   */
  reconnectAfterRounds?: number;
}

/** Why a Redis that answers LOADING (restarted and loading its dataset, a replica's full sync) is not ready. */
export const LOADING_WHY = 'Redis is loading its dataset (LOADING)';

/** An error reply of Redis (ioredis's ReplyError): the connection carried an answer. */
const isReply = (error: unknown) => error instanceof Error && error.name === 'ReplyError';
const isLoadingReply = (error: unknown) => isReply(error) && (error as Error).message.startsWith('LOADING');
/** An INFO answer of a Redis loading its dataset (what ioredis's ready check waits on). */
const saysLoading = (info: unknown) => typeof info === 'string' && /^loading:1\r?$/m.test(info);

/**
 * Whether a Redis connection that looks up still answers. A frozen Redis (a stopped process,
 * a failover address that swallows packets) keeps the connection `ready` and answers
 * nothing: the client alone would call it up for ever. A PING every `intervalMs` that gets
 * no answer within `timeoutMs` says it is not answering, until one is answered again. On a
 * Cluster, each round PINGs every master (a PING alone would go to a random one, and one
 * frozen master would make the answer flip from round to round): not answering while any
 * master does not answer.
 *
 * A standalone connection that stays unanswered for {@link RedisProbeOptions.reconnectAfterRounds}
 * rounds is replaced: a failover behind a name (ElastiCache's primary endpoint) can leave it on
 * an address that swallows packets, where TCP would take minutes to give up, and no health check
 * fails for it (they do not follow Redis: see health.ts). A Redis that is really frozen is
 * reconnected to once it answers again. A Cluster is left to its own failover and slot map.
 *
 * The standalone connections made from the watched one (its subscribers, {@link watch}) are on
 * the same Redis, and a subscriber has no PING of its own: one that waits in `connect` counts its
 * rounds as the watched one does and is replaced at the same bound, and those `ready` are replaced
 * when the watched one is replaced for unanswered rounds (a subscriber without a ready check is
 * `ready` on a frozen Redis, its subscriptions unanswered).
 *
 * A Redis loading its dataset (restarted, a replica's full sync) answers, but serves nothing:
 * PING gets `-LOADING`, and ioredis's ready check (an INFO saying `loading:1`) waits and asks
 * again, the connection in `connect` until the load is done. A connection in `connect` is asked
 * an INFO of its own each round (one at a time; INFO is served while loading and written by
 * ioredis before `ready`): an answer saying `loading:1` proves it alive and its round is not
 * counted, as is a PING answered with any error reply. Such a connection is kept, and told not
 * answering ({@link loading}) until a PING is answered, rather than replaced every
 * `reconnectAfterRounds` rounds for as long as the load takes. An INFO answered `loading:0`
 * leaves the round counted: a connection that stays in `connect` on a Redis that is not loading
 * is stuck for another reason, and replaced at the bound as before.
 */
export class RedisProbe {
  readonly #client: RedisClient;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #onChange: (answering: boolean, why: string) => void;
  readonly #onUnanswered: (why: string) => void;
  readonly #onLoading: (why: string) => void;
  readonly #reconnectAfter: number;
  #answering = true;
  #loading = false;
  /** The connections asked an INFO whose answer has not come (one at a time each). */
  readonly #asking = new Set<RedisClient>();
  #unansweredRounds = 0;
  #pinging = false;
  #timer: NodeJS.Timeout | undefined;
  /** The standalone connections made from the watched one ({@link watch}), each with its rounds in `connect` in a row. */
  readonly #companions = new Map<RedisClient, { rounds: number }>();

  constructor(client: RedisClient, options: RedisProbeOptions = {}) {
    this.#client = client;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
    this.#onChange = options.onChange ?? (() => {});
    this.#onUnanswered = options.onUnanswered ?? (() => {});
    this.#onLoading = options.onLoading ?? (() => {});
    this.#reconnectAfter = options.reconnectAfterRounds ?? 5;
  }

  /**
   * False from a PING that got no answer in time, or from Redis answering that it is loading its
   * dataset ({@link loading}), until a PING is answered again.
   */
  get answering(): boolean {
    return this.#answering;
  }

  /** True from Redis answering that it loads its dataset (LOADING) until a PING is answered. */
  get loading(): boolean {
    return this.#loading;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Watches a connection made from the watched one (a `duplicate()`: a subscriber), replaced as
   * described on the class; a Cluster's is left to ioredis, as the watched one is. Returns what
   * stops watching it (called before it is closed: a closed one must not be connected again).
   */
  watch(client: RedisClient): () => void {
    if (isCluster(client)) return () => {};
    const counted = { rounds: 0 };
    this.#companions.set(client, counted);
    return () => {
      if (this.#companions.get(client) === counted) this.#companions.delete(client);
    };
  }

  /** One PING (none while the connection is not ready: the client's own state says that). */
  async probe(): Promise<void> {
    this.#companionRounds();
    const status = this.#client.status;
    // `connect`: connected, and ioredis's ready check (an INFO, with no timeout of its own)
    // unanswered. A frozen Redis accepts connections (its kernel does) and answers nothing, so a
    // connection made to it after the one replaced below would wait there for ever, also once a
    // failover moved the name elsewhere: its rounds count as unanswered ones.
    if (status === 'connect' && !isCluster(this.#client)) {
      this.#unanswered();
      this.#askLoading(this.#client, () => {
        this.#unansweredRounds = 0;
        this.#saysLoading();
      });
      return;
    }
    if (status !== 'ready') {
      // A new connection starts its own count.
      this.#unansweredRounds = 0;
      return;
    }
    if (this.#pinging) return;
    this.#pinging = true;
    try {
      const client = this.#client;
      const pings = isCluster(client) ? client.nodes('master').map((node) => node.ping()) : [client.ping()];
      const answered = Promise.all(pings);
      // An answer that comes late says the connection is alive (Redis or this loop slow): not replaced for it.
      // So does an error reply (LOADING, BUSY): Redis is there, whatever it answered.
      answered.then(
        () => {
          this.#unansweredRounds = 0;
        },
        (error: unknown) => {
          if (isReply(error)) this.#unansweredRounds = 0;
        },
      );
      await withRedisTimeout(answered, this.#timeoutMs);
      this.#unansweredRounds = 0;
      this.#loading = false;
      this.#set(true, 'answered a PING');
    } catch (error) {
      if (isLoadingReply(error)) this.#saysLoading();
      if (!(error instanceof RedisTimeoutError)) return;
      const why = `no answer to a PING within ${this.#timeoutMs} ms`;
      this.#set(false, why);
      this.#onUnanswered(why);
      if (!isCluster(this.#client)) this.#unanswered();
    } finally {
      this.#pinging = false;
    }
  }

  /** A round of a standalone connection without an answer: replaced at the bound. */
  #unanswered(): void {
    if (++this.#unansweredRounds < this.#reconnectAfter) return;
    this.#unansweredRounds = 0;
    this.#client.disconnect(true);
    // Its subscribers that look up are on the same Redis: replaced with it. One in `connect` counts
    // its own rounds; one reconnecting already resolves the name again.
    for (const companion of this.#companions.keys()) {
      if (companion.status === 'ready') companion.disconnect(true);
    }
  }

  /**
   * A round of each subscriber watched: one waiting in `connect` (its ready check or name unanswered)
   * is replaced at the bound, unless Redis answers it that it is loading (asked as the main one is).
   */
  #companionRounds(): void {
    for (const [companion, counted] of this.#companions) {
      if (companion.status !== 'connect') counted.rounds = 0;
      else if (++counted.rounds >= this.#reconnectAfter) {
        counted.rounds = 0;
        companion.disconnect(true);
      } else {
        this.#askLoading(companion, () => {
          counted.rounds = 0;
        });
      }
    }
  }

  /**
   * Asks a connection waiting in `connect` an INFO (none while one it was asked is unanswered, for
   * at most the timeout): `loading` runs if Redis answers that it is loading its dataset.
   */
  #askLoading(client: RedisClient, loading: () => void): void {
    if (this.#asking.has(client)) return;
    this.#asking.add(client);
    withRedisTimeout(client.info('persistence'), this.#timeoutMs)
      .then(
        (info) => {
          if (saysLoading(info)) loading();
        },
        () => {},
      )
      .finally(() => this.#asking.delete(client));
  }

  /** Redis answered that it is loading: not answering, told every round; the connection is kept. */
  #saysLoading(): void {
    this.#loading = true;
    this.#set(false, LOADING_WHY);
    this.#onLoading(LOADING_WHY);
  }

  #set(answering: boolean, why: string): void {
    if (answering === this.#answering) return;
    this.#answering = answering;
    this.#onChange(answering, why);
  }
}
