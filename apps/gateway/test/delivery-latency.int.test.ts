import type { AppEvent } from '@livebus/protocol';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';

/** A Firestore time as the listeners write it (RFC 3339, microseconds). */
const firestoreTime = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000Z`;

const change = (source: string, initial = false): AppEvent => ({
  event: 'listener.change',
  data: {
    source,
    listener: source === 'workflow' ? 'workflow' : 'notifications',
    path: 'users/u/notifications/1',
    change: 'modified',
    initial,
    update_time: firestoreTime(Date.now()),
    data: { n: 1 },
  },
});
const task: AppEvent = { event: 'task.progress_update', data: { task_id: 't1', status: 'running', progress: 10 } };
const notice: AppEvent = { event: 'session.notice', data: { level: 'info', message: 'hello' } };

/** `<name>_count{source="…"}` of /metrics, by source. */
async function deliveryCounts(t: TestGateway): Promise<Record<string, number>> {
  const text = String((await httpJson(`${t.http}/metrics`)).body);
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^livebus_delivery_seconds_count\{source="(\w+)"\} (\S+)$/gm)) {
    out[String(m[1])] = Number(m[2]);
  }
  return out;
}

/** Publishes 3 Firestore changes (and 1 initial one), 2 workflow changes, 4 task updates and 5 notices to `uid`. */
async function publishEach(t: TestGateway, uid: string): Promise<number> {
  const events = [
    ...Array.from({ length: 3 }, () => change('firestore')),
    change('firestore', true),
    ...Array.from({ length: 2 }, () => change('workflow')),
    ...Array.from({ length: 4 }, () => task),
    ...Array.from({ length: 5 }, () => notice),
  ];
  for (const e of events) await t.gw.publish(uid, e);
  return events.length;
}

describe.each([
  ['the embedded bus', false],
  ['Redis', true],
])('delivery latency on %s', (_name, withRedis) => {
  let redis: RedisServerHandle | undefined;
  let t: TestGateway;
  beforeAll(async () => {
    if (withRedis) {
      redis = await startRedisServer();
      t = await startGateway({ redisUrl: redis.url }, composePorts);
      await waitFor(async () => (await httpJson(`${t.http}/healthz`)).body.redis === 'ok', 'redis ok');
    } else t = await startGateway();
  });
  afterAll(async () => {
    await t.close();
    await redis?.stop();
  });

  it('counts one delivery per frame written, by source, leaving initial changes and replays out', async () => {
    const { client, welcome } = await connectAs(t.url, 'lat-user');
    const sent = await publishEach(t, 'lat-user');
    await waitFor(() => client.events().length === sent, `${sent} events on the socket`);
    expect(await deliveryCounts(t)).toEqual({ firestore: 3, workflow: 2, publish: 5, task: 4, company: 0 });

    // A second session of the same user: each frame written counts; a resumed session's replay does not.
    const resumed = await connectAs(t.url, 'lat-user', { last_cursor: welcome.resume.cursor });
    await waitFor(() => resumed.client.events().length === sent, 'the replay');
    await t.gw.publish('lat-user', notice);
    await waitFor(() => client.events().length === sent + 1 && resumed.client.events().length === sent + 1, 'both');
    expect(await deliveryCounts(t)).toEqual({ firestore: 3, workflow: 2, publish: 7, task: 4, company: 0 });

    const m = (await httpJson(`${t.http}/ws-metrics`)).body.metrics as {
      delivery: { since_start: Record<string, { count: number }>; clock: { skew: Record<string, number> } };
      reconnects: { resumed: number; gap: number };
    };
    expect(m.delivery.since_start.all?.count).toBe(16);
    expect(m.delivery.since_start.listeners?.count).toBe(5);
    expect(m.reconnects).toEqual({ resumed: 1, gap: 0 });
    await client.close();
    await resumed.client.close();
  });

  it('reports the Redis clock offset it corrects published events by', async () => {
    const text = String((await httpJson(`${t.http}/metrics`)).body);
    expect(text).toMatch(/^livebus_redis_clock_offset_seconds -?[\d.e-]+$/m);
    const clock = ((await httpJson(`${t.http}/ws-metrics`)).body.metrics as { delivery: { clock: object } }).delivery
      .clock;
    expect(clock).toEqual({ redis_offset_ms: expect.any(Number), skew: expect.any(Object) });
  });
});
