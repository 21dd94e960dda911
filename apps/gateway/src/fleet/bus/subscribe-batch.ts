/** What {@link SubscribeBatch} sends its channels with: one SSUBSCRIBE for any number of them. */
export interface ShardedSubscribe {
  ssubscribe(...channels: string[]): Promise<unknown>;
}

/**
 * The SSUBSCRIBEs asked for in one turn, sent as one command once the turn's callbacks and
 * microtasks are done: a reconnect storm's hellos resume in slices of many each, and one
 * write of one command for all of them costs the gateway a system call and a command each
 * less (and Redis a command each less to parse). Redis answers each channel of the command on
 * its own, and ioredis settles the command once every channel is answered: a hello waits for
 * the others of its batch, at most the time Redis takes to subscribe them (microseconds each).
 *
 * Standalone Redis only: in a cluster, one SSUBSCRIBE may only name channels of one slot.
 * A channel asked for twice in a batch is sent twice (Redis answers both; one subscription).
 */
export class SubscribeBatch {
  readonly #sub: ShardedSubscribe;
  #channels: string[] | undefined;
  #sent: Promise<unknown> | undefined;

  constructor(sub: ShardedSubscribe) {
    this.#sub = sub;
  }

  /** Subscribes `channel` with the others asked for in this turn; settles as that one command does. */
  ssubscribe(channel: string): Promise<unknown> {
    if (this.#channels === undefined) {
      const channels: string[] = [];
      this.#channels = channels;
      this.#sent = new Promise((resolve, reject) => {
        // After the microtasks of this turn: every hello resumed in the slice has asked by then.
        process.nextTick(() => {
          this.#channels = undefined;
          try {
            this.#sub.ssubscribe(...channels).then(resolve, reject);
          } catch (error) {
            reject(error);
          }
        });
      });
    }
    this.#channels.push(channel);
    return this.#sent as Promise<unknown>;
  }
}
