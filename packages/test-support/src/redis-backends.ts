import { type RedisClusterHandle, startRedisCluster } from './redis-cluster';
import { type RedisServerHandle, startRedisServer } from './redis-server';

/**
 * A standalone redis-server and a three-master Redis Cluster, started side by side: both, or
 * neither. When one fails to start, the other (once started) is stopped before the error is
 * thrown, so a failed `beforeAll` leaves no server running.
 */
export async function startRedisBackends(): Promise<{ server: RedisServerHandle; cluster: RedisClusterHandle }> {
  const [server, cluster] = await Promise.allSettled([startRedisServer(), startRedisCluster()]);
  if (server.status === 'fulfilled' && cluster.status === 'fulfilled')
    return { server: server.value, cluster: cluster.value };
  await Promise.all([
    server.status === 'fulfilled' && server.value.stop(),
    cluster.status === 'fulfilled' && cluster.value.stop(),
  ]);
  throw server.status === 'rejected' ? server.reason : (cluster as PromiseRejectedResult).reason;
}
