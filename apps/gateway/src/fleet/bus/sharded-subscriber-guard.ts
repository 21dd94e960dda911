import { slotOf } from '@livebus/publisher/redis';
import type { Cluster } from 'ioredis';

/**
 * ioredis 5.11's Cluster with `shardedSubscribers` keeps one connection per master
 * (a `ShardedSubscriber` in its `ClusterSubscriberGroup`). When a slot map read shows
 * a master gave its slots away (a planned `CLUSTER FAILOVER`, a resharding), it drops
 * that subscriber: `stop()` calls `disconnect()` (a half close: the socket still
 * reads) and then removes every listener of the connection, its `error` listener
 * included. The old master, once it learns it lost the slots, pushes one
 * `sunsubscribe` per channel it drops; when those pushes arrive after `stop()` (the
 * new slot map was read from another node before the old master heard of the
 * failover), ioredis' DataHandler finds no command waiting for them and emits `error`
 * ("Command queue state error ... Last reply: sunsubscribe,...") on a connection
 * with no listener: Node throws it from the socket's `data` handler and the process
 * dies of an uncaught exception.
 *
 * The guard gives every connection the group stops a listener that ignores what it
 * says: it is being closed, and its channels are subscribed again on the new master
 * (the bus then reads what was missed, on `subscribersReady`). It wraps `stop` on
 * each subscriber of this one client as the group creates it (same module copy as
 * the client, bundled or not). Answers false when the client does not have that
 * shape (another ioredis version): the caller's tests then fail loudly.
 *
 * It also keeps the group's list of channels per slot (what it subscribes again on a
 * new master) free of repeats: the group appends a channel on every SSUBSCRIBE, and the
 * bus sends one again for each user it catches up after a failover, so the lists grew
 * by every served user at every failover, for the life of the process. And its bookkeeping of
 * that list no longer counts every channel at every (un)subscribe (see
 * {@link keepChannelsWithoutCounting}).
 */
interface ShardedSubscriberLike {
  getInstance(): { on(event: 'error', listener: (error: unknown) => void): unknown } | null;
  stop(): void;
}

const GUARDED = Symbol('livebus.guardedStop');
const ignore = (): void => {};

function guard(subscriber: ShardedSubscriberLike): void {
  const s = subscriber as ShardedSubscriberLike & { [GUARDED]?: true };
  if (s[GUARDED] || typeof s.stop !== 'function' || typeof s.getInstance !== 'function') return;
  const stop = s.stop;
  s.stop = function guardedStop(this: ShardedSubscriberLike): void {
    const connection = this.getInstance();
    stop.call(this);
    connection?.on('error', ignore);
  };
  s[GUARDED] = true;
}

interface GroupLike {
  shardedSubscribers?: unknown;
  channels?: unknown;
  addChannels?: unknown;
  removeChannels?: unknown;
}

export function guardShardedSubscribers(client: Cluster): boolean {
  const group = (client as unknown as { shardedSubscribers?: GroupLike }).shardedSubscribers;
  const subscribers = group?.shardedSubscribers;
  const channels = group?.channels;
  if (!group || !(subscribers instanceof Map) || !(channels instanceof Map)) return false;
  const setChannels = channels.set.bind(channels);
  channels.set = (slot: unknown, list: unknown) =>
    setChannels(slot, Array.isArray(list) && list.length > 1 ? [...new Set(list)] : list);
  keepChannelsWithoutCounting(group, channels as Map<number, Array<string | Buffer>>);
  for (const s of subscribers.values()) guard(s as ShardedSubscriberLike);
  const set = subscribers.set.bind(subscribers);
  subscribers.set = (key: unknown, value: unknown) => {
    guard(value as ShardedSubscriberLike);
    return set(key, value);
  };
  return true;
}

/**
 * ioredis's `addChannels` and `removeChannels` answer the number of channels the group holds,
 * counted over the whole map (an array of it made) at every call, that is at every SSUBSCRIBE
 * and SUNSUBSCRIBE: quadratic in the users an instance serves, when a restarted instance takes
 * its sessions back. Only "-1 or not" is read (a channel of another slot: CROSSSLOT). The same
 * list of channels per slot is kept, and 0 answered instead of the count.
 */
function keepChannelsWithoutCounting(group: GroupLike, channels: Map<number, Array<string | Buffer>>): void {
  if (typeof group.addChannels !== 'function' || typeof group.removeChannels !== 'function') return;
  const slotOfAll = (list: Array<string | Buffer>): number => {
    const slot = slotOf(String(list[0]));
    return list.every((c) => slotOf(String(c)) === slot) ? slot : -1;
  };
  group.addChannels = (list: Array<string | Buffer>): number => {
    const slot = slotOfAll(list);
    if (slot < 0) return -1;
    const current = channels.get(slot);
    channels.set(slot, current ? current.concat(list) : list);
    return 0;
  };
  group.removeChannels = (list: Array<string | Buffer>): number => {
    const slot = slotOfAll(list);
    if (slot < 0) return -1;
    const current = channels.get(slot);
    if (current)
      channels.set(
        slot,
        current.filter((c) => !list.includes(c)),
      );
    return 0;
  };
}

const QUEUE_STATE_ERROR = 'Command queue state error';

/**
 * Whether a sharded subscriber's error says its subscriptions may be gone. A master that
 * gives its slots away pushes a `sunsubscribe` per channel of those slots; on a connection
 * ioredis still uses (the slot map it read last still names that master: it has not read
 * the new one yet, or the slots came back before it did), ioredis finds no command waiting
 * for the push and reports it as the cluster's `nodeError` ("Command queue state error ...
 * Last reply: sunsubscribe,<channel>,<count>"), while it goes on believing the channel
 * subscribed. When a command was waiting, ioredis takes the push for its answer, and the
 * real answer then comes with nothing waiting: the same error, naming another reply. Any
 * such error means the connection's subscriptions are not what ioredis believes.
 */
export function isLostSubscriptionError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith(QUEUE_STATE_ERROR);
}
