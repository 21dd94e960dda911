import { type FirestoreEmulatorHandle, startFirestoreEmulator, waitFor } from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';
import {
  changesOf,
  createWhenReachable,
  hurryFirestoreRetries,
  testFirestore,
  useEmulator,
  warmUp,
  write,
} from './listeners-helpers';

// Firestore unreachable under a gateway with a listener: what an operator sees (/metrics, /healthz).
let emulator: FirestoreEmulatorHandle;
let t: TestGateway;
let db: Firestore;
let closeDb: () => Promise<void>;
const admin = { token: 'admin-token-0123456789' };

/** The `listener.status` events a client received, as `status kind retrying`. */
function statusesOf(client: { events(): Array<{ event: string; data: unknown }> }): string[] {
  return client
    .events()
    .filter((e) => e.event === 'listener.status')
    .map((e) => {
      const { listener, status, kind, retrying } = e.data as Record<string, unknown>;
      return [listener, status, kind, retrying].filter((x) => x !== undefined).join(' ');
    });
}

/** The value of one sample of `gateway`'s /metrics (`name` with its labels); 0 when absent. */
async function metric(sample: string, gateway: TestGateway = t): Promise<number> {
  const body = String((await httpJson(`${gateway.http}/metrics`, admin)).body);
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

beforeAll(async () => {
  emulator = await startFirestoreEmulator('livebus-firestore-down');
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'firestore-down-writer'));
  await warmUp(db);
  t = await startGateway(
    {
      instanceId: 'gw-firestore-down',
      // One listener per user: its failures are the only ones counted.
      listeners: { user: [{ name: 'notifications', collection: 'users/{uid}/notifications' }] },
      firestoreProjectId: emulator.projectId,
      adminToken: admin.token,
      listenerRetryMaxMs: 8_000,
      listenerStallMs: 0,
    },
    composePorts,
  );
}, 60_000);

afterAll(async () => {
  await t?.close();
  await closeDb?.();
  await emulator?.stop();
});

describe('a query Firestore refuses', () => {
  it('is told with the code the server removed it with (failed_precondition), not other', async () => {
    // The emulator refuses two array-contains filters with FAILED_PRECONDITION, the code of a
    // missing index in production: both come as a target the server removed (`Error 9: ...`).
    const refused = await startGateway(
      {
        instanceId: 'gw-firestore-refused',
        listeners: {
          user: [
            {
              name: 'tagged',
              collection: 'users/{uid}/notifications',
              where: [
                ['tags', 'array-contains', 'a'],
                ['labels', 'array-contains', '{uid}'],
              ],
            },
          ],
        },
        firestoreProjectId: emulator.projectId,
        adminToken: admin.token,
        listenerStallMs: 0,
      },
      composePorts,
    );
    try {
      const { client } = await connectAs(refused.url, 'pia');
      // Refused at each retry (after 0.5, 1 and 2 s): the session is told once.
      await waitFor(
        async () => (await metric('livebus_listener_errors_total{kind="failed_precondition"}', refused)) >= 3,
        'the listener refused three times',
        20_000,
        50,
      );
      expect(statusesOf(client)).toEqual(['tagged failing failed_precondition true']);
      expect(await metric('livebus_listener_errors_total{kind="other"}', refused)).toBe(0);
      // Refused for good: failing until the query is fixed, told as refused on /healthz; Firestore
      // itself is not down for one query it refuses (an alert on its health must not fire for it).
      expect(await metric('livebus_listener_queries_failing{kind="failed_precondition"}', refused)).toBe(1);
      expect((await httpJson(`${refused.http}/healthz`)).body).toMatchObject({
        status: 'ok',
        firestore: 'ok',
        firestore_refused: 1,
      });
      await client.close();
    } finally {
      await refused.close();
    }
  }, 40_000);
});

describe('Firestore unreachable under a listener', () => {
  it('is told as unavailable, the listener failing (not open) and Firestore down all along, until it is back', async () => {
    const { client } = await connectAs(t.url, 'olga');
    const doc = (id: string) => `users/olga/notifications/${id}`;
    await write(db, doc('before'), 'set', { text: 'before' });
    await waitFor(() => changesOf(client, doc('before'))[0], 'the listener is live', 40_000);

    expect(await metric('livebus_listener_queries_failing{kind="unavailable"}')).toBe(0);
    expect(await metric('livebus_listener_queries_open')).toBe(1);

    // Only now: a cold emulator on a loaded host can be slow to serve the first listen, and the
    // client's hurried retries would give up on it (the gateway then retries after up to 8 s).
    hurryFirestoreRetries();
    await emulator.kill();
    // The client gave up its retries: a plain Error without a code, told as `unavailable`.
    const unavailable = () => metric('livebus_listener_errors_total{kind="unavailable"}');
    // Retried after up to 0.5, 1, 2 and 4 s (jittered), each retry the client's eleven quick ones.
    await waitFor(async () => (await unavailable()) >= 5, 'five failures', 45_000, 50);
    expect(await metric('livebus_listener_errors_total{kind="other"}')).toBe(0);
    // The fifth failure's retry waits 4 to 8 s (LISTENER_RETRY_MAX_MS 8 s): /healthz and the
    // gauges tell the listener failing, and not open, all along (not only for 2 s after each
    // failure; not open also while re-opened and retried by the client).
    const seen = new Set<string>();
    await waitFor(
      async () => {
        seen.add(`firestore ${(await httpJson(`${t.http}/healthz`)).body.firestore}`);
        seen.add(`failing ${await metric('livebus_listener_queries_failing{kind="unavailable"}')}`);
        seen.add(`open ${await metric('livebus_listener_queries_open')}`);
        return (await unavailable()) >= 6;
      },
      'the sixth failure',
      30_000,
      50,
    );
    expect([...seen].sort()).toEqual(['failing 1', 'firestore down', 'open 0']);
    expect((await httpJson(`${t.http}/healthz`)).body.firestore_refused).toBe(0);

    await emulator.restart();
    await createWhenReachable(db, doc('after'), { text: 'after' });
    await waitFor(() => changesOf(client, doc('after'))[0], 'a write after Firestore came back', 30_000);
    // The session was told once that the listener failed (not at each of its six failures), then
    // once that it recovered, after the changes held back (the recovering snapshot's come first).
    await waitFor(() => statusesOf(client).length >= 2, 'the recovery told', 10_000);
    expect(statusesOf(client)).toEqual(['notifications failing unavailable true', 'notifications recovered']);
    expect(await metric('livebus_listener_queries_failing{kind="unavailable"}')).toBe(0);
    expect(await metric('livebus_listener_queries_open')).toBe(1);
    await waitFor(
      async () => (await httpJson(`${t.http}/healthz`)).body.firestore === 'ok',
      'Firestore ok on /healthz',
      10_000,
      50,
    );
    await client.close();
    // The bounds of its waits, with the emulator's restart (a JVM: 10 to 30 s on a loaded host).
  }, 180_000);
});
