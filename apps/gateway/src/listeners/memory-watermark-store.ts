import type { Cursor } from '@livebus/protocol';
import type { Lease, LeaseHolder } from '../fleet/lease/lease';
import type { DeliveredDelta, DeliveredDocs, ListenerResume, WatermarkStore } from './watermark-store';

interface ListenerState {
  mark: string | undefined;
  docs: DeliveredDocs;
  overflow: boolean;
  cursor: Cursor | undefined;
}

/** The embedded default: marks in this process, fenced by the (memory) lease they are written under. */
export class MemoryWatermarkStore implements WatermarkStore {
  readonly #users = new Map<string, Map<string, ListenerState>>();
  readonly #lease: Lease | undefined;

  /** @param lease checked on every write; undefined: writes are not fenced. */
  constructor(lease?: Lease) {
    this.#lease = lease;
  }

  async get(userId: string): Promise<ListenerResume> {
    const resume: ListenerResume = { marks: {}, docs: {}, overflowed: [], cursors: {} };
    for (const [listener, s] of this.#users.get(userId) ?? []) {
      if (s.mark !== undefined) resume.marks[listener] = s.mark;
      if (Object.keys(s.docs).length > 0) resume.docs[listener] = { ...s.docs };
      if (s.overflow) resume.overflowed.push(listener);
      if (s.cursor !== undefined) resume.cursors[listener] = s.cursor;
    }
    return resume;
  }

  async set(
    userId: string,
    listener: string,
    mark: string | undefined,
    fence: LeaseHolder,
    delta?: DeliveredDelta,
    cursor?: Cursor,
  ): Promise<boolean> {
    if (this.#lease) {
      const holder = await this.#lease.holder(userId);
      if (holder?.owner !== fence.owner || holder.token !== fence.token) return false;
    }
    const listeners = this.#users.get(userId) ?? new Map<string, ListenerState>();
    this.#users.set(userId, listeners);
    const state = listeners.get(listener) ?? { mark, docs: {}, overflow: false, cursor };
    state.mark = mark ?? state.mark;
    if (cursor !== undefined) state.cursor = cursor;
    Object.assign(state.docs, delta?.put);
    for (const path of delta?.del ?? []) delete state.docs[path];
    if (delta?.overflow) state.overflow = true;
    listeners.set(listener, state);
    return true;
  }

  async forget(userId: string, listener: string): Promise<void> {
    this.#users.get(userId)?.delete(listener);
  }

  async clear(userId: string): Promise<void> {
    this.#users.delete(userId);
  }
}
