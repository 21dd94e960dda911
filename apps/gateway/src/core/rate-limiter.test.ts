import { KeyedBuckets, TokenBucket } from './rate-limiter';

describe('TokenBucket', () => {
  it('allows a burst, then the average rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    const burst = Array.from({ length: 8 }, () => bucket.take());
    expect(burst).toEqual([true, true, true, true, true, false, false, false]);
    now += 100; // one token at 10/s
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 10_000; // refills up to the burst, not beyond
    expect(Array.from({ length: 6 }, () => bucket.take()).filter(Boolean)).toHaveLength(5);
  });

  it('is full once it has refilled to its burst, and only then', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    expect(bucket.isFull()).toBe(true);
    bucket.take();
    expect(bucket.isFull()).toBe(false);
    now += 99;
    expect(bucket.isFull()).toBe(false);
    now += 1; // the token taken is back
    expect(bucket.isFull()).toBe(true);
  });
});

describe('KeyedBuckets', () => {
  it('keeps a bucket per key: one key emptied does not limit another', () => {
    let now = 0;
    const buckets = new KeyedBuckets(TokenBucket.policy(1, 2, () => now));
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a')]).toEqual([true, true, false]);
    expect(buckets.take('b')).toBe(true);
    now += 1_000;
    expect([buckets.take('a'), buckets.take('a')]).toEqual([true, false]);
  });

  it('drops buckets that refilled once it holds maxKeys, and keeps those still limiting', () => {
    let now = 0;
    const buckets = new KeyedBuckets(
      TokenBucket.policy(1, 1, () => now),
      3,
    );
    for (const key of ['a', 'b', 'c']) buckets.take(key);
    now += 1_000; // a, b and c refilled
    buckets.take('c'); // c is limiting again
    buckets.take('d'); // the map is full: a and b go, c stays
    expect(buckets.size).toBe(2);
    expect(buckets.take('c')).toBe(false);
  });
});
