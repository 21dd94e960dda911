import { shownRedisUrl } from './shown-redis-url';

describe('shownRedisUrl', () => {
  it('drops the password from the user info and from the query, keeping where and what', () => {
    expect(shownRedisUrl('rediss://default:s3cret@cache.example.com:6380/2')).toBe(
      'rediss://***@cache.example.com:6380/2',
    );
    expect(shownRedisUrl('redis://cache:6379/0?password=s3cret&db=1&password=again')).toBe(
      'redis://cache:6379/0?password=***&db=***',
    );
    expect(shownRedisUrl('redis://:s3cret@cache:6379?password=s3cret#s3cret')).toBe(
      'redis://***@cache:6379?password=***',
    );
    expect(shownRedisUrl('redis://cache:6379')).toBe('redis://cache:6379');
    expect(shownRedisUrl('not a url s3cret')).toBe('[set]');
  });
});
