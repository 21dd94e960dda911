import { EventEmitter } from 'node:events';
import type { AppEvent } from '@livebus/protocol';
import { createPublisher } from './create-publisher';

/**
 * A connection of the publisher's own (`redisUrl`), faked: its commands are never answered, and
 * `disconnect(true)` is recorded. `status` is set by the test, as ioredis would move it.
 */
interface FakeClient extends EventEmitter {
  status: string;
  options: { host: string; port: number };
  disconnect: jest.Mock;
  connect: jest.Mock;
  evalsha: () => Promise<never>;
  sendCommand: () => Promise<never>;
  quit: () => Promise<'OK'>;
}

const mockClients: FakeClient[] = [];

jest.mock('./redis/open-redis', () => {
  const actual = jest.requireActual('./redis/open-redis');
  return {
    ...actual,
    openRedis: () => {
      const client = new EventEmitter() as FakeClient;
      client.status = 'ready';
      client.options = { host: '10.0.0.5', port: 6379 };
      client.disconnect = jest.fn();
      client.connect = jest.fn(() => Promise.resolve());
      // A frozen Redis: the command is written and never answered.
      client.evalsha = () => new Promise<never>(() => {});
      // The publisher sends its calls as commands of its own (to see whether each was written).
      client.sendCommand = () => new Promise<never>(() => {});
      client.quit = () => Promise.resolve('OK');
      client.on('error', () => {});
      mockClients.push(client);
      return client;
    },
  };
});

const notice = (i: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(i) } });

describe('a publisher whose attempt times out on a connection of its own', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    mockClients.length = 0;
  });
  afterEach(() => jest.useRealTimers());

  // ioredis's connectTimeout ends at the TCP connect; its ready check (INFO) has none: on a frozen
  // Redis, which still accepts connections, a new connection stays in `connect` for ever.
  it.each(['ready', 'connect'])('drops a connection in %s for a new one', async (status) => {
    const p = createPublisher({ redisUrl: 'redis://10.0.0.5:6379' }, { attemptTimeoutMs: 1_000, retryDelaysMs: [100] });
    const client = mockClients[0] as FakeClient;
    client.status = status;
    p.publish('u1', notice(1)).catch(() => {});
    await jest.advanceTimersByTimeAsync(1_000);
    expect(client.disconnect).toHaveBeenCalledWith(true);
    client.status = 'end';
    const closing = p.close();
    await jest.advanceTimersByTimeAsync(1_000);
    await closing;
  });

  it('leaves a connection in connecting alone (ioredis gives it up after its connectTimeout)', async () => {
    const p = createPublisher({ redisUrl: 'redis://10.0.0.5:6379' }, { attemptTimeoutMs: 1_000, retryDelaysMs: [100] });
    const client = mockClients[0] as FakeClient;
    client.status = 'connecting';
    p.publish('u1', notice(1)).catch(() => {});
    await jest.advanceTimersByTimeAsync(1_000);
    expect(client.disconnect).not.toHaveBeenCalled();
    client.status = 'end';
    const closing = p.close();
    await jest.advanceTimersByTimeAsync(1_000);
    await closing;
  });
});
