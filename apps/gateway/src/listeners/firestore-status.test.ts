import { FIRESTORE_OUTAGE, firestoreRefused, firestoreStatus } from './firestore-status';
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
    expect(firestoreStatus({ failing: { deadline_exceeded: 1 } }, now)).toBe('down');
    expect(firestoreStatus({ failing: { unavailable: 0, emit: 2 } }, now)).toBe('ok');
  });

  it('is ok while a listener fails on a query Firestore refuses (one query, not an outage), which is counted as refused', () => {
    let now = 1_000_000;
    const stats = new ListenerStats(10, () => now);
    const look = () => [firestoreStatus(stats.snapshot(1), now), firestoreRefused(stats.snapshot(1))];
    // A missing index: the listener fails, and fails again at each retry.
    stats.error('failed_precondition');
    stats.failing(undefined, 'failed_precondition');
    expect(look()).toEqual(['ok', 1]);
    now += 500;
    stats.error('failed_precondition');
    expect(look()).toEqual(['ok', 1]);
    // Another user's listener refused by the rules, then an outage on top of both.
    stats.error('permission_denied');
    stats.failing(undefined, 'permission_denied');
    expect(look()).toEqual(['ok', 2]);
    stats.error('unavailable');
    stats.failing(undefined, 'unavailable');
    expect(look()).toEqual(['down', 2]);
    stats.failing('unavailable', undefined);
    now += 2_000;
    expect(look()).toEqual(['ok', 2]);
    // Redis refusing events is not Firestore's: neither down nor refused.
    stats.error('emit');
    stats.failing(undefined, 'emit');
    expect(look()).toEqual(['ok', 2]);
    stats.failing('failed_precondition', undefined);
    stats.failing('permission_denied', undefined);
    expect(look()).toEqual(['ok', 0]);
  });

  it("takes Firestore's outage kinds as down and every other kind of its own as refused", () => {
    for (const kind of ['unavailable', 'deadline_exceeded', 'resource_exhausted', 'internal', 'unknown', 'read']) {
      expect([kind, FIRESTORE_OUTAGE.has(kind), firestoreStatus({ failing: { [kind]: 1 } })]).toEqual([
        kind,
        true,
        'down',
      ]);
      expect([kind, firestoreRefused({ failing: { [kind]: 1 } })]).toEqual([kind, 0]);
    }
    const refused = [
      'failed_precondition',
      'permission_denied',
      'invalid_argument',
      'unauthenticated',
      'not_found',
      'other',
    ];
    for (const kind of refused) {
      expect([kind, firestoreStatus({ failing: { [kind]: 1 } }), firestoreRefused({ failing: { [kind]: 2 } })]).toEqual(
        [kind, 'ok', 2],
      );
    }
    expect(firestoreRefused(undefined)).toBe(0);
    expect(firestoreRefused({ failing: { failed_precondition: 0, emit: 3, mark: 1, unavailable: 4 } })).toBe(0);
  });

  it('is ok with no listener figures (no source keeps them) and down only within the window', () => {
    expect(firestoreStatus(undefined)).toBe('ok');
    expect(firestoreStatus({}, 5_000)).toBe('ok');
    expect(firestoreStatus({ lastErrorAt: 5_000 }, 5_000 + 1_999, 2_000)).toBe('down');
    expect(firestoreStatus({ lastErrorAt: 5_000 }, 5_000 + 2_000, 2_000)).toBe('ok');
  });
});
