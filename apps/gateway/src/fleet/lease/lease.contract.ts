import { sleep, waitFor } from '@livebus/test-support';
import type { Lease } from './lease';

/**
 * The contract every {@link Lease} implementation passes. Run by
 * test/lease-contract.int.test.ts against memory, standalone Redis and Redis Cluster.
 * `make` builds a backend for one test and returns a function giving views on it, one
 * per simulated gateway instance (a memory backend may return the same object each time).
 */
export function leaseContract(name: string, make: () => Promise<() => Lease>): void {
  describe(`Lease contract: ${name}`, () => {
    let n = 0;
    let key: string;
    beforeEach(() => {
      key = `lease-${Date.now()}-${n++}`;
    });

    it('one owner at a time; the holder is visible; release frees it', async () => {
      const lease = (await make())();
      expect(await lease.holder(key)).toBeUndefined();
      const a = await lease.acquire(key, 'gw-a', 30_000);
      expect(a?.token).toBeGreaterThan(0);
      expect(await lease.acquire(key, 'gw-b', 30_000)).toBeUndefined();
      expect(await lease.holder(key)).toEqual({ owner: 'gw-a', token: a!.token });
      expect(await lease.release(key, 'gw-a', a!.token)).toBe(true);
      expect(await lease.holder(key)).toBeUndefined();
      const b = await lease.acquire(key, 'gw-b', 30_000);
      expect(b!.token).toBeGreaterThan(a!.token);
      expect(await lease.acquire(`${key}-other`, 'gw-a', 30_000)).toBeDefined();
    });

    it('is exclusive under concurrency: exactly one of many owners wins', async () => {
      const view = await make();
      const leases = [view(), view(), view()];
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => leases[i % 3]!.acquire(key, `gw-${i}`, 30_000)),
      );
      const winners = results.flatMap((r, i) => (r ? [{ owner: `gw-${i}`, token: r.token }] : []));
      expect(winners).toHaveLength(1);
      expect(await leases[0]!.holder(key)).toEqual(winners[0]);
    });

    it('re-acquiring under the holder name (a restart with the same instance id) issues a new token and fences the old one', async () => {
      const lease = (await make())();
      const first = await lease.acquire(key, 'gw-a', 30_000);
      const again = await lease.acquire(key, 'gw-a', 30_000);
      expect(again!.token).toBeGreaterThan(first!.token);
      expect(await lease.holder(key)).toEqual({ owner: 'gw-a', token: again!.token });
      expect(await lease.renew(key, 'gw-a', first!.token, 30_000)).toBe(false);
      expect(await lease.release(key, 'gw-a', first!.token)).toBe(false);
      expect(await lease.acquire(key, 'gw-b', 30_000)).toBeUndefined();
      expect(await lease.renew(key, 'gw-a', again!.token, 30_000)).toBe(true);
    });

    it('fencing tokens strictly increase across acquisitions, also after expiry', async () => {
      const lease = (await make())();
      const tokens: number[] = [];
      for (let i = 0; i < 5; i++) {
        const got = await lease.acquire(key, `gw-${i}`, 30_000);
        tokens.push(got!.token);
        await lease.release(key, `gw-${i}`, got!.token);
      }
      const short = await lease.acquire(key, 'gw-short', 100);
      tokens.push(short!.token);
      await waitFor(async () => (await lease.holder(key)) === undefined, 'the lease to expire', 2_000);
      tokens.push((await lease.acquire(key, 'gw-next', 30_000))!.token);
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    it('renew and release by a stale owner or token fail and change nothing', async () => {
      const lease = (await make())();
      const old = await lease.acquire(key, 'gw-a', 100);
      await sleep(200);
      const next = await lease.acquire(key, 'gw-b', 30_000);
      expect(next).toBeDefined();
      expect(await lease.renew(key, 'gw-a', old!.token, 30_000)).toBe(false);
      expect(await lease.release(key, 'gw-a', old!.token)).toBe(false);
      expect(await lease.renew(key, 'gw-b', old!.token, 30_000)).toBe(false); // right owner, stale token
      expect(await lease.release(key, 'gw-b', next!.token + 1)).toBe(false);
      expect(await lease.holder(key)).toEqual({ owner: 'gw-b', token: next!.token });
    });

    it('renew keeps the lease past its first TTL; expiry lets another owner acquire', async () => {
      // Renewed every 150 ms against a 1 s TTL: a loaded host may run a sleep 850 ms late and
      // the lease still holds. Expiry exactly at the TTL is checked on an injected clock in
      // memory-lease.test.ts; a Redis backend's clock is Redis's own.
      const ttl = 1_000;
      const lease = (await make())();
      const a = await lease.acquire(key, 'gw-a', ttl);
      const started = Date.now();
      while (Date.now() - started <= ttl) {
        await sleep(150);
        expect(await lease.renew(key, 'gw-a', a!.token, ttl)).toBe(true);
      }
      expect(await lease.acquire(key, 'gw-b', ttl)).toBeUndefined();
      await waitFor(async () => lease.acquire(key, 'gw-b', 30_000), 'gw-b to acquire after expiry', ttl + 10_000);
      expect((await lease.holder(key))?.owner).toBe('gw-b');
      expect(await lease.renew(key, 'gw-a', a!.token, ttl)).toBe(false);
    });

    it('takeOver: from the holder named exactly (or a free lease), with a new token; never from anyone else', async () => {
      const view = await make();
      const lease = view();
      const a = await lease.acquire(key, 'gw-a', 30_000);
      // A holder seen before, no longer the holder (a new token): refused, nothing changed.
      expect(await view().takeOver(key, { owner: 'gw-a', token: a!.token - 1 }, 'gw-b', 30_000)).toBeUndefined();
      expect(await view().takeOver(key, { owner: 'gw-x', token: a!.token }, 'gw-b', 30_000)).toBeUndefined();
      expect(await lease.holder(key)).toEqual({ owner: 'gw-a', token: a!.token });
      const b = await view().takeOver(key, { owner: 'gw-a', token: a!.token }, 'gw-b', 30_000);
      expect(b!.token).toBeGreaterThan(a!.token);
      expect(await lease.holder(key)).toEqual({ owner: 'gw-b', token: b!.token });
      // The old holder is fenced out; a second survivor racing with the same view loses.
      expect(await lease.renew(key, 'gw-a', a!.token, 30_000)).toBe(false);
      expect(await view().takeOver(key, { owner: 'gw-a', token: a!.token }, 'gw-c', 30_000)).toBeUndefined();
      expect(await lease.release(key, 'gw-b', b!.token)).toBe(true);
      const c = await view().takeOver(key, { owner: 'gw-b', token: b!.token }, 'gw-c', 30_000);
      expect(c!.token).toBeGreaterThan(b!.token);
    });

    it('refuses an empty owner', async () => {
      const lease = (await make())();
      await expect(lease.acquire(key, '', 1_000)).rejects.toMatchObject({ name: 'LeaseOwnerError' });
    });

    it('takes any other owner name, separators and digits included', async () => {
      const view = await make();
      const lease = view();
      const owner = 'gw|a|1';
      const got = await lease.acquire(key, owner, 30_000);
      expect(got).toBeDefined();
      expect(await lease.holder(key)).toEqual({ owner, token: got!.token });
      // 'gw|a' is another owner, though the stored value starts with it.
      expect(await view().acquire(key, 'gw|a', 30_000)).toBeUndefined();
      expect(await lease.renew(key, owner, got!.token, 30_000)).toBe(true);
      const again = await lease.acquire(key, owner, 30_000);
      expect(again!.token).toBeGreaterThan(got!.token);
      expect(await lease.release(key, owner, again!.token)).toBe(true);
      expect(await lease.holder(key)).toBeUndefined();
    });
  });
}
