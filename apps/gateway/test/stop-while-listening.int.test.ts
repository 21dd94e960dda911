import { join } from 'node:path';
import { instanceKeys } from '@livebus/publisher/redis';
import { askRedis, type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { holdSubscribe } from './subscribe-hold';
import { startCli } from './task-processes';

// `livebus-gateway` (dist/main.js) told to stop while its listen() runs: the stop waits for the
// listen, then drains (main.ts). Held deterministically, not timed: the gateway reaches Redis
// through a proxy that holds its instance channel's SUBSCRIBE, which listen() awaits after the
// main port listens and before the timers and listeners start (gateway.ts listenGateway), until
// the test releases it. A preloaded fixture (fixtures/signal-seen.cjs) prints a line when SIGTERM
// reaches the process's listeners: once read, the CLI's handler has run too.

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(() => redis.stop());

const INSTANCE = 'gw-stop-while-listening';

describe('a gateway told to stop (SIGTERM) while its listen() runs', () => {
  it('waits for the listen to finish, then drains, retires from the fleet and exits 0', async () => {
    const hold = await holdSubscribe(redis.port, instanceKeys.channel(INSTANCE), { holding: true });
    const cli = startCli([], {
      PORT: '0',
      REDIS_URL: `redis://127.0.0.1:${hold.port}`,
      INSTANCE_ID: INSTANCE,
      SHUTDOWN_GRACE_MS: '2000',
      NODE_OPTIONS: `--require ${join(__dirname, 'fixtures', 'signal-seen.cjs')}`,
    });
    let code: number | null;
    try {
      // In listen(): the main port listens, the instance channel's SUBSCRIBE waits in the proxy.
      await cli.waitUntil(() => hold.holding, "listen()'s SUBSCRIBE to the instance channel");
      expect(cli.lines.filter((l) => l.event === 'gateway_listening')).toEqual([]);
      cli.child.kill('SIGTERM');
      await cli.waitForLine((l) => l.livebus_test === 'signal', 'SIGTERM at the handlers');
      // The stop is asked; the listen is still held. Let it finish.
      hold.hold(false);
      code = await cli.exited;
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) await cli.stop('SIGKILL');
      await hold.close();
    }
    // Listened first (the whole start, timers included), then drained, from start to end.
    const moments: string[] = [
      'signal SIGTERM',
      'gateway_listening',
      'gateway_shutdown_start',
      'gateway_shutdown_complete',
    ];
    const order = cli.lines
      .map((l) => (l.livebus_test === 'signal' ? `signal ${String(l.signal)}` : String(l.event)))
      .filter((moment) => moments.includes(moment));
    expect(order).toEqual(moments);
    expect(cli.lines.find((l) => l.event === 'gateway_shutdown_start')).toMatchObject({ reason: 'SIGTERM' });
    expect(code).toBe(0);
    expect(cli.stderr()).toBe('');
    // Nothing of the start outlived the drain: listen() started the fleet heartbeat (its first beat
    // announces the instance), and the drain after it retired the instance; nothing announced it again.
    expect((await askRedis(redis.port, 'exists', instanceKeys.info(INSTANCE))).trim()).toBe('0');
    expect((await askRedis(redis.port, 'zscore', instanceKeys.list(), INSTANCE)).trim()).toBe('');
  }, 30_000);
});
