import { createServer, type Server } from 'node:net';
import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { startCli } from './task-processes';

// A port another process holds: the CLI must stop with exit 78 and name the variable that
// chose the port, not Node's bare `EADDRINUSE 0.0.0.0:8081` (which of three variables?).
function occupy(): Promise<{ port: number; server: Server }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address === 'object' && address) resolve({ port: address.port, server });
      else reject(new Error('no port'));
    });
  });
}

describe('a port already in use', () => {
  let taken: { port: number; server: Server };
  let redis: RedisServerHandle;
  beforeAll(async () => {
    taken = await occupy();
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => taken.server.close(() => resolve()));
    await redis.stop();
  });

  it.each([
    ['PORT', 'livebus-gateway', [], (port: number) => ({ PORT: String(port) })],
    ['HEALTH_PORT', 'livebus-gateway', [], (port: number) => ({ PORT: '0', HEALTH_PORT: String(port) })],
    [
      'WORKER_HTTP_PORT',
      'livebus-gateway worker',
      ['worker'],
      (port: number) => ({ REDIS_URL: redis.url, UNIFIED_REGISTRY_ENABLED: 'true', WORKER_HTTP_PORT: String(port) }),
    ],
  ])('%s: exits 78 naming the variable and the port', async (variable, command, args, env) => {
    const p = startCli(args as string[], env(taken.port), { exits: true });
    expect(await p.exited).toBe(78);
    expect(p.stderr()).toContain(`${command}: ${variable} ${taken.port} is already in use`);
  });
});
