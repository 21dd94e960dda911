import { Registry } from 'prom-client';
import { DeliveryLatency, quantileOf, rfc3339Ms, SnapshotDelay } from './delivery-latency';

/** A frame as the bus stores it (the Lua script and the embedded bus write this order). */
const frame = (ts: number, event: string, data: object) =>
  JSON.stringify({ type: 'event', cursor: 'ep:1', ts, event, data });
const change = (source: string, updateTime: string, initial = false) =>
  frame(1_000, 'listener.change', {
    source,
    path: 'users/u/n/1',
    change: 'modified',
    data: { update_time: 'not this one' },
    listener: 'n',
    initial,
    update_time: updateTime,
  });

/** Counts of the histogram's `_count` series by source, as /metrics shows them. */
async function countsOf(registry: Registry, name: string) {
  const text = await registry.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}_count\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    out[String(m[1])] = Number(m[2]);
  }
  return out;
}

describe('DeliveryLatency', () => {
  it('counts one delivery per recorded frame, labelled by source, and leaves initial changes out', async () => {
    const latency = new DeliveryLatency(() => 2_000);
    const registry = new Registry();
    latency.register(registry);
    const feed = (text: string, frames: number) => {
      if (!latency.prepare(text)) return;
      for (let i = 0; i < frames; i++) latency.record();
    };
    for (let i = 0; i < 3; i++) feed(change('firestore', '1970-01-01T00:00:01.500000Z'), 1);
    for (let i = 0; i < 2; i++) feed(change('workflow', '1970-01-01T00:00:01.900000Z'), 2); // two sessions each
    feed(change('firestore', '1970-01-01T00:00:01.000000Z', true), 1); // initial: not late, not counted
    for (let i = 0; i < 4; i++)
      feed(frame(1_990, 'task.progress_update', { task_id: 't', status: 'running', progress: 1 }), 1);
    for (let i = 0; i < 5; i++) feed(frame(1_995, 'session.notice', { level: 'info', message: 'hi' }), 1);
    feed(change('redis', '1970-01-01T00:00:01.000000Z'), 1); // another source's change: a publish
    expect(await countsOf(registry, 'livebus_delivery_seconds')).toEqual({
      'source="firestore"': 3,
      'source="workflow"': 4,
      'source="publish"': 6,
      'source="task"': 4,
      'source="company"': 0,
    });
    const summary = latency.summary('start');
    expect([summary.all.count, summary.listeners.count]).toEqual([17, 7]);
  });

  it('prepareFrame reads a frame given as bytes as prepare reads its text', async () => {
    const texts = [
      change('firestore', '1970-01-01T00:00:01.500000Z'),
      change('workflow', '1970-01-01T00:00:01.900000Z'),
      change('firestore', '1970-01-01T00:00:01.000000Z', true),
      change('redis', '1970-01-01T00:00:01.000000Z'),
      frame(1_990, 'task.progress_update', { task_id: 't', status: 'running', progress: 1 }),
      frame(1_500, 'session.notice', { level: 'info', message: 'caf\u00e9' }),
      frame(1_995, 'listener.change', JSON.parse(change('company', '1970-01-01T00:00:01.500000Z')).data),
      '{"type":"event","cursor":"ep:1","ts":x,"event":"session.notice","data":{}}',
      '{"type":"event","cursor":"ep:1"',
      'not a frame',
    ];
    const run = (read: (latency: DeliveryLatency, text: string) => boolean) => {
      const latency = new DeliveryLatency(() => 2_000);
      latency.setClockOffset(3);
      const prepared = texts.map((text) => {
        const ok = read(latency, text);
        if (ok) latency.record();
        return ok;
      });
      return { prepared, summary: latency.summary('start'), skew: latency.skew() };
    };
    const fromText = run((latency, text) => latency.prepare(text));
    expect(fromText.prepared.filter(Boolean)).toHaveLength(6);
    expect(run((latency, text) => latency.prepareFrame({ text, bytes: Buffer.from(text) }))).toEqual(fromText);
    expect(run((latency, text) => latency.prepareFrame({ text }))).toEqual(fromText);
  });

  it('counts a company listener change as `company`, a listener delivery, timed from its update_time', async () => {
    const latency = new DeliveryLatency(() => 2_000);
    const registry = new Registry();
    latency.register(registry);
    // Fanned out by the holder at 1 995 ms (Redis ts), changed in Firestore at 1 500 ms.
    expect(
      latency.prepare(
        frame(1_995, 'listener.change', JSON.parse(change('company', '1970-01-01T00:00:01.500000Z')).data),
      ),
    ).toBe(true);
    latency.record();
    expect(latency.prepare(change('company', '1970-01-01T00:00:01.000000Z', true))).toBe(false); // initial
    const counts = await countsOf(registry, 'livebus_delivery_seconds');
    expect([counts['source="company"'], counts['source="publish"']]).toEqual([1, 0]);
    const summary = latency.summary('start');
    expect([summary.company.count, summary.listeners.count, summary.publish.count]).toEqual([1, 1, 0]);
    // 500 ms from the update time (the 250-500 ms bucket), not 5 ms from the append
    const text = await registry.metrics();
    expect(text).toContain('livebus_delivery_seconds_bucket{source="company",le="0.25"} 0');
    expect(text).toContain('livebus_delivery_seconds_bucket{source="company",le="0.5"} 1');
  });

  it('clamps an origin ahead of the clock to 0 and counts it as skew, never a negative latency', async () => {
    const latency = new DeliveryLatency(() => 1_000);
    const registry = new Registry();
    latency.register(registry);
    latency.prepare(change('firestore', '1970-01-01T00:00:05.000000Z')); // 4 s in the future
    latency.record();
    latency.prepare(frame(1_000, 'session.notice', { level: 'info', message: 'x' })); // same ms: no skew
    latency.record();
    expect(latency.skew()).toEqual({ firestore: 1, workflow: 0, publish: 0, task: 0, company: 0 });
    const text = await registry.metrics();
    expect(text).toContain('livebus_delivery_seconds_bucket{source="firestore",le="0.001"} 1');
    expect(text).toContain('livebus_delivery_seconds_sum{source="firestore"} 0');
    expect(text).toContain('livebus_delivery_clock_skew_total{source="firestore"} 1');
  });

  it('reads update times right when consecutive changes share a minute and when they do not', async () => {
    let clock = 0;
    const latency = new DeliveryLatency(() => clock);
    const registry = new Registry();
    latency.register(registry);
    // Each change recorded 40 ms after its update time: all in the (25 ms, 50 ms] bucket.
    for (const t of ['2026-12-02T16:00:00.100000Z', '2026-12-02T16:00:59.990000Z', '2026-12-02T16:01:00.000250Z']) {
      clock = Date.parse(t) + 40;
      latency.prepare(change('firestore', t));
      latency.record();
    }
    const text = await registry.metrics();
    expect(text).toContain('livebus_delivery_seconds_bucket{source="firestore",le="0.025"} 0');
    expect(text).toContain('livebus_delivery_seconds_bucket{source="firestore",le="0.05"} 3');
  });

  it('moves a Redis ts onto this clock by the measured offset', () => {
    const latency = new DeliveryLatency(() => 10_000);
    latency.setClockOffset(5_000); // Redis is 5 s ahead
    latency.prepare(frame(15_000, 'session.notice', { level: 'info', message: 'x' }));
    latency.record();
    expect(latency.skew().publish).toBe(0);
    expect(latency.summary('start').publish.count).toBe(1);
  });

  it('reports the last minute from the counts kept at each tick', () => {
    const latency = new DeliveryLatency();
    for (let i = 0; i < 10; i++) latency.observe('publish', 5);
    latency.tick();
    for (let i = 0; i < 3; i++) latency.observe('task', 5);
    expect(latency.summary('window').all.count).toBe(3);
    expect(latency.summary('start').all.count).toBe(13);
    for (let i = 0; i < 7; i++) latency.tick(); // the first tick has left the window
    expect(latency.summary('window').all.count).toBe(0);
  });
});

