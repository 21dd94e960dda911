import { userKeys } from '@livebus/publisher/redis';
import { type RedisClusterHandle, startRedisCluster, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';

// A live resharding of a Redis Cluster (what `redis-cli --cluster reshard` and ElastiCache's
// online resharding do): the slots of four users move from one master to another, their keys
// MIGRATEd one at a time (stream, meta, presence) while each user is published to every 20 ms
// and has a session open. Between two keys a user's script finds some keys moved (TRYAGAIN)
// or all (ASK): the publishes are retried. Each session stays open and gets every event once,
// in order; the delivery pauses while the slot moves (its SSUBSCRIBE moves to the new master)
// and catches up from the stream (figure printed, not asserted).
let cluster: RedisClusterHandle;
let t: TestGateway;
beforeAll(async () => {
  cluster = await startRedisCluster();
  t = await startGateway(
    { instanceId: 'gw-reshard', redisUrl: cluster.url, redisCluster: true, logLevel: 'warn' },
    composePorts,
  );
}, 60_000);
afterAll(async () => {
  try {
    await t?.close();
  } finally {
    await cluster?.stop();
  }
}, 60_000);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The n-th event of a user: its number in the task id (read back from what the session gets). */
const numbered = (n: number) => ({
  event: 'task.progress_update',
  data: { task_id: String(n), status: 'running', progress: 1 },
});

it('moving the slots of users with open sessions, keys and all, while they are published to: every event once, in order, sessions kept', async () => {
  const masters = (await cluster.topology()).filter((n) => n.role === 'master' && n.slots.length > 0);
  const [source, target] = [masters[1], masters[2]] as [(typeof masters)[number], (typeof masters)[number]];
  const users: string[] = [];
  for (let i = 0; users.length < 4; i++) {
    if ((await cluster.masterOf(userKeys(`reshard-${i}`).stream)).port === source.port) users.push(`reshard-${i}`);
  }
  const node = (port: number) => new Redis({ port, host: '127.0.0.1' });
  const from = node(source.port);
  const to = node(target.port);
  const all = masters.map((m) => node(m.port));
  try {
    const slots = [
      ...new Set(await Promise.all(users.map(async (u) => Number(await from.cluster('KEYSLOT', userKeys(u).stream))))),
    ];
    const sessions = await Promise.all(users.map((u) => connectAs(t.url, u)));
    const accepted = new Map(users.map((u) => [u, [] as number[]]));
    const refused: string[] = [];
    let publishing = true;
    const flows = users.map(async (u) => {
      for (let n = 1; publishing; n++) {
        const res = await httpJson(`${t.http}/publish`, {
          method: 'POST',
          body: JSON.stringify({ user_id: u, event: numbered(n) }),
        });
        if (res.status === 202 && typeof res.body.cursor === 'string') accepted.get(u)?.push(n);
        else refused.push(`${u} #${n}: ${res.status} ${JSON.stringify(res.body)}`);
        await pause(20);
      }
    });
    await pause(300);
    for (const slot of slots) {
      await to.cluster('SETSLOT', slot, 'IMPORTING', source.id);
      await from.cluster('SETSLOT', slot, 'MIGRATING', target.id);
      for (;;) {
        const keys = (await from.cluster('GETKEYSINSLOT', slot, 1)) as string[];
        if (keys.length === 0) break;
        await from.call('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys);
        await pause(100); // publishes meet the slot half moved
      }
      for (const m of all) await m.cluster('SETSLOT', slot, 'NODE', target.id);
    }
    const moved = Date.now();
    expect(await Promise.all(users.map(async (u) => (await cluster.masterOf(userKeys(u).stream)).port))).toEqual(
      users.map(() => target.port),
    );
    await pause(500);
    publishing = false;
    await Promise.all(flows);
    const seen = (i: number) =>
      (sessions[i]?.client.events() ?? []).map((e) => Number((e.data as { task_id: string }).task_id));
    await waitFor(
      () => users.every((u, i) => seen(i).length >= (accepted.get(u)?.length ?? 0)),
      'every accepted event delivered',
      30_000,
    );
    console.log(`cluster reshard figures: every session caught up ${Date.now() - moved} ms after the slots moved`);
    expect(refused).toEqual([]);
    for (const [i, u] of users.entries()) {
      expect(seen(i)).toEqual(accepted.get(u));
      expect(sessions[i]?.client.ws.readyState).toBe(sessions[i]?.client.ws.OPEN);
    }
  } finally {
    for (const c of [from, to, ...all]) c.disconnect();
  }
}, 120_000);
