import { HandshakeSlices } from './handshake-slices';

/** One turn of the event loop: the slice scheduled with setImmediate runs, then its microtasks. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('HandshakeSlices', () => {
  function slices(options: { budgetMs?: number; acceptsFirstMaxMs?: number; acceptsFirstRepayRate?: number } = {}) {
    const clock = { now: 0 };
    const errors: unknown[] = [];
    const s = new HandshakeSlices({ ...options, now: () => clock.now, onError: (e) => errors.push(e) });
    return { s, clock, errors };
  }

  it('runs work and resumes hellos in the order they were queued', async () => {
    const { s } = slices();
    const order: string[] = [];
    s.run(() => order.push('upgrade 1'));
    const resumed = s.next().then(() => order.push('hello resumed'));
    s.run(() => order.push('upgrade 2'));
    await turn();
    await resumed;
    expect(order).toEqual(['upgrade 1', 'hello resumed', 'upgrade 2']);
    expect(s.size).toBe(0);
  });

  it('runs each resumed hello before the next item, and counts its time against the slice', async () => {
    const { s, clock } = slices({ budgetMs: 1 });
    const order: string[] = [];
    // Each hello's continuation takes 0.25 ms.
    for (let i = 0; i < 10; i++) {
      void s.next().then(() => {
        order.push(`hello ${i}`);
        clock.now += 0.25;
      });
    }
    s.run(() => order.push('upgrade'));
    await turn();
    expect(order).toEqual(['hello 0', 'hello 1', 'hello 2', 'hello 3']);
    await turn();
    await turn();
    await turn();
    expect(order.at(-1)).toBe('upgrade');
    expect(s.size).toBe(0);
  });

  /** Turns of a storm: each accepts a connection (unless `accepts` says no) and reads for 10 ms. */
  async function storm(s: HandshakeSlices, clock: { now: number }, turns: number, accepts = (_turn: number) => true) {
    let pattern = '';
    for (let i = 0; i < turns; i++) {
      const before = s.size;
      if (accepts(i)) s.accepted();
      await turn();
      pattern += s.size < before ? 'w' : '.';
      clock.now += 10;
    }
    return pattern;
  }

  it('gives turns away while connections are accepted, for 100 ms at most, then works half as long', async () => {
    const { s, clock } = slices({ budgetMs: 5, acceptsFirstMaxMs: 100 });
    // Each upgrade takes a whole slice (5 ms).
    for (let i = 0; i < 30; i++) s.run(() => (clock.now += 5));
    // 10 turns given away (100 ms), then every turn works (15 ms each, repaying 30) until the
    // window is repaid (4 turns), then turns are given away again.
    expect(await storm(s, clock, 25)).toBe(`${'.'.repeat(10)}${'w'.repeat(4)}${'.'.repeat(10)}w`);
  });

  it('works as long as the window with a repay rate of 1', async () => {
    const { s, clock } = slices({ budgetMs: 5, acceptsFirstMaxMs: 100, acceptsFirstRepayRate: 1 });
    for (let i = 0; i < 30; i++) s.run(() => (clock.now += 5));
    // 10 turns given away (100 ms), then 7 working turns of 15 ms.
    expect(await storm(s, clock, 28)).toBe(`${'.'.repeat(10)}${'w'.repeat(7)}${'.'.repeat(10)}w`);
  });

  it('owes one window at most, however long a turn given away took', async () => {
    const { s, clock } = slices({ budgetMs: 5, acceptsFirstMaxMs: 100 });
    for (let i = 0; i < 30; i++) s.run(() => (clock.now += 5));
    s.accepted();
    await turn(); // given away
    clock.now += 300; // a turn of 300 ms (a big poll, a collection)
    // 100 ms owed, not 300: 4 working turns of 15 ms repay it, then turns are given away again.
    expect(await storm(s, clock, 6)).toBe('wwww..');
  });

  it('does not start over after a turn without an accept', async () => {
    const { s, clock } = slices({ budgetMs: 5, acceptsFirstMaxMs: 100 });
    for (let i = 0; i < 30; i++) s.run(() => (clock.now += 5));
    // 50 ms given away, one turn without an accept works (15 ms, repaying 30), then turns are
    // given away until 100 ms are owed (80 ms more), not for another 100 ms.
    expect(await storm(s, clock, 15, (turn) => turn !== 5)).toBe('.....w........w');
  });

  it('works at the first turn without an accept', async () => {
    const { s, clock } = slices();
    const ran: number[] = [];
    s.run(() => ran.push(clock.now));
    s.accepted();
    await turn(); // this turn accepted: given away
    clock.now += 1;
    expect(ran).toEqual([]);
    await turn(); // nothing accepted since: the slice runs
    expect(ran).toEqual([1]);
  });

  it('reports an error of queued work and runs the rest', async () => {
    const { s, errors } = slices();
    const ran: string[] = [];
    s.run(() => {
      throw new Error('boom');
    });
    s.run(() => ran.push('after'));
    await turn();
    expect(errors.map(String)).toEqual(['Error: boom']);
    expect(ran).toEqual(['after']);
  });
});