describe('quantileOf', () => {
  it('reads a quantile from bucket counts, within the bucket it falls in', () => {
    // 100 values: 98 in (75, 100], 2 in (100, 150]
    const buckets = new Array(17).fill(0);
    buckets[7] = 98;
    buckets[8] = 2;
    const p99 = quantileOf(buckets, 0.99) as number;
    expect(p99 > 100 && p99 <= 150).toBe(true);
    const p50 = quantileOf(buckets, 0.5) as number;
    expect(p50 > 75 && p50 <= 100).toBe(true);
    expect(quantileOf(new Array(17).fill(0), 0.5)).toBeNull();
  });
});

describe('rfc3339Ms', () => {
  it('reads the update times the listeners write, and nothing else', () => {
    const text = 'x2025-11-22T08:26:40.100250Zy';
    expect(rfc3339Ms(text, 1, text.length - 1)).toBe(Date.parse('2025-11-22T08:26:40.100Z') + 0.25);
    expect(rfc3339Ms('2025-11-22T08:26:40Z', 0, 20)).toBe(Date.parse('2025-11-22T08:26:40Z'));
    expect(rfc3339Ms('2025-11-22T08:26:40.1x0Z', 0, 24)).toBeNaN();
    expect(rfc3339Ms('not a time at all', 0, 17)).toBeNaN();
  });
});

describe('SnapshotDelay', () => {
  it('counts one read-time delay per snapshot and one update-time delay per change, for listener sources only', async () => {
    const delay = new SnapshotDelay();
    const registry = new Registry();
    delay.register(registry);
    delay.observe('firestore', 900, [800, 850], 1_000);
    delay.observe('workflow', 900, [880], 1_000);
    delay.observe('publish', 900, [880], 1_000); // not a listener: ignored
    expect(await countsOf(registry, 'livebus_firestore_snapshot_delay_seconds')).toEqual({
      'since="update_time",source="firestore"': 2,
      'since="update_time",source="workflow"': 1,
      'since="read_time",source="firestore"': 1,
      'since="read_time",source="workflow"': 1,
    });
  });
});
