import { closeRedis, instanceKeys, isCluster } from '@livebus/publisher/redis';
import type { Cluster, Redis } from 'ioredis';
import { type ControlMessage, ControlMessageSchema, type InstanceChannel } from './instance-channel';

/** Channel name of an instance. Plain pub/sub: control messages are rare and small. */
export const instanceChannelName = (instanceId: string): string => instanceKeys.channel(instanceId);

/**
 * Control messages over Redis pub/sub, one channel per instance. Plain PUBLISH
 * reaches subscribers on any node of a Redis Cluster, which is what a handful of
 * messages per reconnect needs.
 */
export class RedisInstanceChannel implements InstanceChannel {
  readonly #redis: Redis | Cluster;
  readonly #instanceId: string;
  #subscriber: Redis | Cluster | undefined;
  readonly #watchSubscriber: (subscriber: Redis | Cluster) => () => void;
  #unwatch: () => void = () => {};

  /**
   * `watchSubscriber`: told of the subscriber connection when it is made; what it returns is
   * called on close. The gateway's Redis probe watches it there, and replaces it should it wait on
   * a Redis that does not answer (it subscribes to the channel again as it reconnects).
   */
  constructor(
    redis: Redis | Cluster,
    instanceId: string,
    watchSubscriber: (subscriber: Redis | Cluster) => () => void = () => () => {},
  ) {
    this.#redis = redis;
    this.#instanceId = instanceId;
    this.#watchSubscriber = watchSubscriber;
  }

  async listen(onMessage: (message: ControlMessage) => void): Promise<void> {
    const channel = instanceChannelName(this.#instanceId);
    // On a standalone Redis, without ioredis's own SUBSCRIBE after a reconnect: ioredis 5.11 drops
    // that command's promise, so one cut before Redis answers it (a connection cut again, or
    // replaced by the probe on a frozen Redis) was a rejection nobody handled, which ends the
    // process. The channel subscribes again itself on each 'ready' instead (as the event bus's
    // subscriber does). A Cluster's subscriber is left to ioredis.
    const redis = this.#redis;
    const subscriber = isCluster(redis) ? redis.duplicate() : redis.duplicate({ autoResubscribe: false });
    this.#subscriber = subscriber;
    this.#unwatch = this.#watchSubscriber(subscriber);
    subscriber.on('error', () => {
      // Reconnects by itself and subscribes again; a message lost meanwhile only delays a 4008.
    });
    let subscribed = false;
    if (!isCluster(subscriber)) {
      subscriber.on('ready', () => {
        // The first 'ready' sends listen()'s own SUBSCRIBE, below.
        if (!subscribed || this.#subscriber !== subscriber) return;
        subscriber.subscribe(channel).catch(() => {
          // Cut unanswered: the next 'ready' subscribes again.
        });
      });
    }
    subscriber.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      let parsed: ReturnType<typeof ControlMessageSchema.safeParse>;
      try {
        parsed = ControlMessageSchema.safeParse(JSON.parse(text));
      } catch {
        return; // not ours: another writer on the channel
      }
      if (parsed.success) onMessage(parsed.data);
    });
    await subscriber.subscribe(channel);
    subscribed = true;
  }

  async send(instanceId: string, message: ControlMessage): Promise<void> {
    await this.#redis.publish(instanceChannelName(instanceId), JSON.stringify(message));
  }

  async close(): Promise<void> {
    const s = this.#subscriber;
    this.#subscriber = undefined;
    this.#unwatch();
    if (s) await closeRedis(s);
  }
}
