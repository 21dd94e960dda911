import { SlicedQueue } from './sliced-queue';

/** Handshake work per turn of the event loop, at most this long (ms). */
export const HANDSHAKE_SLICE_MS = 5;
/** Time given away to accepting connections beyond the time worked since, at most this long (ms). */
export const ACCEPTS_FIRST_MAX_MS = 100;
/**
 * Each ms the slices work pays back this many ms given away to accepts: after a full window of
 * {@link ACCEPTS_FIRST_MAX_MS}, the slices work half as long before turns are given away again.
 */
export const ACCEPTS_FIRST_REPAY_RATE = 2;

/** A hello waiting for its slice to go on. */
interface Resume {
  resume: () => void;
}

type Work = (() => void) | Resume;

/** Options of {@link HandshakeSlices}. */
export interface HandshakeSlicesOptions {
  /** Where an error thrown by queued work goes (the rest still runs). */
  onError: (error: unknown) => void;
  /** @default {@link HANDSHAKE_SLICE_MS} */
  budgetMs?: number;
  /** @default {@link ACCEPTS_FIRST_MAX_MS} */
  acceptsFirstMaxMs?: number;
  /** @default {@link ACCEPTS_FIRST_REPAY_RATE} */
  acceptsFirstRepayRate?: number;
  /** Monotonic clock (ms); tests inject one. @default performance.now */
  now?: () => number;
}

/**
 * The handshakes' share of the event loop: upgrades, and the hellos' welcomes once their Redis
 * reads are done, run in slices of a few ms per turn ({@link SlicedQueue}), and a turn in which
 * a connection was accepted is given away to accepting the next. A resumed hello's
 * continuation (the code up to its next `await`) runs before the next item, and its time
 * counts against the slice.
 *
 * Why both. Node (libuv 1.45 and later) accepts one connection per turn of its event loop.
 * In a reconnect storm the kernel's accept queue holds hundreds of connections, a health
 * probe's among them, and each waits for as many turns as there are connections before it.
 * When every turn carries a slice of hellos, and the welcomes of every hello whose Redis
 * replies came in, that is hundreds of turns of a few ms: the probe waited 0.3 to 0.9 s
 * (docs/benchmarks.md, "Connections accepted first, hellos resumed in slices"). Here, while
 * each turn accepts a connection (the queue is not empty yet), slices give their turns away,
 * for {@link ACCEPTS_FIRST_MAX_MS} at most, and then work half as long
 * ({@link ACCEPTS_FIRST_REPAY_RATE}): connections that keep coming as fast as the loop turns
 * leave the handshakes a third of it. The queue drains in gulps, 0.15 to 0.25 ms per
 * connection, and a connection that arrives between two gulps (a health probe) waits at most
 * about 50 ms of handshakes for the next (with as long as the window, 100 ms, the probes that
 * came at its start were the slow ones: docs/benchmarks.md, "Accepts first: a shorter wait
 * between gulps"). And a hello's continuation waits for a slice ({@link next}) instead of
 * running in the turn that read its reply.
 */
export class HandshakeSlices {
  readonly #queue: SlicedQueue<Work>;
  readonly #now: () => number;
  readonly #acceptsFirstMaxMs: number;
  readonly #repayRate: number;
  /** A connection was accepted since the last slice asked. */
  #accepted = false;
  /** When a slice last asked, and whether it gave its turn away then. */
  #askedAt: number | undefined;
  #gaveWay = false;
  /**
   * Time given away to accepts minus time worked since (times the repay rate), never below
   * zero. A turn without an accept works without starting the window over: connections
   * arriving a little slower than the loop turns still leave the slices their share.
   */
  #owedMs = 0;
  /** A full window was given away: no turn is given away until the slices have repaid it. */
  #repaying = false;

  constructor(options: HandshakeSlicesOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#acceptsFirstMaxMs = options.acceptsFirstMaxMs ?? ACCEPTS_FIRST_MAX_MS;
    this.#repayRate = options.acceptsFirstRepayRate ?? ACCEPTS_FIRST_REPAY_RATE;
    this.#queue = new SlicedQueue<Work>(runWork, {
      budgetMs: options.budgetMs ?? HANDSHAKE_SLICE_MS,
      now: this.#now,
      onError: options.onError,
      giveWay: () => this.#giveWay(),
    });
  }

  /** Upgrades and hellos waiting for their slice. */
  get size(): number {
    return this.#queue.size;
  }

  /** Runs `work` in a slice, after the work queued before it. */
  run(work: () => void): void {
    this.#queue.push(work);
  }

  /** Settles in a slice, after the work queued before it: a hello goes on there. */
  next(): Promise<void> {
    return new Promise<void>((resume) => this.#queue.push({ resume }));
  }

  /** The server accepted a connection: the next slice gives its turn away (see the class). */
  accepted(): void {
    this.#accepted = true;
  }

  #giveWay(): boolean {
    const now = this.#now();
    // The time since the last ask went to what was decided then (a queue idle meanwhile counts as work).
    if (this.#askedAt !== undefined) {
      const spent = now - this.#askedAt;
      // At most one window owed: a long turn given away (a big poll, a collection) does not stretch the repayment.
      const owed = this.#owedMs + (this.#gaveWay ? spent : -spent * this.#repayRate);
      this.#owedMs = Math.min(this.#acceptsFirstMaxMs, Math.max(0, owed));
    }
    this.#askedAt = now;
    // A full window given away: the slices work until they have repaid it, accepts or not.
    if (this.#owedMs >= this.#acceptsFirstMaxMs) this.#repaying = true;
    else if (this.#owedMs === 0) this.#repaying = false;
    this.#gaveWay = this.#accepted && !this.#repaying;
    this.#accepted = false;
    return this.#gaveWay;
  }
}

/** Runs an upgrade, or resumes a hello: its code up to its next `await` runs in the microtasks that follow, within the slice. */
function runWork(work: Work): boolean {
  if (typeof work === 'function') {
    work();
    return false;
  }
  work.resume();
  return true;
}
