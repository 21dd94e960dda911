import { createLogger } from '../logger';
import { runShutdown, type ShutdownSteps } from './shutdown';

const logger = createLogger({ level: 'error', format: 'json', instanceId: 'gw-a' });

/** Steps that record their order; connections close their handshake when told to. */
function fakeSteps(overrides: Partial<ShutdownSteps> = {}) {
  const order: string[] = [];
  let open = 2;
  const step = (name: string) => async () => {
    order.push(name);
  };
  const steps: ShutdownSteps = {
    stopTimers: () => order.push('stopTimers'),
    stopAccepting: step('stopAccepting'),
    connections: {
      get count() {
        return open;
      },
      closeAll: (spreadMs) => {
        order.push(`closeAll(${spreadMs})`);
        setTimeout(() => {
          open = 0;
        }, 1);
      },
      terminateAll: () => order.push('terminateAll'),
      settled: step('settled'),
    },
    flushListeners: step('flushListeners'),
    dropIdleHttp: () => order.push('dropIdleHttp'),
    dropAllHttp: () => order.push('dropAllHttp'),
    closeTasks: step('closeTasks'),
    retire: step('retire'),
    closePorts: step('closePorts'),
    onClose: step('onClose'),
    stopHealth: step('stopHealth'),
    ...overrides,
  };
  return { steps, order };
}

/** The steps after the sessions and the listeners, in order. */
const LAST_STEPS = ['dropIdleHttp', 'dropAllHttp', 'closeTasks', 'retire', 'closePorts', 'onClose', 'stopHealth'];

describe('runShutdown', () => {
  it('tells clients first, flushes detaches, then closes the ports and what the composition root opened', async () => {
    const { steps, order } = fakeSteps();
    await runShutdown(steps, { reason: 'test', graceMs: 2_000, logger, pollMs: 1 });
    expect(order).toEqual([
      'stopTimers',
      'stopAccepting',
      'closeAll(1000)',
      'terminateAll',
      'settled',
      'flushListeners',
      ...LAST_STEPS,
    ]);
  });

  it('lets HTTP requests in flight finish, dropping their connections as they go idle, before cutting what is left', async () => {
    // The listening socket closes once its last connection has gone: here the one whose request is
    // answered after the first drop of idle connections, and dropped by a later one.
    let drops = 0;
    let gone: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      gone = resolve;
    });
    const { steps, order } = fakeSteps({
      stopAccepting: () => closed.then(() => order.push('server closed')).then(() => {}),
      dropIdleHttp: () => {
        drops++;
        if (drops === 1) order.push('dropIdleHttp');
        if (drops === 2) order.push('request answered');
        if (drops === 3) {
          order.push('idle connection dropped');
          gone();
        }
      },
    });
    await runShutdown(steps, { reason: 'test', graceMs: 60_000, logger, pollMs: 1 });
    expect(order.slice(order.indexOf('dropIdleHttp'), order.indexOf('closeTasks'))).toEqual([
      'dropIdleHttp',
      'request answered',
      'idle connection dropped',
      'server closed',
      'dropAllHttp',
    ]);
  });

  it('cuts HTTP requests that outlast their share of the grace, leaving the last steps theirs', async () => {
    const { steps, order } = fakeSteps({ stopAccepting: () => new Promise<void>(() => {}) });
    await runShutdown(steps, { reason: 'test', graceMs: 40, logger, pollMs: 1 });
    // Idle connections dropped over and over meanwhile; then the rest cut.
    expect(order.slice(order.lastIndexOf('dropIdleHttp'))).toEqual(LAST_STEPS);
  });

  it('spreads reconnects over at least 500 ms and at most 5 s', async () => {
    const short = fakeSteps();
    await runShutdown(short.steps, { reason: 'test', graceMs: 100, logger, pollMs: 1 });
    const long = fakeSteps();
    await runShutdown(long.steps, { reason: 'test', graceMs: 60_000, logger, pollMs: 1 });
    expect(short.order).toContain('closeAll(500)');
    expect(long.order).toContain('closeAll(5000)');
  });

  it('goes on past a step that hangs and past steps that fail', async () => {
    const { steps, order } = fakeSteps({
      flushListeners: () => new Promise<void>(() => {}),
      closeTasks: () => new Promise<void>(() => {}),
      retire: async () => {
        throw new Error('redis away');
      },
      closePorts: async () => {
        throw new Error('redis away');
      },
    });
    await runShutdown(steps, { reason: 'test', graceMs: 50, logger, pollMs: 1 });
    expect(order.slice(-4)).toEqual(['dropIdleHttp', 'dropAllHttp', 'onClose', 'stopHealth']);
  });

  it('settles within the grace when Redis answers nothing: retiring the instance and closing the ports never settle', async () => {
    const { steps, order } = fakeSteps({
      retire: () => new Promise<void>(() => {}),
      closePorts: () => new Promise<void>(() => {}),
      // What the composition root closes takes a moment (a QUIT answered): still waited for.
      onClose: async () => {
        await new Promise((r) => setTimeout(r, 20));
        order.push('onClose done');
      },
    });
    // On fake timers: the deadlines and onClose's moment fire in the order of their times, however
    // late a busy machine runs them (on real timers onClose had ~30 ms of slack before its share ran out).
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const graceMs = 200;
      const startedAt = Date.now();
      let done = false;
      const shutdown = runShutdown(steps, { reason: 'test', graceMs, logger, pollMs: 1 }).then(() => {
        done = true;
      });
      while (!done && Date.now() - startedAt <= graceMs) await jest.advanceTimersByTimeAsync(1);
      expect(done).toBe(true);
      await shutdown;
      expect(order.slice(-2)).toEqual(['onClose done', 'stopHealth']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('terminates connections whose close handshake does not come', async () => {
    const { steps, order } = fakeSteps();
    const stuck = { ...steps.connections, count: 1, closeAll: () => order.push('closeAll') };
    await runShutdown({ ...steps, connections: stuck }, { reason: 'test', graceMs: 40, logger, pollMs: 1 });
    expect(order.indexOf('terminateAll')).toBeGreaterThan(order.indexOf('closeAll'));
  });
});
