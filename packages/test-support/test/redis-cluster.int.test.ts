import { spawnSync } from 'node:child_process';
import { startRedisCluster } from '../src';

describe('startRedisCluster', () => {
  it('starts three masters that agree the cluster is ok, and stops them', async () => {
    const cluster = await startRedisCluster();
    try {
      expect(cluster.nodes).toHaveLength(3);
      for (const { port } of cluster.nodes) {
        const info = spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
        expect(info).toContain('cluster_state:ok');
        expect(info).toContain('cluster_known_nodes:3');
      }
    } finally {
      await cluster.stop();
    }
    const after = spawnSync('redis-cli', ['-p', String(cluster.nodes[0]?.port), 'ping'], { encoding: 'utf8' });
    expect(after.stdout.trim()).not.toBe('PONG');
  });
});
