import { randomUUID } from 'node:crypto';
import type { InstanceLiveness } from './instance-liveness';

/** Options of {@link SharedLiveness}. */
export interface SharedLivenessOptions {
  /** The gateway's incarnation. @default a random UUID */
  incarnation?: string;
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/**
 * One liveness proof per gateway, however many listener managers prove it. The user
 * listeners and the company listeners each follow holders with a failover watch of their
 * own, and each watch has an incarnation of its own: written as they are to the instance's
 * one key, a reader would see the key alternate between two incarnations and judge the
 * instance restarted (and take all its listeners over). Through this, every beat writes the
 * gateway's one incarnation (the callers' incarnations only tell them apart), a beat within
 * an eighth of the window of the last one sent is not sent again (one write per quarter
 * window, as with one watch), and the proof is retired only once the last watch that beat
 * retires it (at shutdown, once every lease is released).
 */
export class SharedLiveness implements InstanceLiveness {
  readonly #inner: InstanceLiveness;
  readonly #incarnation: string;
  readonly #now: () => number;
  /** The callers (by their incarnation) that beat and have not retired. */
  readonly #beating = new Set<string>();
  #last: { at: number; sent: Promise<void> } | undefined;

  constructor(inner: InstanceLiveness, options: SharedLivenessOptions = {}) {
    this.#inner = inner;
    this.#incarnation = options.incarnation ?? randomUUID();
    this.#now = options.now ?? Date.now;
  }

  beat(instanceId: string, incarnation: string, ttlMs: number): Promise<void> {
    this.#beating.add(incarnation);
    const now = this.#now();
    const last = this.#last;
    if (last && now >= last.at && now - last.at < ttlMs / 8) return last.sent;
    const sent = this.#inner.beat(instanceId, this.#incarnation, ttlMs);
    this.#last = { at: now, sent };
    return sent;
  }

  read(instanceIds: readonly string[]): Promise<Map<string, string | undefined>> {
    return this.#inner.read(instanceIds);
  }

  async retire(instanceId: string, incarnation: string): Promise<void> {
    this.#beating.delete(incarnation);
    if (this.#beating.size > 0) return;
    this.#last = undefined;
    await this.#inner.retire(instanceId, this.#incarnation);
  }
}
