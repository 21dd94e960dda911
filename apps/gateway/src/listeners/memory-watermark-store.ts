import type { Lease, LeaseHolder } from '../lease/lease';
import type { WatermarkStore } from './watermark-store';

/** The embedded default: marks in this process, fenced by the (memory) lease they are written under. */
export class MemoryWatermarkStore implements WatermarkStore {
  readonly kind = 'memory' as const;
  readonly #marks = new Map<string, Record<string, string>>();
  readonly #lease: Lease | undefined;

  /** @param lease checked on every write; undefined: writes are not fenced. */
  constructor(lease?: Lease) {
    this.#lease = lease;
  }

  async get(userId: string): Promise<Record<string, string>> {
    return { ...this.#marks.get(userId) };
  }

  async set(userId: string, listener: string, mark: string, fence: LeaseHolder): Promise<boolean> {
    if (this.#lease) {
      const holder = await this.#lease.holder(userId);
      if (holder?.owner !== fence.owner || holder.token !== fence.token) return false;
    }
    this.#marks.set(userId, { ...this.#marks.get(userId), [listener]: mark });
    return true;
  }

  async clear(userId: string): Promise<void> {
    this.#marks.delete(userId);
  }
}
