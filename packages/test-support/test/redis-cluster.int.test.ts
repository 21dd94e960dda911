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

describe('startRedisCluster({ replicas: 1 })', () => {
  it('promotes the replica of a killed master, takes the master back as a replica, and fails over on demand', async () => {
    const cluster = await startRedisCluster({ replicas: 1, nodeTimeoutMs: 1_000 });
    try {
      expect(cluster.nodes).toHaveLength(6);
      const before = await cluster.topology();
      expect(before.filter((n) => n.role === 'master')).toHaveLength(3);
      const master = await cluster.masterOf('lb:{failover-user}:s');
      const replica = before.find((n) => n.masterId === master.id);
      expect(replica).toBeDefined();

      await cluster.kill(master.port);
      await cluster.waitStable();
      expect((await cluster.masterOf('lb:{failover-user}:s')).id).toBe(replica?.id);

      await cluster.restart(master.port);
      const rejoined = (await cluster.topology()).find((n) => n.id === master.id);
      expect(rejoined).toMatchObject({ role: 'replica', masterId: replica?.id, failing: false });

      // Planned: the old master takes its slots back.
      await cluster.failover(master.port);
      expect((await cluster.masterOf('lb:{failover-user}:s')).id).toBe(master.id);
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
