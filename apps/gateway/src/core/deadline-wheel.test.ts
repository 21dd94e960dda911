import { DeadlineWheel } from './deadline-wheel';

describe('DeadlineWheel', () => {
  it('fires each item once, in deadline order, never early, at most a slot late', () => {
    // Fake timers move Date.now() too; the wheel gets that clock injected.
    jest.useFakeTimers({ now: 1_000 });
    try {
      const fired: [string, number, number][] = [];
      const wheel = new DeadlineWheel<string>({
        resolutionMs: 20,
        now: () => Date.now(),
        onDue: (item, at) => fired.push([item, at, Date.now()]),
      });
      wheel.set('c', 1_090); // slot ends 1 100: 10 ms late
      wheel.set('a', 1_001); // slot ends 1 020: 19 ms late, the most a 20 ms slot allows
      wheel.set('b', 1_060); // on a slot end: on time
      expect(wheel.size).toBe(3);
      jest.advanceTimersByTime(18);
      expect(fired).toEqual([]);
      jest.advanceTimersByTime(2);
      expect(fired).toEqual([['a', 1_001, 1_020]]);
      jest.advanceTimersByTime(100);
      expect(fired).toEqual([
        ['a', 1_001, 1_020],
        ['b', 1_060, 1_060],
        ['c', 1_090, 1_100],
      ]);
      for (const [, at, when] of fired) {
        expect(when - at >= 0 && when - at < 20).toBe(true);
      }
      expect(wheel.size).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('moves and forgets deadlines; an emptied slot fires nothing', () => {
    jest.useFakeTimers({ now: 1_000 });
    try {
      const fired: string[] = [];
      const wheel = new DeadlineWheel<string>({
        resolutionMs: 10,
        now: () => Date.now(),
        onDue: (item) => fired.push(item),
      });
      wheel.set('moved', 1_020);
      wheel.set('gone', 1_020);
      wheel.set('moved', 1_060);
      expect(wheel.delete('gone')).toBe(true);
      expect(wheel.delete('gone')).toBe(false);
      jest.advanceTimersByTime(59);
      expect(fired).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(fired).toEqual(['moved']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('takes new deadlines set from onDue, and an earlier deadline re-arms the timer', () => {
    jest.useFakeTimers({ now: 1_000 });
    try {
      const fired: [string, number][] = [];
      const wheel: DeadlineWheel<string> = new DeadlineWheel<string>({
        resolutionMs: 10,
        now: () => Date.now(),
        onDue: (item) => {
          fired.push([item, Date.now()]);
          if (item === 'first') wheel.set('second', Date.now() + 20);
        },
      });
      wheel.set('late', 11_000);
      wheel.set('first', 1_020);
      jest.advanceTimersByTime(40);
      expect(fired).toEqual([
        ['first', 1_020],
        ['second', 1_040],
      ]);
      expect(wheel.size).toBe(1);
      wheel.clear();
      expect(wheel.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('fires many deadlines, moved and forgotten in any order, each once, by deadline, and none forgotten', () => {
    jest.useFakeTimers({ now: 0 });
    try {
      const fired: [number, number][] = [];
      const late: number[] = [];
      const wheel = new DeadlineWheel<number>({
        resolutionMs: 1,
        now: () => Date.now(),
        onDue: (item, at) => {
          fired.push([item, at]);
          late.push(Date.now() - at);
        },
      });
      // A fixed pseudo-random sequence (a 32-bit linear congruential generator, its high bits): the same run every time.
      let seed = 42;
      const next = (n: number) => {
        seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
        return (seed >>> 16) % n;
      };
      const expected = new Map<number, number>();
      for (let step = 0; step < 3_000; step++) {
        const item = next(500);
        if (next(4) === 0) {
          expect(wheel.delete(item)).toBe(expected.delete(item));
        } else {
          const at = 1 + next(10_000);
          wheel.set(item, at);
          expected.set(item, at);
        }
      }
      expect(wheel.size).toBe(expected.size);
      expect(expected.size).toBeGreaterThan(300);
      jest.advanceTimersByTime(10_001);
      expect(fired).toHaveLength(expected.size);
      expect(new Map(fired)).toEqual(expected);
      const ats = fired.map(([, at]) => at);
      expect(ats).toEqual([...ats].sort((a, b) => a - b));
      // Slots of 1 ms: each fired at its own deadline, not before, not after.
      expect(new Set(late)).toEqual(new Set([0]));
      expect(wheel.size).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('refuses a resolution that is not positive', () => {
    expect(() => new DeadlineWheel({ resolutionMs: 0, onDue() {} })).toThrow(TypeError);
  });
});
