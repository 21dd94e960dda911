import { Cluster } from 'ioredis';
import { guardShardedSubscribers, isLostSubscriptionError } from './sharded-subscriber-guard';

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

  it('keeps each channel once in the list the group subscribes again on a new master', () => {
    const client = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, shardedSubscribers: true });
    expect(guardShardedSubscribers(client)).toBe(true);
    const group = (
      client as unknown as {
        shardedSubscribers: { addChannels(c: string[]): number; channels: Map<number, string[]> };
      }
    ).shardedSubscribers;
    // The bus subscribes a user's channel again at every catch-up.
    group.addChannels(['lb:{u}:n']);
    group.addChannels(['lb:{u}:n']);
    group.addChannels(['lb:{u}:n']);
    expect([...group.channels.values()]).toEqual([['lb:{u}:n']]);
    client.disconnect();
  });

  it('keeps the channels per slot as ioredis does, without counting them all at every call', () => {
    type Group = {
      addChannels(c: string[]): number;
      removeChannels(c: string[]): number;
      channels: Map<number, string[]>;
    };
    const make = () => new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, shardedSubscribers: true });
    const [guarded, plain] = [make(), make()];
    expect(guardShardedSubscribers(guarded)).toBe(true);
    const ours = (guarded as unknown as { shardedSubscribers: Group }).shardedSubscribers;
    const theirs = (plain as unknown as { shardedSubscribers: Group }).shardedSubscribers;
    const channels = ['lb:{a}:n', 'lb:{b}:n', 'lb:{c}:n', 'lb:{a}:x', 'plain-channel'];
    for (const c of channels) {
      expect(ours.addChannels([c])).toBe(0);
      expect(theirs.addChannels([c])).toBeGreaterThan(0);
    }
    // Channels of two slots in one command: refused by both (CROSSSLOT).
    expect(ours.addChannels(['lb:{a}:n', 'lb:{b}:n'])).toBe(-1);
    expect(theirs.addChannels(['lb:{a}:n', 'lb:{b}:n'])).toBe(-1);
    expect(ours.removeChannels(['lb:{a}:n'])).toBe(0);
    theirs.removeChannels(['lb:{a}:n']);
    expect(ours.removeChannels(['lb:{a}:n', 'lb:{c}:n'])).toBe(-1);
    // The same channels under the same slots (ioredis computes its slots with its own CRC16).
    expect(new Map(ours.channels)).toEqual(new Map(theirs.channels));
    guarded.disconnect();
    plain.disconnect();
  });

  it('leaves a client without that group alone', () => {
    expect(guardShardedSubscribers({} as Cluster)).toBe(false);
  });
});

describe('isLostSubscriptionError', () => {
  // ioredis's DataHandler: the message it emits for a reply no command waits for.
  const queueStateError = (reply: unknown[]) =>
    new Error(
      `Command queue state error. If you can reproduce this, please report it. Last reply: ${reply.toString()}`,
    );

  it('is true for a push no command waited for, a sunsubscribe or the answer a push displaced', () => {
    expect(isLostSubscriptionError(queueStateError([Buffer.from('sunsubscribe'), Buffer.from('lb:{a}:n'), 3]))).toBe(
      true,
    );
    expect(isLostSubscriptionError(queueStateError([Buffer.from('ssubscribe'), Buffer.from('lb:{a}:n'), 1]))).toBe(
      true,
    );
  });

  it('is false for other errors', () => {
    expect(isLostSubscriptionError(new Error('connect ECONNREFUSED 127.0.0.1:7000'))).toBe(false);
    expect(isLostSubscriptionError('Command queue state error')).toBe(false);
  });
});
