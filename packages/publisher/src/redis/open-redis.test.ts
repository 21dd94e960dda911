import { Cluster } from 'ioredis';
import { clusterNodeOptions, openRedis } from './open-redis';

describe('openRedis on a Cluster: what every node gets from the seed URL', () => {
  it('reads the user name, password (decoded) and TLS of the URL', () => {
    expect(clusterNodeOptions('rediss://app:p%40ss@cfg.example.cache.amazonaws.com:6379')).toEqual({
      username: 'app',
      password: 'p@ss',
      tls: {},
    });
    expect(clusterNodeOptions('redis://:secret@10.0.0.5:6379')).toEqual({ password: 'secret' });
    expect(clusterNodeOptions('redis://10.0.0.5:6379')).toEqual({});
  });

  it('gives them to the nodes the slot map names, and connects TLS nodes by the names announced', () => {
    // A publisher's connection is lazy: nothing is dialled here.
    const client = openRedis('rediss://:secret@cfg.example.cache.amazonaws.com:6379', {
      cluster: true,
      role: 'publisher',
    }) as Cluster;
    expect(client).toBeInstanceOf(Cluster);
    expect(client.options.redisOptions).toMatchObject({ password: 'secret', tls: {} });
    const looked: string[] = [];
    client.options.dnsLookup?.('node-1.example.cache.amazonaws.com', (_error, address) => looked.push(address));
    expect(looked).toEqual(['node-1.example.cache.amazonaws.com']);
    client.disconnect();
  });
});
