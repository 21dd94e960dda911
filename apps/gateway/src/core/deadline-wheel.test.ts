import { DeadlineWheel } from './deadline-wheel';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineWheel', () => {
  it('fires each item once, in deadline order, never early, at most a slot late', async () => {
    const fired: [string, number, number][] = [];
    const wheel = new DeadlineWheel<string>({
      resolutionMs: 20,
      onDue: (item, at) => fired.push([item, at, Date.now()]),
    });
    const t0 = Date.now();
    wheel.set('c', t0 + 90);
    wheel.set('a', t0 + 10);
    wheel.set('b', t0 + 50);
    expect(wheel.size).toBe(3);
    await sleep(200);
    expect(fired.map(([item]) => item)).toEqual(['a', 'b', 'c']);
    for (const [, at, when] of fired) {
      expect(when).toBeGreaterThanOrEqual(at);
    }
    expect(wheel.size).toBe(0);
  });

  it('moves and forgets deadlines; an emptied slot fires nothing', async () => {
    const fired: string[] = [];
    const wheel = new DeadlineWheel<string>({ resolutionMs: 10, onDue: (item) => fired.push(item) });
    const t0 = Date.now();
    wheel.set('moved', t0 + 20);
    wheel.set('gone', t0 + 20);
    wheel.set('moved', t0 + 60);
    expect(wheel.delete('gone')).toBe(true);
    expect(wheel.delete('gone')).toBe(false);
    await sleep(40);
    expect(fired).toEqual([]);
    await sleep(80);
    expect(fired).toEqual(['moved']);
  });

  it('takes new deadlines set from onDue, and an earlier deadline re-arms the timer', async () => {
    const fired: string[] = [];
    const wheel: DeadlineWheel<string> = new DeadlineWheel<string>({
      resolutionMs: 10,
      onDue: (item) => {
        fired.push(item);
        if (item === 'first') wheel.set('second', Date.now() + 20);
      },
    });
    const t0 = Date.now();
    wheel.set('late', t0 + 10_000);
    wheel.set('first', t0 + 20);
    await sleep(120);
    expect(fired).toEqual(['first', 'second']);
    expect(wheel.size).toBe(1);
    wheel.clear();
    expect(wheel.size).toBe(0);
  });

  it('refuses a resolution that is not positive', () => {
    expect(() => new DeadlineWheel({ resolutionMs: 0, onDue() {} })).toThrow(TypeError);
  });
});
