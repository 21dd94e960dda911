/** A listener of event `K` of an event map `M`. */
export type Listener<M, K extends keyof M> = (payload: M[K]) => void;

/**
 * A tiny typed event emitter that runs in Node and browsers alike. A listener
 * that throws does not stop the others; the error goes to `onListenerError`,
 * with the event whose listener threw. An `error` emitted with no listener goes
 * there too (as one its listener threw), so it is not lost silently.
 */
export class Emitter<M> {
  private readonly listeners = new Map<keyof M, Set<(payload: never) => void>>();
  declare private readonly onListenerError: (error: unknown, event: keyof M) => void;

  constructor(onListenerError: (error: unknown, event: keyof M) => void) {
    this.onListenerError = onListenerError;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  /** Calls the listeners of `event` in turn; `until`: asked before each, stops the rest when true. */
  emit<K extends keyof M>(event: K, payload: M[K], until?: () => boolean): void {
    const set = this.listeners.get(event);
    if (!set?.size) {
      if (event === 'error') this.onListenerError(payload, event);
      return;
    }
    for (const listener of [...set]) {
      if (until?.()) return;
      try {
        (listener as Listener<M, K>)(payload);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }

  listenerCount(event: keyof M): number {
    return this.listeners.get(event)?.size ?? 0;
  }
}
