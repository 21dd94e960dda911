import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import type { WorkflowSource } from '../src/listeners/listener-source';
import { RedisWorkflowWatchStore } from '../src/listeners/redis-workflow-watch-store';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';

/** Jobs every user owns, attached at once: a stand-in for Firestore's workflow source. */
const ownedBy = (uid: string): WorkflowSource => ({
  owner: async () => uid,
  attach: async () => Object.assign(async () => {}, { ready: Promise.resolve() }),
});

/** Watches `jobs` one after another; the answers, in order. */
async function watchAll(client: TestClient, jobs: string[]) {
  const answers = [];
  for (const job of jobs) answers.push(await client.call('WORKFLOW.watch', [job]));
  return answers;
}

describe('WORKFLOW.watch keeps a bounded number of watches per user', () => {
  it('without a workflow source: a further job past WORKFLOW_MAX_WATCHES_PER_USER is refused and not counted', async () => {
    const t = await startGateway({ workflowMaxWatchesPerUser: 3 });
    const { client } = await connectAs(t.url, 'wl');
    try {
      for (const answer of await watchAll(client, ['j0', 'j1', 'j2'])) {
        expect(answer).toMatchObject({ type: 'rpc_result', result: { watching: true } });
      }
      expect(await client.call('WORKFLOW.watch', ['j3'])).toMatchObject({
        type: 'rpc_error',
        error: { code: 'invalid_params', data: { issues: [{ path: '0' }] } },
      });
      expect((await httpJson(`${t.http}/healthz`)).body.workflow_listeners_count).toBe(3);
      // A job already watched is taken again; an unwatch makes room.
      expect(await client.call('WORKFLOW.watch', ['j0'])).toMatchObject({ type: 'rpc_result' });
      expect(await client.call('WORKFLOW.unwatch', ['j1'])).toMatchObject({ type: 'rpc_result' });
      expect(await client.call('WORKFLOW.watch', ['j3'])).toMatchObject({ type: 'rpc_result' });
      expect((await httpJson(`${t.http}/healthz`)).body.workflow_listeners_count).toBe(3);
    } finally {
      await client.close();
      await t.close();
    }
  });

  describe('with a workflow source and Redis', () => {
    let redis: RedisServerHandle;
    let reader: Redis;
    let t: TestGateway;
    beforeAll(async () => {
      redis = await startRedisServer();
      reader = new Redis(redis.url);
      t = await startGateway({ redisUrl: redis.url, workflowMaxWatchesPerUser: 3 }, async (config, logger) => ({
        ...(await composePorts(config, logger)),
        // The fleet's watch set in Redis, as LISTENERS_FILE's Firestore listeners use it.
        workflowWatches: new RedisWorkflowWatchStore(reader),
        workflowSource: ownedBy('wr'),
      }));
    });
    afterAll(async () => {
      await t.close();
      reader.disconnect();
      await redis.stop();
    });

    it("a further job past the bound is refused and never enters the fleet's watch set", async () => {
      const { client } = await connectAs(t.url, 'wr');
      try {
        const answers = await Promise.all(
          ['j0', 'j1', 'j2', 'j3', 'j4'].map((j) => client.call('WORKFLOW.watch', [j])),
        );
        expect(answers.filter((a) => a.type === 'rpc_result')).toHaveLength(3);
        for (const refused of answers.filter((a) => a.type === 'rpc_error')) {
          expect(refused).toMatchObject({ error: { code: 'invalid_params' } });
        }
        const watched = (await reader.smembers('lb:{wr}:wf')).sort();
        expect(watched).toHaveLength(3);
        expect(await client.call('WORKFLOW.watch', [watched[0]])).toMatchObject({ type: 'rpc_result' });
        expect(await client.call('WORKFLOW.unwatch', [watched[0]])).toMatchObject({ type: 'rpc_result' });
        const other = ['j0', 'j1', 'j2', 'j3', 'j4'].find((j) => !watched.includes(j)) as string;
        expect(await client.call('WORKFLOW.watch', [other])).toMatchObject({ type: 'rpc_result' });
        expect(await reader.scard('lb:{wr}:wf')).toBe(3);
      } finally {
        await client.close();
      }
    });
  });
});
