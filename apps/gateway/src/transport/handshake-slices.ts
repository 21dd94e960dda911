import { SlicedQueue } from './sliced-queue';

/** Handshake work per turn of the event loop, at most this long (ms). */
export const HANDSHAKE_SLICE_MS = 5;
/** Turns given away in a row to accepting connections, at most this long (ms); then as long again for work. */
export const ACCEPTS_FIRST_MAX_MS = 100;
/**
 * What a resumed hello is counted against its slice (ms): its continuation runs right after
 * the slice, not in it (the continuation after the presence write, or after the subscription,
 * measured at 60 to 80 µs each, rounded up to a binary fraction).
 */
export const RESUME_COST_MS = 0.125;

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
  /** Monotonic clock (ms); tests inject one. @default performance.now */
  now?: () => number;
}

/**
 * The handshakes' share of the event loop: upgrades, and the hellos' work after each Redis
 * round trip, run in slices of a few ms per turn ({@link SlicedQueue}), and a turn in which
 * a connection was accepted is given away to accepting the next.
 *
 * Why both. Node (libuv 1.45 and later) accepts one connection per turn of its event loop.
 * In a reconnect storm the kernel's accept queue holds hundreds of connections, a health
 * probe's among them, and each waits for as many turns as there are connections before it.
 * When every turn carries a slice of hellos, and the continuations of every hello whose
 * Redis replies came in, that is hundreds of turns of a few ms: the probe waited 0.3 to 0.9 s
 * (docs/benchmarks.md, "The accept queue in a storm"). Here, while each turn accepts a
 * connection (the queue is not empty yet), slices wait, for at most
 * {@link ACCEPTS_FIRST_MAX_MS} in a row and then work for as long again (connections that
 * keep coming faster than the loop turns cannot starve the hellos of more than half of it);
 * and a hello's continuation waits for a slice ({@link next}) instead of running in the
 * turn that read its reply.
 */
export class HandshakeSlices {
  readonly #queue: SlicedQueue<Work>;
  readonly #now: () => number;
  readonly #acceptsFirstMaxMs: number;
  /** A connection was accepted since the last slice asked. */
  #accepted = false;
  /** Since when slices have given their turns away, while they do. */
  #givingWaySince: number | undefined;
  /** Turns are not given away before this (work gets as long as the window just given away). */
  #workUntil = 0;

  constructor(options: HandshakeSlicesOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#acceptsFirstMaxMs = options.acceptsFirstMaxMs ?? ACCEPTS_FIRST_MAX_MS;
    this.#queue = new SlicedQueue<Work>(runWork, {
      budgetMs: options.budgetMs ?? HANDSHAKE_SLICE_MS,
      now: this.#now,
      onError: options.onError,
      giveWay: () => this.#giveWay(),
    });
  }

  /** Work (an upgrade) waiting for its slice. */
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
    const accepted = this.#accepted;
    this.#accepted = false;
    const now = this.#now();
    if (!accepted || now < this.#workUntil) {
      this.#givingWaySince = undefined;
      return false;
    }
    this.#givingWaySince ??= now;
    const given = now - this.#givingWaySince;
    if (given < this.#acceptsFirstMaxMs) return true;
    this.#workUntil = now + given;
    this.#givingWaySince = undefined;
    return false;
  }
}

function runWork(work: Work): number | undefined {
  if (typeof work === 'function') {
    work();
    return undefined;
  }
  work.resume();
  return RESUME_COST_MS;
}
