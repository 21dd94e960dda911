/**
 * `@livebus/publisher/redis`: the fleet's Redis layer, shared by the gateway, the
 * task worker and the publisher (docs/redis.md, docs/redis-keys.md): the keyspace
 * (every key name and its hash tag), the one way to run Lua ({@link RedisScript})
 * and the one way to open a connection ({@link openRedis}).
 */
export * from './client';
export * from './cluster-slot';
export * from './command-delivery';
export * from './keyspace';
export * from './open-redis';
export * from './redis-script';
export { streamScripts } from './stream-scripts';
