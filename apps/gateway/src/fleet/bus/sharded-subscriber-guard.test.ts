import { Cluster } from 'ioredis';
import { guardShardedSubscribers } from './sharded-subscriber-guard';

describe('guardShardedSubscribers', () => {
  it('finds the sharded subscriber group of the installed ioredis and guards the subscribers it stops', () => {
    const client = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, shardedSubscribers: true });
    expect(guardShardedSubscribers(client)).toBe(true);
    // A subscriber as the group creates it: stop() removes every listener of its connection.
    const group = (client as unknown as { shardedSubscribers: { shardedSubscribers: Map<string, unknown> } })
      .shardedSubscribers;
    const listeners = new Map<string, Array<() => void>>();
    const connection = {
      on: (event: string, fn: () => void) => listeners.set(event, [...(listeners.get(event) ?? []), fn]),
    };
    let live: typeof connection | null = connection;
    const subscriber = {
      getInstance: () => live,
      stop: () => {
        listeners.clear();
        live = null;
      },
    };
    group.shardedSubscribers.set('127.0.0.1:1', subscriber);
    subscriber.stop();
    // The stopped connection still has an 'error' listener: a late push cannot throw.
    expect(listeners.get('error')).toHaveLength(1);
    client.disconnect();
  });

  it('leaves a client without that group alone', () => {
    expect(guardShardedSubscribers({} as Cluster)).toBe(false);
  });
});
