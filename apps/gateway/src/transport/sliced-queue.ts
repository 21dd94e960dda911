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
 * An item whose work throws does not stop the queue: the error goes to `onError` (when
 * none is given it is thrown again, once the rest of the queue is scheduled), and the
 * items after it run as they would have.
 */
export class SlicedQueue<T> {
  readonly #run: (item: T) => void;
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #onError: ((error: unknown, item: T) => void) | undefined;
  #items: (T | undefined)[] = [];
  #head = 0;
  #scheduled = false;

  constructor(
    run: (item: T) => void,
    budgetMs: number,
    now: () => number = () => performance.now(),
    onError?: (error: unknown, item: T) => void,
  ) {
    this.#run = run;
    this.#budgetMs = budgetMs;
    this.#now = now;
    this.#onError = onError;
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
    const until = this.#now() + this.#budgetMs;
    try {
      while (this.#head < this.#items.length) {
        const item = this.#items[this.#head] as T;
        this.#items[this.#head++] = undefined;
        this.#runOne(item);
        if (this.#now() >= until) break;
      }
    } finally {
      // Even when an item threw (no onError): the rest still runs, the next push still schedules.
      this.#next();
    }
  };

  #runOne(item: T): void {
    if (!this.#onError) {
      this.#run(item);
      return;
    }
    try {
      this.#run(item);
    } catch (error) {
      this.#onError(error, item);
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
