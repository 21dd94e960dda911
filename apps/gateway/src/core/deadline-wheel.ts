import { fromSmallTime, MAX_TIMER_MS, toSmallTime } from './small-times';

/** Options of {@link DeadlineWheel}. */
export interface DeadlineWheelOptions<T> {
  /** Deadlines are grouped in slots this long; an item fires at most this late, never early. @default 250 */
  resolutionMs?: number;
  /** Called once per item whose deadline passed, with the deadline it was given. */
  onDue(item: T, at: number): void;
  /** @default Date.now */
  now?: () => number;
}

/**
 * Deadlines for many items under one timer. The items are kept in a binary heap ordered by
 * deadline, and the timer is armed for the end of the earliest deadline's slot of
 * `resolutionMs`: everything due by then fires together, at most a slot late, never early.
 * Per item this costs a Map entry (its place in the heap) and two array slots, about 80 bytes
 * however the deadlines spread. One `setTimeout` per item costs a Timeout, a closure and its
 * context (about 250 bytes); a Set per slot did as much once deadlines spread over an hour
 * (tokens of an hour, each session its own slot). It matters when every open connection holds
 * a deadline (token expiry, at 10 000 sessions and more).
 *
 *   set(item, at) --> heap by at --> the one timer, armed for ceil(earliest at / res) * res
 *                                      --> onDue(item, at) for each item whose slot has ended
 */
export class DeadlineWheel<T> {
  readonly #resolutionMs: number;
  readonly #onDue: (item: T, at: number) => void;
  readonly #now: () => number;
  /** The heap: `#items[i]` is due at `#ats[i]` (stored small, small-times.ts); each parent is due no later than its children. */
  readonly #items: T[] = [];
  readonly #ats: number[] = [];
  /** Each item's place in the heap. */
  readonly #index = new Map<T, number>();
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
    return this.#index.size;
  }

  /** Sets (or moves) an item's deadline. */
  set(item: T, at: number): void {
    this.delete(item);
    const i = this.#items.length;
    this.#items.push(item);
    // Whole ms (a fraction is taken as the next ms: never early), kept small.
    this.#ats.push(toSmallTime(Math.ceil(at)));
    this.#index.set(item, i);
    this.#up(i);
    if (this.#slotOf(at) < this.#armedFor) this.#arm();
  }

  /** Forgets an item's deadline; whether it had one. The timer may then wake once for nothing. */
  delete(item: T): boolean {
    const i = this.#index.get(item);
    if (i === undefined) return false;
    this.#removeAt(i);
    return true;
  }

  /** Stops the timer and forgets every deadline. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    this.#items.length = 0;
    this.#ats.length = 0;
    this.#index.clear();
  }

  #slotOf(at: number): number {
    return Math.ceil(at / this.#resolutionMs) * this.#resolutionMs;
  }

  /** Takes the item at heap place `i` out; the last item fills its place and moves to where it belongs. */
  #removeAt(i: number): void {
    const items = this.#items;
    const ats = this.#ats;
    const last = items.length - 1;
    this.#index.delete(items[i] as T);
    if (i !== last) {
      items[i] = items[last] as T;
      ats[i] = ats[last] as number;
      this.#index.set(items[i] as T, i);
    }
    items.pop();
    ats.pop();
    if (i < items.length) this.#up(this.#down(i));
  }

  /** Moves the item at `i` towards the root while it is due before its parent. */
  #up(i: number): void {
    const ats = this.#ats;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((ats[parent] as number) <= (ats[i] as number)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** Moves the item at `i` away from the root while a child is due before it; where it ends. */
  #down(i: number): number {
    const ats = this.#ats;
    const n = ats.length;
    for (;;) {
      const left = 2 * i + 1;
      let first = i;
      if (left < n && (ats[left] as number) < (ats[first] as number)) first = left;
      if (left + 1 < n && (ats[left + 1] as number) < (ats[first] as number)) first = left + 1;
      if (first === i) return i;
      this.#swap(i, first);
      i = first;
    }
  }

  #swap(a: number, b: number): void {
    const items = this.#items;
    const ats = this.#ats;
    const item = items[a] as T;
    const at = ats[a] as number;
    items[a] = items[b] as T;
    ats[a] = ats[b] as number;
    items[b] = item;
    ats[b] = at;
    this.#index.set(items[a] as T, a);
    this.#index.set(item, b);
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    if (this.#ats.length === 0) return;
    const next = this.#slotOf(fromSmallTime(this.#ats[0] as number));
    this.#armedFor = next;
    const wait = Math.max(0, next - this.#now());
    // A longer wait is armed again when this one ends (nothing is due yet then).
    this.#timer = setTimeout(() => this.#fire(), Math.min(wait, MAX_TIMER_MS));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = this.#now();
    try {
      while (this.#items.length > 0) {
        const at = fromSmallTime(this.#ats[0] as number);
        if (this.#slotOf(at) > now) break;
        const item = this.#items[0] as T;
        this.#removeAt(0);
        this.#onDue(item, at);
      }
    } finally {
      // onDue may have set new deadlines (and armed the timer); a throw must not stop the wheel.
      if (this.#timer === undefined) this.#arm();
    }
  }
}
