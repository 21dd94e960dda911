import type { Cluster, Redis } from 'ioredis';
import { userSlot } from './cluster-slot';

/** A standalone (or ElastiCache primary) connection, or a Redis Cluster client. */
export type RedisClient = Redis | Cluster;

/** True for a Redis Cluster client. Duck-typed: two copies of ioredis must not break `instanceof`. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * Drops the connections to the masters that serve these users' keys (their stream's slot): a
 * node that stopped answering, without touching the other nodes' connections or their calls in
 * flight. The client connects to it again at its next slots refresh, or the next command for it.
 */
export function dropNodesOf(client: Cluster, userIds: readonly string[]): void {
  const keys = new Set<string>();
  for (const userId of userIds) {
    const node = client.slots[userSlot(userId)]?.[0];
    if (node) keys.add(node);
  }
  for (const node of client.nodes('master')) {
    if (keys.has(`${node.options.host}:${node.options.port}`)) node.disconnect();
  }
}
