import { SlicedQueue } from './sliced-queue';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SlicedQueue', () => {
  it('runs items in arrival order, a slice per turn of the event loop, each slice within its budget', async () => {
    let clock = 0;
    const ran: number[] = [];
    // Each item "takes" 2 ms on the injected clock; the budget is 5 ms: three items a slice.
    const queue = new SlicedQueue<number>(
      (n) => {
        ran.push(n);
        clock += 2;
        return undefined;
      },
      { budgetMs: 5, now: () => clock },
    );
    for (let i = 0; i < 7; i++) queue.push(i);
    expect(ran).toEqual([]);
    await turn();
    expect(ran).toEqual([0, 1, 2]);
    expect(queue.size).toBe(4);
    await turn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5]);
    await turn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(queue.size).toBe(0);
    // Empty again: the next item starts a new slice.
    queue.push(7);
    await turn();
    expect(ran.at(-1)).toBe(7);
  });

  it('keeps running after an item throws: the error is reported, the items after it still run', async () => {
    const ran: number[] = [];
    const errors: Array<[string, number]> = [];
    const queue = new SlicedQueue<number>(
      (n) => {
        if (n === 1) throw new Error('boom');
        ran.push(n);
        return undefined;
      },
      { budgetMs: 1_000, now: () => 0, onError: (error, n) => errors.push([String(error), n]) },
    );
    for (let i = 0; i < 4; i++) queue.push(i);
    await turn();
    expect(ran).toEqual([0, 2, 3]);
    expect(errors).toEqual([['Error: boom', 1]]);
    expect(queue.size).toBe(0);
    queue.push(4); // a later push still gets a slice
    await turn();
    expect(ran).toEqual([0, 2, 3, 4]);
  });

  it('gives a whole turn away when giveWay says so', async () => {
    let giveAway = true;
    const ran: number[] = [];
    const queue = new SlicedQueue<number>((n) => void ran.push(n), { budgetMs: 5, giveWay: () => giveAway });
    queue.push(0);
    await turn();
    await turn();
    expect(ran).toEqual([]);
    giveAway = false;
    await turn();
    expect(ran).toEqual([0]);
  });

  it('lets the microtasks an item started run before the next item, their time counted against the slice', async () => {
    let clock = 0;
    const ran: string[] = [];
    // Each item resolves a promise whose continuation takes 2 ms.
    const queue = new SlicedQueue<number>(
      (n) => {
        ran.push(`item ${n}`);
        void Promise.resolve().then(() => {
          ran.push(`continuation ${n}`);
          clock += 2;
        });
        return true;
      },
      { budgetMs: 4, now: () => clock },
    );
    for (let i = 0; i < 3; i++) queue.push(i);
    await turn();
    expect(ran).toEqual(['item 0', 'continuation 0', 'item 1', 'continuation 1']);
    await turn();
    expect(ran.slice(4)).toEqual(['item 2', 'continuation 2']);
  });
});
