import { waitFor } from '@livebus/test-support';
import { OpenTaskLimitError, type TaskRecord, type TaskStore } from './task-store';

/** A store under test, and how to let time pass for its records' TTL. */
export interface TaskStoreFixture {
  store: TaskStore;
  /** Lets `ms` pass for the store: its clock moves, and its records' TTLs run down by as much. */
  lapse(ms: number): Promise<void>;
  /** The store's clock (what `start_hold_until` is compared with). */
  now(): number;
  /** Puts a job with this id in the queue the store sees (as BullMQ's add would). */
  addJob(queueJobId: string): Promise<void>;
  /** The ids the store keeps for counting the user's open tasks (`{lbq}:open:<uid>`), sorted. */
  openIds(userId: string): Promise<string[]>;
}

/**
 * The contract every {@link TaskStore} passes: run by test/task-store-contract.int.test.ts
 * against memory, standalone Redis and Redis Cluster. `make` gives a fresh store whose
 * records live `ttlMs` after their last change.
 */
export function taskStoreContract(name: string, make: (options: { ttlMs: number }) => Promise<TaskStoreFixture>): void {
  describe(`TaskStore contract: ${name}`, () => {
    let n = 0;
    let id: string;
    beforeEach(() => {
      id = `task-${Date.now()}-${n++}`;
    });
    const queued = (taskId: string, extra: Partial<TaskRecord> = {}): TaskRecord => ({
      task_id: taskId,
      user_id: 'u1',
      status: 'queued',
      progress: 0,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
      ...extra,
    });
    const fresh = async () => (await make({ ttlMs: 60_000 })).store;

    it('creates a task once: a second create returns the stored record unchanged', async () => {
      const store = await fresh();
      expect(await store.get(id)).toBeUndefined();
      const first = await store.create(queued(id, { job_id: 'j-1', queue_job_id: 'q-1' }));
      expect(first).toEqual({
        created: true,
        rearmed: false,
        record: queued(id, { job_id: 'j-1', queue_job_id: 'q-1' }),
      });
      const second = await store.create(queued(id, { user_id: 'someone-else', job_id: 'j-2' }));
      expect(second).toEqual({ created: false, rearmed: false, record: first.record });
      expect(await store.get(id)).toEqual(first.record);
    });

    it('changes a task only from the statuses it names, and says what it found', async () => {
      const store = await fresh();
      await store.create(queued(id));
      const refused = await store.transition(id, ['running'], { status: 'completed' });
      expect(refused).toEqual({ ok: false, record: queued(id) });
      const moved = await store.transition(id, ['queued', 'running'], { status: 'running', progress: 10 });
      expect(moved).toEqual({ ok: true, record: queued(id, { status: 'running', progress: 10 }) });
      expect(await store.get(id)).toEqual(moved.record);
      expect(await store.transition(`${id}-missing`, ['queued'], { status: 'running' })).toEqual({
        ok: false,
        record: undefined,
      });
    });

    it('lets exactly one of concurrent transitions from the same status win', async () => {
      const store = await fresh();
      await store.create(queued(id));
      const results = await Promise.all([
        store.transition(id, ['queued'], { status: 'cancelled' }),
        store.transition(id, ['queued'], { status: 'running' }),
        store.transition(id, ['queued'], { status: 'cancelled' }),
        store.transition(id, ['queued'], { status: 'running' }),
      ]);
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      expect((await store.get(id))?.status).toBe(winners[0]?.record?.status);
    });

    it('removes a field patched with null, keeps fields not named, and never lowers progress', async () => {
      const store = await fresh();
      await store.create(queued(id, { message: 'waiting' }));
      await store.transition(id, ['queued'], { status: 'running', progress: 40, message: null });
      const lower = await store.transition(id, ['running'], { progress: 20, message: 'stage 2' });
      expect(lower.ok).toBe(true);
      expect(lower.record).toEqual(queued(id, { status: 'running', progress: 40, message: 'stage 2' }));
      expect(lower.record).not.toHaveProperty('message', 'waiting');
      const higher = await store.transition(id, ['running'], { progress: 70 });
      expect(higher.record?.progress).toBe(70);
    });

    it('keeps a cancel request on the task its worker then cancels (a cancel of it again answers success)', async () => {
      const store = await fresh();
      await store.create(queued(id));
      await store.transition(id, ['queued', 'running'], { cancel_requested: true });
      await store.transition(id, ['queued'], { status: 'running', attempts: 1, run: 'r1' });
      await store.transition(id, ['running'], { status: 'cancelled', message: 'cancelled', run: null });
      expect(await store.get(id)).toMatchObject({ status: 'cancelled', attempts: 1, cancel_requested: true });
    });

    it('keeps values as given: nested results, empty arrays, unicode text', async () => {
      const store = await fresh();
      await store.create(queued(id));
      const result = { sentences: [], words: 3, tags: ['é', '🚀'], nested: { a: [1, { b: null }] } };
      const done = await store.transition(id, ['queued'], { status: 'completed', progress: 100, result });
      expect(done.record?.result).toEqual(result);
      expect((await store.get(id))?.result).toEqual(result);
    });

    it('fences attempts: a claim by attempt N applies while no attempt N or later holds the task', async () => {
      const store = await fresh();
      await store.create(queued(id));
      const claim1 = await store.transition(
        id,
        ['queued'],
        { status: 'running', attempts: 1, run: 'r1' },
        { claimByAttempt: 1 },
      );
      expect(claim1.ok).toBe(true);
      // The job was started again (its lock lapsed): attempt 2 claims over attempt 1.
      const claim2 = await store.transition(id, ['running'], { attempts: 2, run: 'r2' }, { claimByAttempt: 2 });
      expect(claim2.ok).toBe(true);
      // A late claim by attempt 1, or a second one by attempt 2, is refused.
      expect((await store.transition(id, ['running'], { attempts: 1, run: 'r1' }, { claimByAttempt: 1 })).ok).toBe(
        false,
      );
      expect((await store.transition(id, ['running'], { attempts: 2, run: 'rx' }, { claimByAttempt: 2 })).ok).toBe(
        false,
      );
      expect((await store.get(id))?.run).toBe('r2');
    });

    it("fences steps: a step applies only while its attempt's run token holds the task", async () => {
      const store = await fresh();
      await store.create(queued(id));
      await store.transition(id, ['queued'], { status: 'running', attempts: 1, run: 'r1' }, { claimByAttempt: 1 });
      expect((await store.transition(id, ['running'], { progress: 30 }, { run: 'r1' })).ok).toBe(true);
      await store.transition(id, ['running'], { attempts: 2, run: 'r2' }, { claimByAttempt: 2 });
      const stale = await store.transition(id, ['running'], { progress: 90, status: 'completed' }, { run: 'r1' });
      expect(stale.ok).toBe(false);
      expect(stale.record).toMatchObject({ status: 'running', progress: 30, run: 'r2', attempts: 2 });
      const end = await store.transition(id, ['running'], { status: 'completed', run: null }, { run: 'r2' });
      expect(end).toMatchObject({ ok: true, record: { status: 'completed' } });
      expect(end.record).not.toHaveProperty('run');
    });

    it('refuses a new task of a user at maxOpenPerUser; other users, and tasks that exist, are not refused', async () => {
      const store = await fresh();
      const [alice, bob] = [`${id}-alice`, `${id}-bob`];
      const limits = { maxOpenPerUser: 2 };
      for (const n of [1, 2]) await store.create(queued(`${id}-${n}`, { user_id: alice }), limits);
      const refused = store.create(queued(`${id}-3`, { user_id: alice }), limits);
      await expect(refused).rejects.toBeInstanceOf(OpenTaskLimitError);
      await expect(refused).rejects.toMatchObject({ userId: alice, open: 2, max: 2 });
      expect(await store.get(`${id}-3`)).toBeUndefined();
      // Another user's tasks; a start of an existing task answered as before; no limit, no check.
      expect((await store.create(queued(`${id}-4`, { user_id: bob }), limits)).created).toBe(true);
      expect(await store.create(queued(`${id}-1`, { user_id: alice }), limits)).toMatchObject({ created: false });
      expect((await store.create(queued(`${id}-5`, { user_id: alice }))).created).toBe(true);
    });

    it('lets exactly maxOpenPerUser of concurrent creates of one user win', async () => {
      const store = await fresh();
      const user = `${id}-carol`;
      const results = await Promise.allSettled(
        [1, 2, 3, 4, 5, 6].map((n) => store.create(queued(`${id}-${n}`, { user_id: user }), { maxOpenPerUser: 2 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      expect(refusals).toHaveLength(4);
      for (const reason of refusals) expect(reason).toBeInstanceOf(OpenTaskLimitError);
    });

    it('counts a task while queued or running, no longer once it is final, whoever ended it', async () => {
      const store = await fresh();
      const user = `${id}-dan`;
      const limits = { maxOpenPerUser: 2 };
      const create = (n: number) => store.create(queued(`${id}-${n}`, { user_id: user }), limits);
      await create(1);
      await create(2);
      await store.transition(`${id}-1`, ['queued'], { status: 'running' });
      await expect(create(3)).rejects.toMatchObject({ open: 2 });
      for (const [n, status] of [
        [1, 'completed'],
        [2, 'cancelled'],
      ] as const) {
        await store.transition(`${id}-${n}`, ['queued', 'running'], { status });
      }
      // Both slots free again, and again after those end (failed) in turn.
      await create(3);
      await create(4);
      await expect(create(5)).rejects.toMatchObject({ open: 2 });
      for (const n of [3, 4]) await store.transition(`${id}-${n}`, ['queued'], { status: 'failed' });
      await create(5);
      await create(6);
    });

    it('counts a task no longer once its record expired, while the set that held it lives on', async () => {
      const { store, lapse } = await make({ ttlMs: 3_000 });
      const user = `${id}-eve`;
      const create = (n: number) => store.create(queued(`${id}-${n}`, { user_id: user }), { maxOpenPerUser: 2 });
      await create(1);
      await lapse(1_500);
      // A second task part-way through the first one's TTL keeps the user's set alive past it.
      await create(2);
      await lapse(1_600);
      await waitFor(async () => (await store.get(`${id}-1`)) === undefined, 'the first task to expire', 3_000);
      // The second is still open (its change keeps it, and the set, ttlMs longer): the create
      // must drop the expired first task from the count, not find the whole set gone.
      expect((await store.transition(`${id}-2`, ['queued'], { status: 'running' })).ok).toBe(true);
      expect((await create(3)).created).toBe(true);
      await expect(create(4)).rejects.toMatchObject({ open: 2, max: 2 });
    });

    it('counts a task as long as its record lives, changed after the last create; not one created without a limit', async () => {
      const { store, lapse } = await make({ ttlMs: 3_000 });
      const user = `${id}-fay`;
      const limits = { maxOpenPerUser: 1 };
      const create = (n: number, l = limits) => store.create(queued(`${id}-${n}`, { user_id: user }), l);
      await create(1);
      await lapse(1_800);
      // The task changes (its record lives ttlMs from now), the user creates nothing: past ttlMs
      // after the create, the task is still running, and still counted.
      expect((await store.transition(`${id}-1`, ['queued'], { status: 'running' })).ok).toBe(true);
      await lapse(1_800);
      expect((await store.get(`${id}-1`))?.status).toBe('running');
      await expect(create(2)).rejects.toMatchObject({ open: 1, max: 1 });
      // A task created while the limit was off is not kept for counting (nothing would prune
      // the user's set then): it does not count once the limit is on.
      const other = `${id}-gus`;
      await store.create(queued(`${id}-3`, { user_id: other }));
      expect((await store.create(queued(`${id}-4`, { user_id: other }), limits)).created).toBe(true);
    });

    it("counts a queued task within its start's hold or with its job queued; one whose start failed, not", async () => {
      const { store, lapse, now, addJob } = await make({ ttlMs: 600_000 });
      const user = `${id}-hal`;
      const limits = { maxOpenPerUser: 3 };
      const create = (n: number, extra: Partial<TaskRecord> = {}) =>
        store.create(queued(`${id}-${n}`, { user_id: user, queue_job_id: `${id}-q${n}`, ...extra }), limits);
      const held = () => ({ start_hold_until: now() + 1_000 });
      await create(1, held());
      await create(2, held());
      await addJob(`${id}-q2`);
      // No hold at all (a task created before holds existed): counted while queued, as before.
      await create(3);
      await expect(create(4, held())).rejects.toMatchObject({ open: 3, max: 3 });
      // The hold passed: 1 (no job) counts no longer; 2 (its job queued) and 3 still do.
      await lapse(1_000);
      expect((await create(4, held())).created).toBe(true);
      await expect(create(5, held())).rejects.toMatchObject({ open: 3 });
      // A hold given back (0) frees the slot at once; the task stays queued.
      expect((await store.transition(`${id}-4`, ['queued'], { start_hold_until: 0 })).ok).toBe(true);
      expect((await store.get(`${id}-4`))?.status).toBe('queued');
      expect((await create(5, held())).created).toBe(true);
      // 1's job queued after all (a start of it again): it was kept, and counts again.
      await addJob(`${id}-q1`);
      await expect(create(6, held())).rejects.toMatchObject({ open: 4 });
      // Running counts whatever the hold; final never.
      await store.transition(`${id}-5`, ['queued'], { status: 'running', start_hold_until: 0 });
      for (const n of [1, 2, 4]) await store.transition(`${id}-${n}`, ['queued'], { status: 'completed' });
      // Open now: 3 (queued, no hold) and 5 (running, its hold given back).
      expect((await create(6, held())).created).toBe(true);
      await expect(create(7, held())).rejects.toMatchObject({ open: 3 });
    });

    it('a create of an existing task that no longer counts re-checks the limit and re-arms its hold, in one step', async () => {
      const { store, now } = await make({ ttlMs: 600_000 });
      const user = `${id}-ivy`;
      const limits = { maxOpenPerUser: 1 };
      const task = (n: number, hold: number) =>
        queued(`${id}-${n}`, { user_id: user, queue_job_id: `${id}-q${n}`, start_hold_until: hold });
      const create = (n: number) => store.create(task(n, now() + 1_000), limits);
      await create(1);
      // Its start failed and gave the slot back: 2 takes it.
      await store.transition(`${id}-1`, ['queued'], { start_hold_until: 0 });
      expect((await create(2)).created).toBe(true);
      // 1 started again while 2 is open: refused like a new task, and its hold stays given back.
      await expect(create(1)).rejects.toMatchObject({ userId: user, open: 1, max: 1 });
      expect((await store.get(`${id}-1`))?.start_hold_until).toBe(0);
      // Once 2 ended, 1's start again takes the slot: its hold is armed again, so it counts.
      await store.transition(`${id}-2`, ['queued'], { status: 'completed' });
      const again = await store.create(task(1, now() + 1_000), limits);
      expect(again).toMatchObject({ created: false, rearmed: true, record: { start_hold_until: now() + 1_000 } });
      expect(await store.get(`${id}-1`)).toEqual(again.record);
      await expect(create(3)).rejects.toMatchObject({ open: 1, max: 1 });
      // A task that counts is returned as ever, at the limit or not: nothing re-armed.
      expect(await create(1)).toMatchObject({ created: false, rearmed: false });
      // Another user's create of it (a start of someone else's job id) changes nothing.
      await store.transition(`${id}-1`, ['queued'], { start_hold_until: 0 });
      const foreign = await store.create(
        queued(`${id}-1`, { user_id: `${user}-x`, start_hold_until: now() + 5 }),
        limits,
      );
      expect(foreign).toMatchObject({ created: false, rearmed: false, record: { user_id: user, start_hold_until: 0 } });
      // Without a limit nothing is checked or re-armed.
      expect(await store.create(task(1, now() + 1_000))).toMatchObject({ created: false, rearmed: false });
    });

    it('lets one of concurrent creates of given-back tasks of one user at the limit win', async () => {
      const { store, now } = await make({ ttlMs: 600_000 });
      const user = `${id}-jon`;
      const limits = { maxOpenPerUser: 1 };
      const task = (n: number) => queued(`${id}-${n}`, { user_id: user, start_hold_until: now() + 1_000 });
      for (const n of [1, 2, 3, 4, 5, 6]) {
        await store.create(task(n), limits);
        await store.transition(`${id}-${n}`, ['queued'], { start_hold_until: 0 });
      }
      const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((n) => store.create(task(n), limits)));
      expect(results.filter((r) => r.status === 'fulfilled' && r.value.rearmed)).toHaveLength(1);
      const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      expect(refusals).toHaveLength(5);
      for (const reason of refusals) expect(reason).toBeInstanceOf(OpenTaskLimitError);
    });

    it("drops a task whose start gave its slot back from the user's set at their next start, unless its job is queued", async () => {
      const { store, now, addJob, openIds } = await make({ ttlMs: 600_000 });
      const user = `${id}-kay`;
      const limits = { maxOpenPerUser: 5 };
      const create = (n: number) =>
        store.create(
          queued(`${id}-${n}`, { user_id: user, queue_job_id: `${id}-q${n}`, start_hold_until: now() + 1_000 }),
          limits,
        );
      for (const n of [1, 2, 3]) await create(n);
      for (const n of [1, 2]) await store.transition(`${id}-${n}`, ['queued'], { start_hold_until: 0 });
      // 2's job reached the queue (its answer lost): it counts, and is kept.
      await addJob(`${id}-q2`);
      await create(4);
      expect(await openIds(user)).toEqual([`${id}-2`, `${id}-3`, `${id}-4`].sort());
      // Started again, 1 is counted and kept again.
      expect(await create(1)).toMatchObject({ created: false, rearmed: true });
      expect(await openIds(user)).toEqual([`${id}-1`, `${id}-2`, `${id}-3`, `${id}-4`].sort());
    });

    it('keeps a task ttlMs after its last change, then forgets it', async () => {
      const { store, lapse } = await make({ ttlMs: 1_000 });
      await store.create(queued(id));
      await lapse(600);
      await store.transition(id, ['queued'], { status: 'running' });
      await lapse(600);
      expect((await store.get(id))?.status).toBe('running');
      await lapse(600);
      await waitFor(async () => (await store.get(id)) === undefined, 'the task to expire', 3_000);
      expect((await store.create(queued(id))).created).toBe(true);
    });
  });
}
