import { InvalidEventError, PublishError } from '@livebus/publisher';
import { ReplyError } from 'ioredis';
import { RpcError } from './rpc-error';
import { storeFailure } from './store-failure';

describe('storeFailure', () => {
  it('answers unavailable (retry) when Redis is away or a Cluster fails over', () => {
    for (const error of [
      new Error('Connection is closed.'),
      new ReplyError('CLUSTERDOWN The cluster is down'),
      new Error(`Too many Cluster redirections. Last error: ${new ReplyError('MOVED 12 127.0.0.1:7001')}`),
    ]) {
      expect(storeFailure(error, 'the registry').toWire()).toEqual({
        code: 'unavailable',
        message: 'the registry is unavailable; retry later',
      });
    }
  });

  it('answers internal, without the Redis message, when Redis refused the command', () => {
    const refused = storeFailure(
      new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      'x',
    );
    expect(refused.toWire()).toEqual({ code: 'internal', message: 'internal error' });
    expect(refused.cause).toBeInstanceOf(ReplyError);
  });

  it('answers unavailable for an event the bus cannot take now (outbox full, Redis away, closing), internal for one it refused', () => {
    for (const code of ['outbox_full', 'redis_unavailable', 'closed'] as const) {
      expect(storeFailure(new PublishError(code, 'not now'), 'the event bus').toWire()).toEqual({
        code: 'unavailable',
        message: 'the event bus is unavailable; retry later',
      });
    }
    expect(storeFailure(new PublishError('redis_error', 'refused'), 'the event bus').toWire()).toEqual({
      code: 'internal',
      message: 'internal error',
    });
  });

  it('answers invalid_params, saying why, for an event the bus refused (too large for a frame)', () => {
    const refused = storeFailure(new InvalidEventError('event too large'), 'the event bus');
    expect(refused.toWire()).toEqual({
      code: 'invalid_params',
      message: 'the event bus refused the event: event too large',
    });
  });

  it('keeps an RpcError as it is', () => {
    const own = new RpcError('not_found', 'no such task');
    expect(storeFailure(own, 'x')).toBe(own);
  });
});
