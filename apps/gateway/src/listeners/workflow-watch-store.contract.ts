import type { WorkflowWatchStore } from './workflow-watch-store';

/**
 * The contract every {@link WorkflowWatchStore} passes: run by
 * test/workflow-watch-store-contract.int.test.ts against memory, standalone Redis
 * and Redis Cluster. `make` gives a fresh store for one test.
 */
export function workflowWatchStoreContract(name: string, make: () => Promise<WorkflowWatchStore>): void {
  describe(`WorkflowWatchStore contract: ${name}`, () => {
    let n = 0;
    let uid: string;
    beforeEach(() => {
      uid = `wf-${Date.now()}-${n++}`;
    });

    it('lists nothing for a user who watches nothing', async () => {
      const store = await make();
      expect(await store.list(uid)).toEqual([]);
      expect(await store.remove(uid, 'job-1')).toBe(false);
    });

    it('keeps one watch per job however often it is added', async () => {
      const store = await make();
      await store.add(uid, 'job-1');
      await store.add(uid, 'job-1');
      await store.add(uid, 'job-2');
      expect((await store.list(uid)).sort()).toEqual(['job-1', 'job-2']);
    });

    it('refuses a new job past max, atomically, and always takes a job already watched', async () => {
      const store = await make();
      const jobs = ['job-1', 'job-2', 'job-3', 'job-4', 'job-5'];
      const added = await Promise.all(jobs.map((job) => store.add(uid, job, 3)));
      expect(added.filter(Boolean)).toHaveLength(3);
      const watched = await store.list(uid);
      expect(watched).toHaveLength(3);
      const refused = jobs.find((job) => !watched.includes(job)) as string;
      expect(await store.add(uid, refused, 3)).toBe(false);
      expect(await store.add(uid, watched[0] as string, 3)).toBe(true);
      await store.remove(uid, watched[0] as string);
      expect(await store.add(uid, refused, 3)).toBe(true);
      expect((await store.list(uid)).sort()).toEqual([...watched.slice(1), refused].sort());
      expect(await store.add(`${uid}-other`, 'job-1', 3)).toBe(true);
    });

    it('takes any number of jobs with max 0 (WORKFLOW_MAX_WATCHES_PER_USER=0: no bound)', async () => {
      const store = await make();
      const jobs = ['job-1', 'job-2', 'job-3', 'job-4'];
      for (const job of jobs) expect(await store.add(uid, job, 0)).toBe(true);
      expect((await store.list(uid)).sort()).toEqual(jobs);
    });

    it('removes a watch once: true the first time, false after', async () => {
      const store = await make();
      await store.add(uid, 'job-1');
      await store.add(uid, 'job-2');
      expect(await store.remove(uid, 'job-1')).toBe(true);
      expect(await store.remove(uid, 'job-1')).toBe(false);
      expect(await store.list(uid)).toEqual(['job-2']);
      expect(await store.remove(uid, 'job-2')).toBe(true);
      expect(await store.list(uid)).toEqual([]);
    });

    it("clears one user's watches and leaves other users' alone", async () => {
      const store = await make();
      await store.add(uid, 'job-1');
      await store.add(uid, 'job-2');
      await store.add(`${uid}-other`, 'job-1');
      await store.clear(uid);
      expect(await store.list(uid)).toEqual([]);
      expect(await store.list(`${uid}-other`)).toEqual(['job-1']);
      await store.clear(`${uid}-never-seen`);
      await store.add(uid, 'job-3');
      expect(await store.list(uid)).toEqual(['job-3']);
    });

    it('keeps job ids as given (spaces, colons, braces, unicode)', async () => {
      const store = await make();
      const ids = ['a b', 'x:y:z', '{tag}', 'émoji-🚀'];
      for (const id of ids) await store.add(uid, id);
      expect((await store.list(uid)).sort()).toEqual([...ids].sort());
    });
  });
}
