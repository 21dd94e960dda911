import type { AppEvent } from '@livebus/protocol';
import type { StoredEvent } from './event-bus';
import { MemoryEventBus } from './memory-event-bus';

const note = (n: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(n) } });

describe('MemoryEventBus', () => {
  it('stamps consecutive cursors per user and delivers to live subscribers in order', async () => {
    const bus = new MemoryEventBus();
    const seen: StoredEvent[] = [];
    const off = bus.subscribe('u', (e) => seen.push(e));
    const a = await bus.publish('u', note(1));
    const b = await bus.publish('u', note(2));
    await bus.publish('other', note(3));
    expect(b.cursor).toBe(a.cursor + 1);
    expect(seen.map((e) => e.cursor)).toEqual([a.cursor, b.cursor]);
    expect(seen[0]).toMatchObject({ type: 'event', event: 'session.notice', data: { message: '1' } });
    off();
  });

  it('replays after a cursor, says resumed at the head, and gap outside what is retained', async () => {
    const bus = new MemoryEventBus({ retentionEvents: 3 });
    const off = bus.subscribe('u', () => {});
    const cursors: number[] = [];
    for (let i = 1; i <= 5; i++) cursors.push((await bus.publish('u', note(i))).cursor);
    const [, , c3, c4, c5] = cursors as [number, number, number, number, number];
    expect(await bus.readSince('u', c5)).toEqual({ status: 'resumed', events: [], cursor: c5 });
    const fromC3 = await bus.readSince('u', c3);
    expect(fromC3.status).toBe('resumed');
    expect(fromC3.events.map((e) => e.cursor)).toEqual([c4, c5]);
    // c3 is the oldest retained; everything after c3 - 1 is still there.
    expect((await bus.readSince('u', c3 - 1)).events.map((e) => e.cursor)).toEqual([c3, c4, c5]);
    expect(await bus.readSince('u', c3 - 2)).toEqual({ status: 'gap', events: [], cursor: c5 });
    expect((await bus.readSince('u', c5 + 1)).status).toBe('gap'); // a cursor from elsewhere
    off();
  });

  it('drops events older than the retention age', async () => {
    let now = 1_000_000;
    const bus = new MemoryEventBus({ retentionMs: 1_000, now: () => now });
    const off = bus.subscribe('u', () => {});
    const first = await bus.publish('u', note(1));
    now += 2_000;
    const second = await bus.publish('u', note(2));
    expect(await bus.readSince('u', first.cursor - 1)).toMatchObject({ status: 'gap' });
    expect(await bus.readSince('u', first.cursor)).toMatchObject({ status: 'resumed', events: [second] });
    off();
  });

  it('starts a recreated stream above every cursor of the one it replaces', async () => {
    let now = 1_000_000;
    const bus = new MemoryEventBus({ retentionEvents: 0, now: () => now });
    const old = await bus.publish('u', note(1)); // nothing retained, no subscriber: the stream is dropped
    expect(bus.streamCount).toBe(0);
    now += 1; // even one millisecond later
    const fresh = await bus.publish('u', note(2));
    expect(fresh.cursor).toBeGreaterThan(old.cursor);
    expect((await bus.readSince('u', old.cursor)).status).toBe('gap');
  });

  it('a restarted process (a new bus) answers gap to cursors of the old one', async () => {
    const before = new MemoryEventBus();
    const off = before.subscribe('u', () => {});
    const last = await before.publish('u', note(1));
    off();
    await new Promise((r) => setTimeout(r, 2));
    const after = new MemoryEventBus();
    for (let i = 0; i < 10; i++) await after.publish('u', note(i));
    expect((await after.readSince('u', last.cursor)).status).toBe('gap');
  });

  it('sweep applies the age limit and forgets streams that hold nothing', async () => {
    let now = 0;
    const bus = new MemoryEventBus({ retentionMs: 100, now: () => now });
    await bus.publish('a', note(1));
    await bus.publish('b', note(1));
    const off = bus.subscribe('c', () => {});
    expect(bus.streamCount).toBe(3);
    now = 1_000;
    bus.sweep();
    expect(bus.streamCount).toBe(1); // c stays: it has a subscriber
    off();
    expect(bus.streamCount).toBe(0);
  });
});
