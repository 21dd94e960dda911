/** What {@link TurnWrites} corks: the subscriber connection's socket. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * The subscriber's commands of one turn of the event loop in one write: the first command of
 * a turn corks the connection's socket, and `process.nextTick` uncorks it: after the callback
 * that sent it, or, when it was sent from a microtask (as listens and leaves are: they run in
 * promise continuations), after the microtasks queued with it. A reconnect storm's hellos
 * resume in slices of many each and all send their SSUBSCRIBE there, and the sessions a drain
 * or a dropped network closes send their SUNSUBSCRIBEs together: one write system call for all
 * of them instead of one each.
 *
 * Only the writes are joined: each command stays a command of its own, with its own answer,
 * sent again by ioredis after a reconnect as any other (a command naming several channels
 * would be refused `CROSSSLOT` by a cluster node reached as a standalone Redis, and ioredis
 * miscounts the answers of one that a reconnect cut in half). Standalone connections only: a
 * cluster's subscriber has a connection per master.
 */
export class TurnWrites {
  readonly #socket: () => Corkable | undefined;
  #corked: Corkable | undefined;

  /** `socket`: the connection's socket while commands are written to it (undefined while they wait offline). */
  constructor(socket: () => Corkable | undefined) {
    this.#socket = socket;
  }

  /** Runs `send`, which writes a command, with the socket corked until the end of this turn. */
  send<T>(send: () => T): T {
    if (this.#corked === undefined) {
      const socket = this.#socket();
      if (socket !== undefined) {
        socket.cork();
        this.#corked = socket;
        process.nextTick(this.#uncork);
      }
    }
    return send();
  }

  readonly #uncork = (): void => {
    const socket = this.#corked;
    this.#corked = undefined;
    // The socket corked, even if a reconnect has replaced it since (uncorking a closed one is harmless).
    socket?.uncork();
  };
}
