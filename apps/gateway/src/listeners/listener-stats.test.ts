import { firestoreStatus } from './firestore-status';
import { ListenerStats } from './listener-stats';

describe('ListenerStats: what makes Firestore down', () => {
  it("counts every failure, but only Firestore's own make its status down", () => {
    const stats = new ListenerStats(10, () => 1_000);
    for (const kind of ['too_large', 'emit', 'mark', 'replay']) stats.error(kind);
    expect(stats.snapshot(0).errors).toEqual({ too_large: 1, emit: 1, mark: 1, replay: 1 });
    expect(firestoreStatus(stats.snapshot(0), 1_000)).toBe('ok');
    stats.error('unavailable');
    expect(firestoreStatus(stats.snapshot(0), 1_000)).toBe('down');
  });
});
