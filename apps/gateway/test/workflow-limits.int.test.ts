import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { WorkflowJobIdError } from '../src/listeners/firestore/firestore-workflow-source';
import type { WorkflowSource } from '../src/listeners/listener-source';
import { RedisWorkflowWatchStore } from '../src/listeners/redis-workflow-watch-store';
import { MemoryWorkflowWatchStore } from '../src/listeners/workflow-watch-store';
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
      // A count the user reached, not a bad argument: rate_limited with the counts, no issues.
      const refused = await client.call('WORKFLOW.watch', ['j3']);
      expect(refused).toMatchObject({
        type: 'rpc_error',
        error: {
          code: 'rate_limited',
          message: expect.stringMatching(/WORKFLOW_MAX_WATCHES_PER_USER.*unwatch one/),
          data: { watches: 3, max_watches: 3 },
        },
      });
      expect(refused.type === 'rpc_error' && refused.error.data).not.toHaveProperty('issues');
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

  it('WORKFLOW_MAX_WATCHES_PER_USER=0 bounds nothing', async () => {
    const t = await startGateway({ workflowMaxWatchesPerUser: 0 });
    const { client } = await connectAs(t.url, 'wl0');
    try {
      for (const answer of await watchAll(client, ['j0', 'j1', 'j2', 'j3', 'j4'])) {
        expect(answer).toMatchObject({ type: 'rpc_result', result: { watching: true } });
      }
      expect((await httpJson(`${t.http}/healthz`)).body.workflow_listeners_count).toBe(5);
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
          expect(refused).toMatchObject({ error: { code: 'rate_limited', data: { watches: 3, max_watches: 3 } } });
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

describe('WORKFLOW.watch takes only job ids that name a Firestore document', () => {
  // As Firestore's source: a '/' is refused by its path check, '.', '..' and '__x__' by Firestore.
  const firestoreLike: WorkflowSource = {
    owner: async (jobId) => {
      if (jobId.includes('/')) throw new WorkflowJobIdError(`job id ${JSON.stringify(jobId)} contains '/'`);
      if (jobId === '.' || jobId === '..' || /^__.*__$/.test(jobId)) throw new Error('Firestore: invalid document id');
      return 'wj';
    },
    attach: ownedBy('wj').attach,
  };

  it('answers invalid_params (not unavailable: a retry cannot help) for a /, . or .. or an __x__ id (WORKFLOW.watch), and watches odd ids that are valid', async () => {
    const t = await startGateway({}, { workflowSource: firestoreLike });
    const { client } = await connectAs(t.url, 'wj');
    try {
      for (const bad of ['a/b', '/', '.', '..', '__x__']) {
        expect(await client.call('WORKFLOW.watch', [bad])).toMatchObject({
          type: 'rpc_error',
          error: { code: 'invalid_params', data: { issues: [{ path: '0' }] } },
        });
      }
      for (const ok of ['a.b', '...', '__x', 'x:y z', 'émoji-🚀']) {
        expect(await client.call('WORKFLOW.watch', [ok])).toMatchObject({ type: 'rpc_result', result: { job_id: ok } });
      }
    } finally {
      await client.close();
      await t.close();
    }
  });

  it('WORKFLOW.unwatch takes the older, looser job ids, so a watch stored before the check is released and frees its slot', async () => {
    // A watch of 'old/job' stored by a gateway that predates the check, counted against the bound.
    const watches = new MemoryWorkflowWatchStore();
    await watches.add('wo', 'old/job');
    const t = await startGateway(
      { workflowMaxWatchesPerUser: 1 },
      { workflowSource: { ...firestoreLike, owner: async () => 'wo' }, workflowWatches: watches },
    );
    const { client } = await connectAs(t.url, 'wo');
    try {
      expect(await client.call('WORKFLOW.watch', ['new-job'])).toMatchObject({
        type: 'rpc_error',
        error: { code: 'rate_limited', data: { watches: 1, max_watches: 1 } },
      });
      expect(await client.call('WORKFLOW.unwatch', ['old/job'])).toMatchObject({
        type: 'rpc_result',
        result: { job_id: 'old/job', watching: false },
      });
      expect(await watches.list('wo')).toEqual([]);
      expect(await client.call('WORKFLOW.watch', ['new-job'])).toMatchObject({ type: 'rpc_result' });
    } finally {
      await client.close();
      await t.close();
    }
  });
});
