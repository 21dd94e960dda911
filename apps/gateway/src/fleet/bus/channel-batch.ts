/** Sends one command for any number of channels (`SSUBSCRIBE` or `SUNSUBSCRIBE`), settling once Redis has answered for each. */
export type ChannelCommand = (...channels: string[]) => Promise<unknown>;

/**
 * The channels asked for in one turn of the event loop, sent as one command once the turn's
 * callbacks and microtasks are done: a reconnect storm's hellos resume in slices of many each
 * and all reach their SSUBSCRIBE there, and the sessions a drain or a dropped network closes
 * reach their SUNSUBSCRIBE together. One write of one command for all of them costs the
 * gateway a system call and a command each less, and Redis a command each less to parse.
 * Redis answers each channel of the command on its own, and ioredis settles the command once
 * every channel is answered: each caller waits for the others of its batch, at most the time
 * Redis takes to answer them (microseconds each).
 *
 * Standalone Redis only: in a cluster, one command may only name channels of one slot.
 * A channel asked for twice in a batch is sent twice (Redis answers both).
 */
export class ChannelBatch {
  readonly #send: ChannelCommand;
  #channels: string[] | undefined;
  #sent: Promise<unknown> | undefined;

  constructor(send: ChannelCommand) {
    this.#send = send;
  }

  /** Sends `channel` with the others asked for in this turn; settles as that one command does. */
  add(channel: string): Promise<unknown> {
    if (this.#channels === undefined) {
      const channels: string[] = [];
      this.#channels = channels;
      this.#sent = new Promise((resolve, reject) => {
        // After the microtasks of this turn: every hello resumed in the slice has asked by then.
        process.nextTick(() => {
          this.#channels = undefined;
          try {
            this.#send(...channels).then(resolve, reject);
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
