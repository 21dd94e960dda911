import { fromSmallTime, toSmallTime } from './small-times';

/** Options of {@link DeadlineWheel}. */
export interface DeadlineWheelOptions<T> {
  /** Deadlines are grouped in slots this long; an item fires at most this late, never early. @default 250 */
  resolutionMs?: number;
  /** Called once per item whose deadline passed, with the deadline it was given. */
  onDue(item: T, at: number): void;
  /** @default Date.now */
  now?: () => number;
}

// setTimeout holds at most 2^31 - 1 ms (about 24.8 days); longer waits are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Deadlines for many items under one timer. Items are kept in slots of
 * `resolutionMs` and each slot is fired at its end, in order. Per item this
 * costs a Map entry and a Set entry, where one `setTimeout` per item costs a
 * Timeout, a closure and its context (about 250 bytes): it matters when every
 * open connection holds a deadline (token expiry, at 10 000 sessions and more).
 *
 *   set(item, at) --> slot ceil(at / res) * res --> the one timer, armed for the earliest slot
 *                                                     --> onDue(item, at) for each item of due slots
 */
export class DeadlineWheel<T> {
  readonly #resolutionMs: number;
  readonly #onDue: (item: T, at: number) => void;
  readonly #now: () => number;
  /** Each item's deadline, stored small (small-times.ts): no number object per item. */
  readonly #at = new Map<T, number>();
  /** Slot end -> the items due then. */
  readonly #slots = new Map<number, Set<T>>();
  /** Slot ends, ascending. */
  readonly #order: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The slot end the timer is armed for. */
  #armedFor = Number.POSITIVE_INFINITY;

  constructor(options: DeadlineWheelOptions<T>) {
    const { resolutionMs = 250 } = options;
    if (!(resolutionMs > 0)) throw new TypeError('resolutionMs must be positive');
    this.#resolutionMs = resolutionMs;
    this.#onDue = options.onDue;
    this.#now = options.now ?? Date.now;
  }

  /** Items waiting. */
  get size(): number {
    return this.#at.size;
  }

  /** Sets (or moves) an item's deadline. */
  set(item: T, at: number): void {
    this.delete(item);
    const slot = Math.ceil(at / this.#resolutionMs) * this.#resolutionMs;
    this.#at.set(item, toSmallTime(at));
    let items = this.#slots.get(slot);
    if (!items) {
      items = new Set();
      this.#slots.set(slot, items);
      this.#order.splice(this.#insertionPoint(slot), 0, slot);
    }
    items.add(item);
    if (slot < this.#armedFor) this.#arm();
  }

  /** Forgets an item's deadline; whether it had one. */
  delete(item: T): boolean {
    const since = this.#at.get(item);
    if (since === undefined) return false;
    this.#at.delete(item);
    const at = fromSmallTime(since);
    const slot = Math.ceil(at / this.#resolutionMs) * this.#resolutionMs;
    const items = this.#slots.get(slot);
    items?.delete(item);
    // An emptied slot stays in the order until its time: the timer skips it then.
    if (items?.size === 0) this.#slots.delete(slot);
    return true;
  }

  /** Stops the timer and forgets every deadline. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    this.#at.clear();
    this.#slots.clear();
    this.#order.length = 0;
  }

  #insertionPoint(slot: number): number {
    let lo = 0;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#order[mid] as number) < slot) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const next = this.#order[0];
    if (next === undefined) return;
    this.#armedFor = next;
    const wait = Math.max(0, next - this.#now());
    this.#timer = setTimeout(() => this.#fire(), Math.min(wait, MAX_TIMER_MS));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = this.#now();
    try {
      while (this.#order.length > 0 && (this.#order[0] as number) <= now) {
        const slot = this.#order.shift() as number;
        const items = this.#slots.get(slot);
        if (!items) continue;
        this.#slots.delete(slot);
        for (const item of items) {
          const since = this.#at.get(item);
          if (since === undefined) continue;
          this.#at.delete(item);
          this.#onDue(item, fromSmallTime(since));
        }
      }
    } finally {
      // onDue may have set new deadlines (and armed the timer); a throw must not stop the wheel.
      if (this.#timer === undefined) this.#arm();
    }
  }
}
