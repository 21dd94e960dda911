import type { AppEvent } from '@livebus/protocol';

/** Releases what a {@link ListenerSource} attached. */
export type Detach = () => Promise<void>;

/**
 * Port: something that watches data on behalf of a user and emits events
 * (Firestore snapshots, Redis channels). Attached when the user's first session
 * opens, released after the detach delay once the last one closes.
 */
export interface ListenerSource {
  readonly name: string;
  attach(userId: string, emit: (event: AppEvent) => void): Promise<Detach>;
}
