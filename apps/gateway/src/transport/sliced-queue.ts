/** Options of {@link SlicedQueue}. */
export interface SlicedQueueOptions<T> {
  /** Work per turn of the event loop, at most this long (ms). */
  budgetMs: number;
  /** @default performance.now */
  now?: () => number;
  /** Where an item's error goes; when none is given it is thrown again once the rest is scheduled. */
  onError?: (error: unknown, item: T) => void;
  /** Asked at the start of each slice: true gives this turn away, nothing runs. @default never */
  giveWay?: () => boolean;
}

/**
 * Runs queued work in slices of at most `budgetMs` per turn of the event loop
 * (`setImmediate`), so the I/O that came in meanwhile is read between two slices.
 *
 * A reconnect storm brings thousands of WebSocket upgrades in one poll of the event
 * loop; run as they are read, they all run before the loop reads anything else, and a
 * health probe on the same port waited for all of them (over a second in a 2 000-client
 * storm: the probe's 1 s timeout). Queued here, a probe's request is read and answered
 * between two slices. Work is started in arrival order; a queue that is empty at the
 * end of a turn costs nothing.
 *
 * `giveWay`, asked at the start of each slice, can give a whole turn away: the queue then
 * waits for the next turn (see handshake-slices.ts: connections accepted first).
 *
 * An item whose work throws does not stop the queue: the error goes to `onError` (when
 * none is given it is thrown again, once the rest of the queue is scheduled), and the
 * items after it run as they would have.
 */
export class SlicedQueue<T> {
  readonly #run: (item: T) => boolean | undefined;
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #onError: ((error: unknown, item: T) => void) | undefined;
  readonly #giveWay: (() => boolean) | undefined;
  #items: (T | undefined)[] = [];
  #head = 0;
  #scheduled = false;
  /** When the current slice's time is up. */
  #until = 0;

  /**
   * `run` returns true when the item's work goes on in microtasks (the continuation of a
   * promise it resolved): the microtasks queued by then run before the next item, and their
   * time counts against the slice (work they queue in turn, such as an async function's
   * return to its caller, may run after it).
   */
  constructor(run: (item: T) => boolean | undefined, options: SlicedQueueOptions<T>) {
    this.#run = run;
    this.#budgetMs = options.budgetMs;
    this.#now = options.now ?? (() => performance.now());
    this.#onError = options.onError;
    this.#giveWay = options.giveWay;
  }

  /** Items waiting for their slice. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#drain);
  }

  readonly #drain = (): void => {
    if (this.#giveWay?.()) {
      // Nothing runs this turn: the next turn of the loop polls again (at once, an immediate is due).
      setImmediate(this.#drain);
      return;
    }
    this.#until = this.#now() + this.#budgetMs;
    this.#runSlice();
  };

  /** Runs items until the slice's time is up, or until one's work goes on in microtasks. */
  readonly #runSlice = (): void => {
    let goesOn = false;
    try {
      while (this.#head < this.#items.length) {
        const item = this.#items[this.#head] as T;
        this.#items[this.#head++] = undefined;
        goesOn = this.#runOne(item) === true;
        if (goesOn || this.#now() >= this.#until) break;
      }
    } finally {
      // Even when an item threw (no onError): the rest still runs, the next push still schedules.
      // Queued after the microtasks the item started: they run, and count against the slice, first.
      if (goesOn) queueMicrotask(this.#afterMicrotasks);
      else this.#next();
    }
  };

  readonly #afterMicrotasks = (): void => {
    if (this.#head < this.#items.length && this.#now() < this.#until) this.#runSlice();
    else this.#next();
  };

  #runOne(item: T): boolean | undefined {
    if (!this.#onError) return this.#run(item);
    try {
      return this.#run(item);
    } catch (error) {
      this.#onError(error, item);
      return undefined;
    }
  }

  #next(): void {
    if (this.#head < this.#items.length) {
      setImmediate(this.#drain);
      return;
    }
    this.#items = [];
    this.#head = 0;
    this.#scheduled = false;
  }
}
