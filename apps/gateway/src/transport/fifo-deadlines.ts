/** Options of {@link FifoDeadlines}. */
export interface FifoDeadlinesOptions<T> {
  /** Whether `item` still waits for its deadline (false: it is skipped, whenever it comes due). */
  isPending(item: T): boolean;
  /** Called once for a pending item whose deadline has come. May call {@link FifoDeadlines.clear}. */
  onDue(item: T): void;
}

/**
 * Deadlines that all have the same length, counted from when each item is added: they come
 * due in the order the items came, so they wait in one queue under one timer, armed for the
 * oldest item still pending. A `setTimeout` per item costs a Timeout, a closure and its
 * context (about 250 bytes); here an item costs two array slots until it is passed. Used for
 * what every upgrade of a reconnect storm holds for a moment: the header deadline of each
 * connection and the hello grace of each admitted upgrade.
 *
 * An item is not removed when it stops waiting: the queue skips it when it gets there.
 * {@link clear} drops everything (the owner calls it when nothing waits any more).
 */
export class FifoDeadlines<T> {
  readonly #delayMs: number;
  readonly #o: FifoDeadlinesOptions<T>;
  #items: (T | undefined)[] = [];
  #dues: number[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(delayMs: number, options: FifoDeadlinesOptions<T>) {
    this.#delayMs = delayMs;
    this.#o = options;
  }

  /** `item`'s deadline is `delayMs` from now. */
  add(item: T): void {
    const now = performance.now();
    const due = now + this.#delayMs;
    this.#items.push(item);
    this.#dues.push(due);
    // Every deadline is the same length: one armed already is for an earlier one.
    if (!this.#timer) this.#arm(due, now);
  }

  /** Forgets every item and stops the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#items = [];
    this.#dues = [];
    this.#head = 0;
  }

  #arm(due: number, now: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(0, due - now));
    this.#timer.unref();
  }

  /** Hands over the pending items whose deadline passed, then waits for the oldest one left. */
  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    // Fields read at every turn: onDue may clear() the queue.
    while (this.#head < this.#items.length) {
      const i = this.#head;
      const item = this.#items[i] as T;
      const pending = this.#o.isPending(item);
      if (pending) {
        const due = this.#dues[i] as number;
        if (due > now) {
          // Items keep coming while others wait: the queue drops what it has passed.
          if (i >= 1024 && i * 2 >= this.#items.length) {
            this.#items = this.#items.slice(i);
            this.#dues = this.#dues.slice(i);
            this.#head = 0;
          }
          this.#arm(due, now);
          return;
        }
      }
      this.#items[i] = undefined;
      this.#head = i + 1;
      if (pending) this.#o.onDue(item);
    }
    this.clear();
  };
}
