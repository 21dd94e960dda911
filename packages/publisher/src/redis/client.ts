import type { Cluster, Redis } from 'ioredis';

/** A standalone (or ElastiCache primary) connection, or a Redis Cluster client. */
export type RedisClient = Redis | Cluster;

/** True for a Redis Cluster client. Duck-typed: two copies of ioredis must not break `instanceof`. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}
