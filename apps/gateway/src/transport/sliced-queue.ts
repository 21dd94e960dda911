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
 */
export class SlicedQueue<T> {
  readonly #run: (item: T) => void;
  readonly #budgetMs: number;
  readonly #now: () => number;
  #items: (T | undefined)[] = [];
  #head = 0;
  #scheduled = false;

  constructor(run: (item: T) => void, budgetMs: number, now: () => number = () => performance.now()) {
    this.#run = run;
    this.#budgetMs = budgetMs;
    this.#now = now;
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
    while (this.#head < this.#items.length) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined;
      this.#run(item);
      if (this.#now() >= until) break;
    }
    if (this.#head < this.#items.length) {
      setImmediate(this.#drain);
      return;
    }
    this.#items = [];
    this.#head = 0;
    this.#scheduled = false;
  };
}
