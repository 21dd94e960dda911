import { type GatewayHookEvents, Hooks } from '../hooks';
import { countHooks, createMetrics, type GaugeSources } from './prometheus';

/** Metrics whose gauges all read 0 (but for `sources`): the counters are what these tests look at. */
function idleMetrics(sources: Partial<GaugeSources> = {}) {
  const zero = () => 0;
  return createMetrics({
    connections: zero,
    sessions: zero,
    users: zero,
    listeners: zero,
    workflowListeners: zero,
    pendingDetaches: zero,
    bus: () => ({ retainedBytes: 0 }),
    eventsDelivered: zero,
    ...sources,
  });
}

describe('countHooks', () => {
  it('counts detach outcomes from the hooks: every cancellation (here, late, elsewhere) and every executed detach', async () => {
    const metrics = idleMetrics();
    const hooks = new Hooks<GatewayHookEvents>();
    const off = countHooks(hooks, metrics);
    hooks.emit('detach.cancelled', { uid: 'u', sessionId: 's' });
    hooks.emit('detach.cancelled', { uid: 'u', late: true });
    hooks.emit('detach.cancelled', { uid: 'u', elsewhere: true });
    hooks.emit('detach.executing', { uid: 'u', listeners: 0 });
    hooks.emit('detach.complete', { uid: 'u' }); // the same detach: not counted again
    off();
    hooks.emit('detach.executing', { uid: 'u', listeners: 0 });
    const counted = Object.fromEntries(
      (await metrics.detaches.get()).values.map((v) => [String(v.labels.outcome), v.value]),
    );
    expect(counted).toEqual({ cancelled: 3, executed: 1 });
  });

  it('counts each closed connection once under its classified reason', async () => {
    const metrics = idleMetrics();
    const hooks = new Hooks<GatewayHookEvents>();
    countHooks(hooks, metrics);
    hooks.emit('session.close', { code: 4002, reason: 'auth timeout', type: 'auth_timeout', authenticated: false });
    hooks.emit('session.close', {
      uid: 'u',
      sessionId: 's',
      code: 1006,
      reason: '',
      type: 'ping_timeout',
      authenticated: true,
    });
    hooks.emit('session.close', {
      uid: 'u',
      sessionId: 't',
      code: 1006,
      reason: '',
      type: 'ping_timeout',
      authenticated: true,
    });
    const counted = Object.fromEntries(
      (await metrics.disconnects.get()).values.map((v) => [String(v.labels.reason), v.value]),
    );
    expect(counted).toEqual({ auth_timeout: 1, ping_timeout: 2 });
  });

  it('counts each reconnect under its outcome', async () => {
    const metrics = idleMetrics();
    const hooks = new Hooks<GatewayHookEvents>();
    countHooks(hooks, metrics);
    for (const gap of [false, true, false, false]) {
      hooks.emit('session.replay', { uid: 'u', sessionId: 's', events: 1, gap });
    }
    const counted = Object.fromEntries(
      (await metrics.reconnects.get()).values.map((v) => [String(v.labels.outcome), v.value]),
    );
    expect(counted).toEqual({ resumed: 3, gap: 1 });
  });
});

describe('livebus_bus_catch_ups_total', () => {
  it('counts what the bus counted since the last scrape, by reason', async () => {
    const catchUps = { subscription: 2, hole: 0 };
    const metrics = idleMetrics({ bus: () => ({ retainedBytes: 0, catchUps }) });
    const scrape = async () => {
      const metric = await metrics.registry.getSingleMetric('livebus_bus_catch_ups_total')?.get();
      return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.reason), v.value]));
    };
    expect(await scrape()).toEqual({ subscription: 2 });
    catchUps.subscription = 5;
    catchUps.hole = 3;
    expect(await scrape()).toEqual({ subscription: 5, hole: 3 });
  });
});

describe('livebus_bus_catch_up_failures_total and livebus_bus_catch_ups_stalled', () => {
  it('count the failed catch-up tries and show the users stalled now; 0 for a bus without catch-ups', async () => {
    const stats = { retainedBytes: 0, catchUpFailures: 4, catchUpsStalled: 1 };
    const metrics = idleMetrics({ bus: () => stats });
    const scrape = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value;
    expect(await scrape('livebus_bus_catch_up_failures_total')).toBe(4);
    expect(await scrape('livebus_bus_catch_ups_stalled')).toBe(1);
    stats.catchUpFailures = 9;
    stats.catchUpsStalled = 0;
    expect(await scrape('livebus_bus_catch_up_failures_total')).toBe(9);
    expect(await scrape('livebus_bus_catch_ups_stalled')).toBe(0);
    const memory = idleMetrics({ bus: () => ({ retainedBytes: 0 }) });
    const value = async (name: string) => (await memory.registry.getSingleMetric(name)?.get())?.values[0]?.value;
    expect(await value('livebus_bus_catch_up_failures_total')).toBe(0);
    expect(await value('livebus_bus_catch_ups_stalled')).toBe(0);
  });
});

describe('livebus_bus_listener_errors_total', () => {
  it('counts every listener that threw, also those the log line only counted; 0 for a bus that keeps no count', async () => {
    const stats = { retainedBytes: 0, listenerErrors: 3 };
    const metrics = idleMetrics({ bus: () => stats });
    const scrape = async (m = metrics) =>
      (await m.registry.getSingleMetric('livebus_bus_listener_errors_total')?.get())?.values[0]?.value;
    expect(await scrape()).toBe(3);
    stats.listenerErrors = 40;
    expect(await scrape()).toBe(40);
    expect(await scrape(idleMetrics({ bus: () => ({ retainedBytes: 0 }) }))).toBe(0);
  });
});

describe('livebus_bus_held_dropped_total', () => {
  it('counts the held events the bus let go, and is 0 for a bus that holds none', async () => {
    const stats: { retainedBytes: number; heldDropped?: number } = { retainedBytes: 0, heldDropped: 1_000 };
    const metrics = idleMetrics({ bus: () => stats });
    const scrape = async () =>
      (await metrics.registry.getSingleMetric('livebus_bus_held_dropped_total')?.get())?.values[0]?.value;
    expect(await scrape()).toBe(1_000);
    stats.heldDropped = 3_000;
    expect(await scrape()).toBe(3_000);
    expect(
      await (
        await idleMetrics({ bus: () => ({ retainedBytes: 0 }) })
          .registry.getSingleMetric('livebus_bus_held_dropped_total')
          ?.get()
      )?.values[0]?.value,
    ).toBe(0);
  });
});
