import type { EventFrame } from '@livebus/protocol';
import { groupedListener } from './grouped-handlers';

const notice = (n: number, key = 'k'): EventFrame => ({
  type: 'event',
  event: 'session.notice',
  data: { level: 'info', message: `${key}:${n}` },
  cursor: `e:${n}`,
  ts: 0,
});
const keyOf = (frame: EventFrame) => String((frame.data as { message: string }).message.split(':')[0]);
const messages = (batch: EventFrame[]) => batch.map((e) => (e.data as { message: string }).message);

describe('groupedListener', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  it('fixed (default): the window starts with the first event of a key and does not move', () => {
    const batches: string[][] = [];
    const g = groupedListener(
      (b) => batches.push(messages(b)),
      { groupWindowMs: 100, groupBy: keyOf },
      (fn) => fn(),
    );
    g.listener(notice(1));
    jest.advanceTimersByTime(60);
    g.listener(notice(2));
    jest.advanceTimersByTime(40);
    expect(batches).toEqual([['k:1', 'k:2']]);
  });

  it('debounce: every event of the key restarts the window; groupMaxWaitMs caps it', () => {
    const batches: string[][] = [];
    const g = groupedListener(
      (b) => batches.push(messages(b)),
      { groupWindowMs: 100, groupMode: 'debounce', groupMaxWaitMs: 250, groupBy: keyOf },
      (fn) => fn(),
    );
    g.listener(notice(1));
    jest.advanceTimersByTime(60);
    g.listener(notice(2));
    jest.advanceTimersByTime(60);
    expect(batches).toEqual([]); // 120 ms after the first event, 60 after the last: still collecting
    g.listener(notice(3));
    jest.advanceTimersByTime(99);
    expect(batches).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(batches).toEqual([['k:1', 'k:2', 'k:3']]);

    // A key that never goes quiet still goes out at groupMaxWaitMs after its first event.
    for (let n = 10; n < 20; n++) {
      g.listener(notice(n));
      jest.advanceTimersByTime(50);
      if (batches.length > 1) break;
    }
    expect(batches[1]).toEqual(['k:10', 'k:11', 'k:12', 'k:13', 'k:14']); // events at 0..200 ms, out at 250
  });

  it('flushAll hands every held batch over at once and leaves no timer', () => {
    const batches: string[][] = [];
    const g = groupedListener(
      (b) => batches.push(messages(b)),
      { groupWindowMs: 13_000, groupBy: keyOf },
      (fn) => fn(),
    );
    g.listener(notice(1, 'a'));
    g.listener(notice(2, 'b'));
    g.listener(notice(3, 'a'));
    expect(jest.getTimerCount()).toBe(2);
    g.flushAll();
    expect(batches).toEqual([['a:1', 'a:3'], ['b:2']]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('refuses a window that is not positive, an unknown mode and a cap below the window', () => {
    const run = (fn: () => void) => fn();
    expect(() => groupedListener(() => {}, { groupWindowMs: 0 }, run)).toThrow(TypeError);
    expect(() => groupedListener(() => {}, { groupWindowMs: 10, groupMode: 'sliding' as 'fixed' }, run)).toThrow(
      /groupMode/,
    );
    expect(() => groupedListener(() => {}, { groupWindowMs: 10, groupMaxWaitMs: 5 }, run)).toThrow(/groupMaxWaitMs/);
  });
});
