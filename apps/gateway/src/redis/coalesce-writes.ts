import type { Writable } from 'node:stream';
import type { Redis } from 'ioredis';

interface Corkable {
  stream?: Writable;
  sendCommand: Redis['sendCommand'];
  duplicate: Redis['duplicate'];
}

/**
 * Makes a standalone ioredis client write every command issued during one turn of
 * the event loop in one socket write, and the clients `duplicate()`d from it too
 * (the event bus's subscriber).
 *
 * ioredis's auto-pipelining joins the commands of one tick (one callback and its
 * microtasks) into one write; a reconnect storm runs each client's hello in a callback
 * of its own, so 2 000 hellos made about 6 000 writes of one to three commands each
 * (presence, SSUBSCRIBE, stream head), one `write` system call apiece: 6 % of the
 * gateway's CPU during a storm. Here the socket is corked at the first command of a
 * turn and uncorked by `setImmediate`, once the turn's I/O callbacks have run: one
 * `writev` for all of them. A command waits at most until the end of the current turn.
 *
 * Cluster clients are left as they are (ioredis makes and replaces their node
 * connections by itself).
 */
export function coalesceWrites<T extends object>(client: T): T {
  const c = client as unknown as Corkable;
  if (typeof c.sendCommand !== 'function' || typeof c.duplicate !== 'function' || 'nodes' in c) return client;
  let corked: Writable | undefined;
  const release = () => {
    const stream = corked;
    corked = undefined;
    if (stream && stream.writableCorked > 0) stream.uncork();
  };
  const send = c.sendCommand;
  c.sendCommand = function (this: Corkable, ...args: Parameters<Redis['sendCommand']>) {
    const stream = this.stream;
    if (!corked && stream && stream.writable) {
      corked = stream;
      stream.cork();
      setImmediate(release);
    }
    return send.apply(this, args);
  } as Redis['sendCommand'];
  const duplicate = c.duplicate;
  c.duplicate = function (this: Corkable, ...args: Parameters<Redis['duplicate']>) {
    return coalesceWrites(duplicate.apply(this, args));
  } as Redis['duplicate'];
  return client;
}
