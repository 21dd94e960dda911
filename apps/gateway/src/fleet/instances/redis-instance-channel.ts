import { closeRedis, instanceKeys } from '@livebus/publisher/redis';
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
   * a Redis that does not answer (ioredis then subscribes again by itself).
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
    const subscriber = this.#redis.duplicate();
    this.#subscriber = subscriber;
    this.#unwatch = this.#watchSubscriber(subscriber);
    subscriber.on('error', () => {
      // Reconnects by itself and re-subscribes; a message lost meanwhile only delays a 4008.
    });
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
