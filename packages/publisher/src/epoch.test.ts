import { newEpoch } from './epoch';

describe('newEpoch', () => {
  it('gives 8 base64url characters, a different epoch each call, across pools', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const epoch = newEpoch();
      expect(epoch).toMatch(/^[A-Za-z0-9_-]{8}$/);
      seen.add(epoch);
    }
    expect(seen.size).toBe(1_000);
  });
});
