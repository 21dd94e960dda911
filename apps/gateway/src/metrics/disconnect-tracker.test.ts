import { DisconnectTracker } from './disconnect-tracker';

describe('DisconnectTracker', () => {
  it('counts disconnects per user and reason, and ranks the top users', () => {
    let now = 1_000_000;
    const t = new DisconnectTracker({ maxUsers: 10, now: () => now });
    t.record('a', 'abnormal_closure');
    t.record('a', 'ping_timeout');
    t.record('b', 'normal_closure');
    now += 1_000;
    t.record('a', 'abnormal_closure');
    const s = t.snapshot();
    expect(s.total_users_tracked).toBe(2);
    expect(s.top_disconnects).toEqual([
      ['a', 3],
      ['b', 1],
    ]);
    expect(s.all_reasons).toEqual({ a: { abnormal_closure: 2, ping_timeout: 1 }, b: { normal_closure: 1 } });
    expect(s.last_disconnect.a).toBe(new Date(1_001_000).toISOString());
    expect(s.reasons_total).toEqual({ abnormal_closure: 2, ping_timeout: 1, normal_closure: 1 });
  });

  it('is bounded: the least recently seen user is evicted first', () => {
    const t = new DisconnectTracker({ maxUsers: 3 });
    for (const uid of ['a', 'b', 'c']) t.record(uid, 'normal_closure');
    t.record('a', 'normal_closure'); // a is now the most recently seen
    t.record('d', 'normal_closure'); // evicts b
    expect(Object.keys(t.snapshot().all_reasons).sort()).toEqual(['a', 'c', 'd']);
    for (let i = 0; i < 1_000; i++) t.record(`u${i}`, 'going_away');
    expect(t.snapshot().total_users_tracked).toBe(3);
  });

  it('expires entries older than maxAgeMs', () => {
    let now = 0;
    const t = new DisconnectTracker({ maxUsers: 100, maxAgeMs: 1_000, now: () => now });
    t.record('old', 'normal_closure');
    now = 600;
    t.record('new', 'normal_closure');
    now = 1_200;
    expect(Object.keys(t.snapshot().all_reasons)).toEqual(['new']);
  });

  it('lists users with many disconnects within the window as frequent', () => {
    let now = 0;
    const t = new DisconnectTracker({ maxUsers: 100, frequentWindowMs: 10_000, frequentThreshold: 3, now: () => now });
    for (let i = 0; i < 4; i++) {
      t.record('flappy', 'abnormal_closure');
      now += 1_000;
    }
    t.record('calm', 'normal_closure');
    expect(t.snapshot().frequent_disconnects).toEqual([{ uid: 'flappy', count: 4 }]);
    now += 20_000; // the window moved on
    expect(t.snapshot().frequent_disconnects).toEqual([]);
  });

  it('keeps disconnects by reason in 10-second buckets over the last 10 minutes', () => {
    let now = 1_000_000;
    const t = new DisconnectTracker({ maxUsers: 100, now: () => now });
    t.record('a', 'abnormal_closure');
    t.record('b', 'going_away');
    now += 10_000;
    t.record('a', 'abnormal_closure');
    expect(t.history()).toEqual([
      { start: 1_000_000, reasons: { abnormal_closure: 1, going_away: 1 } },
      { start: 1_010_000, reasons: { abnormal_closure: 1 } },
    ]);
    now += 600_000; // both buckets are now older than the window
    expect(t.history()).toEqual([]);
  });
});
