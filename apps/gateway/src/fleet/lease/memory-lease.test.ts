import { MemoryLease } from './memory-lease';

describe('MemoryLease expiry, on an injected clock', () => {
  it('holds a lease until exactly its TTL; a renew restarts the TTL from the renewal', async () => {
    let now = 1_000;
    const lease = new MemoryLease({ now: () => now });
    const a = await lease.acquire('k', 'gw-a', 300);
    now += 299;
    expect(await lease.renew('k', 'gw-a', a!.token, 300)).toBe(true); // at 299: renewed until 599
    now += 299;
    expect(await lease.acquire('k', 'gw-b', 300)).toBeUndefined(); // at 598: still held
    expect(await lease.holder('k')).toEqual({ owner: 'gw-a', token: a!.token });
    now += 1; // at 599: expired
    expect(await lease.holder('k')).toBeUndefined();
    expect(await lease.renew('k', 'gw-a', a!.token, 300)).toBe(false);
    const b = await lease.acquire('k', 'gw-b', 300);
    expect(b!.token).toBeGreaterThan(a!.token);
    expect(await lease.holder('k')).toEqual({ owner: 'gw-b', token: b!.token });
  });
});
