import type { AppEvent } from '@livebus/protocol';
import { contractRetention, eventBusContract } from './event-bus.contract';
import { MemoryEventBus } from './memory-event-bus';

const note = (n: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(n) } });

let current: MemoryEventBus[] = [];
eventBusContract('in-memory', {
  make: async () => {
    const bus = new MemoryEventBus(contractRetention);
    current.push(bus);
    return bus;
  },
  // A restarted process: every stream is gone.
  reset: async () => {
    await Promise.all(current.map((b) => b.close()));
    current = [];
  },
});

describe('MemoryEventBus', () => {
  it('counts retained bytes across users and gives them back as events are trimmed', async () => {
    let now = 0;
    const bus = new MemoryEventBus({ retentionMs: 100, now: () => now });
    await bus.publish('a', note(1));
    await bus.publish('b', note(2));
    const size = bus.stats().retainedBytes;
    expect(size).toBeGreaterThan(100);
    expect(bus.stats().streams).toBe(2);
    now = 1_000;
    await bus.readSince('a', await bus.head('a'));
    expect(bus.stats().retainedBytes).toBeLessThan(size);
    await bus.close();
    expect(bus.stats()).toEqual({ retainedBytes: 0, streams: 0 });
  });

  it('forgets a stream that holds nothing once its last subscriber leaves', async () => {
    const bus = new MemoryEventBus({ retentionEvents: 0 });
    const off = await bus.subscribe('u', () => {});
    const before = await bus.publish('u', note(1));
    await off();
    expect(bus.stats().streams).toBe(0);
    const after = await bus.publish('u', note(2));
    expect((await bus.readSince('u', before.cursor)).status).toBe('gap');
    expect(after.cursor).not.toBe(before.cursor);
    await bus.close();
  });
});
