import { Command } from 'ioredis';
import type { RedisClient } from './client';

/**
 * What a client let us see of a command that failed: whether Redis may have run it. A command
 * is written to a connection (on a Cluster, to the node of its slot, and again to each node a
 * redirection names), or waits in a queue for one that never comes up; a write is answered (the
 * reply, an error reply such as `MOVED` or `CLUSTERDOWN` included: Redis ran nothing), or its
 * connection is lost first (Redis may have run it).
 */
export interface CommandDelivery {
  /**
   * True: a write of it got no answer (its connection was lost with it out), so Redis may have
   * run it. False: it was never written, or every write was answered. Undefined: not watched (a
   * client that auto-pipelines its commands sends them in pipelines of its own).
   */
  unanswered: boolean | undefined;
}

/** ioredis' `ReplyError` (by name: a second copy of ioredis has a class of its own). */
const isReply = (error: unknown) => (error as Error | null)?.name === 'ReplyError';

/**
 * Sends commands (one call's: EVALSHA, and EVAL after a `NOSCRIPT`) and watches their writes, as
 * ioredis makes them: `toWritable` is called once for each write to a connection; a command is
 * rejected once per failed try (a Cluster client's own redirections and retries included: its
 * reject of the command is wrapped, and called by the node for each try). A client that
 * auto-pipelines is sent to as usual and not watched. These are ioredis internals:
 * command-delivery.test.ts fails if a write of a real client no longer goes through `toWritable`.
 */
export class CommandWatch {
  #watched = true;
  #unanswered = false;

  /** `name` with `args`, as `client[name](...args)` would send it, its writes watched. */
  send(client: RedisClient, name: string, args: readonly (string | number)[]): Promise<unknown> {
    const options = client.options as {
      enableAutoPipelining?: boolean;
      keyPrefix?: string;
      showFriendlyErrorStack?: boolean;
    };
    if (options.enableAutoPipelining) {
      this.#watched = false;
      return (client as unknown as Record<string, (...a: readonly (string | number)[]) => Promise<unknown>>)[name]?.(
        ...args,
      ) as Promise<unknown>;
    }
    const command = new Command(name, [...args], {
      keyPrefix: options.keyPrefix,
      replyEncoding: 'utf8',
      ...(options.showFriendlyErrorStack ? { errorStack: new Error() } : {}),
    });
    // A write waits for its answer from here until the command is answered or rejected.
    let out = false;
    const toWritable = command.toWritable;
    command.toWritable = (socket: object) => {
      out = true;
      return toWritable.call(command, socket);
    };
    const promise = client.sendCommand(command) as Promise<unknown>;
    // Wrapped after the send: a Cluster client wraps the reject first, to redirect and retry, and
    // each try's failure then passes here before it.
    const reject = command.reject;
    command.reject = (error: Error) => {
      if (out && !isReply(error)) this.#unanswered = true;
      out = false;
      reject.call(command, error);
    };
    return promise;
  }

  /** What became of the commands sent. */
  get delivery(): CommandDelivery {
    return { unanswered: this.#watched ? this.#unanswered : undefined };
  }
}
