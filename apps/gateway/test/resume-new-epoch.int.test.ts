import { parseCursor } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { composePorts } from '../src/compose';
import type { GatewayConfig } from '../src/config';
import { useFleetBackends } from './fleet-backends';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';

// A stream made anew (Redis restarted empty, keys lost, an in-memory gateway restarted) has a
// new epoch. A session resuming with a cursor of the old epoch hears `gap` (what it missed of
// the old epoch may be lost) and then gets every event the new epoch still holds, from its
// start, in order, once: all of them were published after the cursor it had.
const note = (m: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message: m } });
const { standalone, cluster } = useFleetBackends();
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const g of gateways.splice(0)) await g.close();
});

async function gateway(overrides: Partial<GatewayConfig>): Promise<TestGateway> {
  const t = await startGateway({ logLevel: 'warn', ...overrides }, composePorts);
  gateways.push(t);
  return t;
}

async function publish(t: TestGateway, uid: string, message: string): Promise<void> {
  const r = await httpJson(`${t.http}/publish`, {
    method: 'POST',
    body: JSON.stringify({ user_id: uid, event: note(message) }),
  });
  expect(r.status).toBe(202);
}

const messages = (c: TestClient) => c.events().map((e) => (e.data as { message: string }).message);

/** A session that saw `old-1..3` and left: its cursor, of the stream's epoch then. */
async function oldCursor(t: TestGateway, uid: string): Promise<string> {
  const { client } = await connectAs(t.url, uid);
  clients.push(client);
  for (const m of ['old-1', 'old-2', 'old-3']) await publish(t, uid, m);
  await waitFor(() => messages(client).length === 3, 'the old events');
  await client.close();
  const last = client.events().at(-1)?.cursor;
  if (!last) throw new Error('no cursor');
  return last;
}

/** Publishes `new-1..5` to the new epoch, then resumes with `cursor` and checks what the session gets. */
async function expectNewEpochReplayed(t: TestGateway, uid: string, cursor: string): Promise<void> {
  for (const m of ['new-1', 'new-2', 'new-3', 'new-4', 'new-5']) await publish(t, uid, m);
  const replays = t.hooks.of('session.replay', uid).length;
  const { client, welcome } = await connectAs(t.url, uid, { last_cursor: cursor });
  clients.push(client);
  const epoch = parseCursor(cursor)?.epoch;
  const fresh = parseCursor(welcome.resume.cursor);
  expect(fresh?.epoch).not.toBe(epoch);
  expect(welcome.resume).toEqual({ status: 'gap', cursor: `${fresh?.epoch}:0`, replayed: 5 });
  await publish(t, uid, 'live-6');
  await waitFor(() => messages(client).length >= 6, 'the new epoch and the live event');
  // One more round trip on the socket: a duplicate would have arrived before its pong.
  const ts = Date.now();
  client.send({ type: 'ping', ts });
  await client.next('pong', (p) => p.ts === ts);
  expect(messages(client)).toEqual(['new-1', 'new-2', 'new-3', 'new-4', 'new-5', 'live-6']);
  expect(client.events().map((e) => e.cursor)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `${fresh?.epoch}:${n}`));
  expect(t.hooks.of('session.replay', uid).slice(replays)).toEqual([expect.objectContaining({ events: 5, gap: true })]);
}

it('in-memory bus: after a gateway restart, a resume gets gap and every event of the new epoch', async () => {
  const uid = `mem-${Date.now()}`;
  const before = await gateway({ instanceId: 'gw-epoch-mem-a' });
  const cursor = await oldCursor(before, uid);
  await before.close();
  gateways.splice(0);
  const after = await gateway({ instanceId: 'gw-epoch-mem-b' });
  await expectNewEpochReplayed(after, uid, cursor);
});

for (const backend of [
  { name: 'standalone Redis', b: standalone, cluster: false },
  { name: 'Redis Cluster', b: cluster, cluster: true },
]) {
  it(`${backend.name}: after the keys are lost (Redis restarted empty), a resume gets gap and every event of the new epoch`, async () => {
    const uid = `redis-${backend.cluster ? 'c' : 's'}-${Date.now()}`;
    const t = await gateway({
      instanceId: `gw-epoch-${backend.cluster ? 'c' : 's'}`,
      redisUrl: backend.b.url,
      redisCluster: backend.cluster,
    });
    const cursor = await oldCursor(t, uid);
    await backend.b.flush();
    await expectNewEpochReplayed(t, uid, cursor);
  }, 30_000);
}
