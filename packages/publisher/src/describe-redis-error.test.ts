import { describeRedisError, redisErrorCode, redisUrlAddress } from './describe-redis-error';

const sysError = (code: string, fields: Record<string, unknown> = {}) =>
  Object.assign(new Error(`connect ${code}`), { code, ...fields });

describe('describeRedisError', () => {
  it('names the host and port of the URL as given, never its user or password, and the setting to check', () => {
    const refused = sysError('ECONNREFUSED', { address: '10.0.0.5', port: 6379 });
    expect(
      describeRedisError(refused, { where: 'redis://app:hunter2@cache.internal:6380/2', setting: 'REDIS_URL' }),
    ).toBe('cannot reach Redis at cache.internal:6380 (ECONNREFUSED); check REDIS_URL');
    expect(describeRedisError(refused, { where: 'rediss://:hunter2@cache.internal' })).toBe(
      'cannot reach Redis at cache.internal:6379 (ECONNREFUSED)',
    );
  });

  it('says a Redis that is not a cluster is used as one (a Cluster client on a standalone server)', () => {
    const slots = Object.assign(new Error('Failed to refresh slots cache.'), {
      name: 'ClusterAllFailedError',
      lastNodeError: Object.assign(new Error('ERR This instance has cluster support disabled'), { name: 'ReplyError' }),
    });
    expect(redisErrorCode(slots)).toBe('CLUSTER_DISABLED');
    expect(describeRedisError(slots, { where: 'redis://cache.internal:6379', setting: '--redis-url' })).toBe(
      'the Redis at cache.internal:6379 is not a cluster (CLUSTER_DISABLED: its cluster support is disabled), yet it is used as one; check --redis-url',
    );
  });

  it('without a URL, uses the address the error carries (a Cluster node), or none', () => {
    expect(describeRedisError(sysError('ECONNREFUSED', { address: '10.0.0.5', port: 7001 }))).toBe(
      'cannot reach Redis at 10.0.0.5:7001 (ECONNREFUSED)',
    );
    const allFailed = Object.assign(new Error('Failed to refresh slots cache.'), {
      name: 'ClusterAllFailedError',
      lastNodeError: sysError('ETIMEDOUT', { address: '10.0.0.6', port: 7002 }),
    });
    expect(describeRedisError(allFailed)).toBe('cannot reach Redis at 10.0.0.6:7002 (ETIMEDOUT)');
    expect(describeRedisError(new Error('Connection is closed.'))).toBe('cannot reach Redis (unknown)');
    const vague = Object.assign(new Error('Failed to refresh slots cache.'), {
      name: 'ClusterAllFailedError',
      lastNodeError: new Error('Connection is closed.'),
    });
    expect(describeRedisError(vague, { where: 'redis://seed:7000' })).toBe(
      'cannot reach Redis at seed:7000 (ClusterAllFailedError)',
    );
  });

  it('on a Cluster names the node the command went to (its own address first), with the seed', () => {
    const seed = 'redis://:hunter2@seed.internal:7000';
    const closed = new Error('Connection is closed.');
    expect(describeRedisError(closed, { where: seed, cluster: true, node: '10.0.0.7:7003' })).toBe(
      'cannot reach Redis Cluster node 10.0.0.7:7003 (seed seed.internal:7000) (unknown)',
    );
    const refused = sysError('ECONNREFUSED', { address: '10.0.0.8', port: 7004 });
    expect(
      describeRedisError(refused, { where: seed, cluster: true, node: '10.0.0.7:7003', setting: '--redis-url' }),
    ).toBe(
      'cannot reach Redis Cluster node 10.0.0.8:7004 (seed seed.internal:7000) (ECONNREFUSED); check that node (--redis-url names the seed only)',
    );
    // No node known (the slot map not read yet), or the whole cluster failed: the seed, as before.
    expect(describeRedisError(closed, { where: seed, cluster: true, node: undefined })).toBe(
      'cannot reach Redis at seed.internal:7000 (unknown)',
    );
    const allFailed = Object.assign(new Error('Failed to refresh slots cache.'), {
      name: 'ClusterAllFailedError',
      lastNodeError: sysError('ETIMEDOUT', { address: '10.0.0.6', port: 7002 }),
    });
    expect(describeRedisError(allFailed, { where: seed, cluster: true })).toBe(
      'cannot reach Redis at seed.internal:7000 (ETIMEDOUT)',
    );
  });

  it('codes: system errors, Redis replies, TLS, else the error name', () => {
    expect(redisErrorCode(sysError('ENOTFOUND', { hostname: 'bad' }))).toBe('ENOTFOUND');
    expect(redisErrorCode(new Error('WRONGPASS invalid username-password pair or user is disabled.'))).toBe(
      'WRONGPASS',
    );
    expect(redisErrorCode(new Error('Ready check failed: NOAUTH Authentication required.'))).toBe('NOAUTH');
    expect(redisErrorCode(sysError('ERR_SSL_WRONG_VERSION_NUMBER'))).toBe('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(
      redisErrorCode(new Error('Client network socket disconnected before secure TLS connection was established')),
    ).toBe('TLS');
    const gaveUp = Object.assign(new Error('Reached the max retries per request limit (which is 0).'), {
      name: 'MaxRetriesPerRequestError',
    });
    expect(redisErrorCode(gaveUp)).toBe('MaxRetriesPerRequestError');
    expect(redisErrorCode('nope')).toBe('unknown');
  });
});

describe('redisUrlAddress', () => {
  it('reads redis:// and rediss:// URLs with a host, and nothing else', () => {
    expect(redisUrlAddress('redis://localhost')).toEqual({ host: 'localhost', port: 6379 });
    expect(redisUrlAddress('rediss://u:p@10.0.0.5:6380')).toEqual({ host: '10.0.0.5', port: 6380 });
    for (const bad of ['', 'undefined', 'localhost:6379', 'http://x:1', 'redis://']) {
      expect(redisUrlAddress(bad)).toBeUndefined();
    }
  });
});
