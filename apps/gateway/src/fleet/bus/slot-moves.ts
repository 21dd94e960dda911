import { slotOf } from '@livebus/publisher/redis';
import type { Cluster } from 'ioredis';

/** An SSUBSCRIBE's slot went to another master while it waited: send it again (to that one). */
export class SlotMovedError extends Error {
  /** Redis away to whoever classifies it (`isTransientRedisError`): a retry reaches the new master. */
  readonly code = 'ETIMEDOUT';
}

/** A cluster subscriber as {@link SlotMoves} reads it. */
export type SlotMapReader = Pick<Cluster, 'slots' | 'on'>;

/**
 * SSUBSCRIBEs of a cluster subscriber that wait for their answer, each with the master its slot
 * had when it was sent. ioredis never settles one that the node answers `MOVED` (the slot went to
 * another shard: a resharding), though it then reads the slot map again: when a read of the map
 * (ioredis's `refresh`, every second on the event bus's subscriber and at once after a `MOVED`;
 * and `subscribersReady`, once its sharded subscribers have taken a new map) gives the slot
 * another master, the wait fails ({@link SlotMovedError}) and its caller sends it again, to the
 * new master, without waiting out its step's bound (5 s). A node that merely stops answering
 * moves no slot: its waits keep their bound.
 *
 * The master compared is the one ioredis routes an SSUBSCRIBE by: its sharded subscriber group's
 * copy of the map, which it takes after the cluster's own (later, when the group is still
 * connecting a subscriber for an earlier map). A wait is forgotten once its caller gave up on it
 * (`stepMs` after it was sent), answered or not.
 */
export class SlotMoves {
  readonly #sub: SlotMapReader;
  readonly #stepMs: number;
  readonly #now: () => number;
  readonly #waiting = new Set<{ slot: number; master: string; until: number; fail: () => void }>();

  constructor(sub: SlotMapReader, stepMs: number, now: () => number = Date.now) {
    this.#sub = sub;
    this.#stepMs = stepMs;
    this.#now = now;
    const check = () => {
      const now = this.#now();
      for (const w of this.#waiting) {
        if (now > w.until) this.#waiting.delete(w);
        else if (this.#masterOf(w.slot) !== w.master) w.fail();
      }
    };
    sub.on('refresh', check);
    sub.on('subscribersReady', check);
  }

  /** `answer`, or a {@link SlotMovedError} once the slot of `channel` has another master. */
  unlessMoved<T>(answer: Promise<T>, channel: string): Promise<T> {
    const slot = slotOf(channel);
    const master = this.#masterOf(slot);
    // No slot map yet: nothing to compare with.
    if (master === undefined) return answer;
    return new Promise<T>((resolve, reject) => {
      const waiting = {
        slot,
        master,
        until: this.#now() + this.#stepMs,
        fail: () => {
          this.#waiting.delete(waiting);
          reject(new SlotMovedError(`slot ${slot} moved from ${master} while its SSUBSCRIBE waited`));
        },
      };
      this.#waiting.add(waiting);
      answer.then(
        (value) => {
          this.#waiting.delete(waiting);
          resolve(value);
        },
        (error: unknown) => {
          this.#waiting.delete(waiting);
          reject(error);
        },
      );
    });
  }

  /** Waits not yet answered, failed or given up on. */
  get size(): number {
    return this.#waiting.size;
  }

  #masterOf(slot: number): string | undefined {
    // The sharded subscriber group's map (ioredis 5.11 internals), else the cluster's. Absent on
    // a client of another shape (a test double): nothing to compare with.
    const group = (this.#sub as { shardedSubscribers?: { clusterSlots?: unknown } }).shardedSubscribers;
    const map = Array.isArray(group?.clusterSlots) ? (group.clusterSlots as string[][]) : this.#sub.slots;
    return map?.[slot]?.[0];
  }
}
