import { firestoreStatus } from './firestore-status';
import { ListenerStats } from './listener-stats';

describe('firestoreStatus', () => {
  it('is a pure read: two viewers polling at once see the same answer, and reading changes nothing', () => {
    let now = 1_000_000;
    const stats = new ListenerStats(10, () => now);
    const look = () => firestoreStatus(stats.snapshot(1), now);
    expect([look(), look()]).toEqual(['ok', 'ok']);

    stats.error('unavailable');
    now += 100;
    // The first viewer's look must not hide the failure from the second.
    expect([look(), look(), look()]).toEqual(['down', 'down', 'down']);
    now += 1_000;
    expect([look(), look()]).toEqual(['down', 'down']);

    now += 2_000; // past the window with no new failure
    expect([look(), look()]).toEqual(['ok', 'ok']);
    expect(stats.snapshot(1).errors).toEqual({ unavailable: 1 });
  });

  it("is down while a listener fails on Firestore's side, past the window, and ok once none does", () => {
    let now = 1_000_000;
    const stats = new ListenerStats(10, () => now);
    const look = () => firestoreStatus(stats.snapshot(1), now);
    stats.error('unavailable');
    stats.failing(undefined, 'unavailable');
    now += 60_000; // the Firestore client retries for about two minutes before the next failure
    expect(look()).toBe('down');
    stats.failing('unavailable', undefined);
    expect(look()).toBe('ok');
    // A listener whose events Redis refuses is failing, but not on Firestore's side.
    stats.error('emit');
    stats.failing(undefined, 'emit');
    expect(look()).toBe('ok');
    expect(stats.snapshot(1).failing).toEqual({ unavailable: 0, emit: 1 });
    expect(firestoreStatus({ failing: { failed_precondition: 1 } }, now)).toBe('down');
    expect(firestoreStatus({ failing: { unavailable: 0, emit: 2 } }, now)).toBe('ok');
  });

  it('is ok with no listener figures (no source keeps them) and down only within the window', () => {
    expect(firestoreStatus(undefined)).toBe('ok');
    expect(firestoreStatus({}, 5_000)).toBe('ok');
    expect(firestoreStatus({ lastErrorAt: 5_000 }, 5_000 + 1_999, 2_000)).toBe('down');
    expect(firestoreStatus({ lastErrorAt: 5_000 }, 5_000 + 2_000, 2_000)).toBe('ok');
  });
});
