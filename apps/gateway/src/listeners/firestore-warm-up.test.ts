import { type GatewayHookEvents, Hooks } from '../hooks';
import { warmUpFirestore } from './firestore-warm-up';

type WarmUp = GatewayHookEvents['firestore.warm_up'];

function recorded(): { hooks: Hooks<GatewayHookEvents>; seen: WarmUp[] } {
  const hooks = new Hooks<GatewayHookEvents>();
  const seen: WarmUp[] = [];
  hooks.on('firestore.warm_up', (e) => seen.push(e));
  return { hooks, seen };
}

describe('warmUpFirestore', () => {
  afterEach(() => jest.useRealTimers());

  it('reads once and reports ok', async () => {
    const { hooks, seen } = recorded();
    const read = jest.fn(() => Promise.resolve({ exists: false }));
    await warmUpFirestore(read, hooks);
    expect(read).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([{ ms: expect.any(Number), outcome: 'ok' }]);
  });

  it('a refused read does not throw: reported as error, with the reason', async () => {
    const { hooks, seen } = recorded();
    await warmUpFirestore(() => Promise.reject(new Error('PERMISSION_DENIED')), hooks);
    expect(seen).toEqual([{ ms: expect.any(Number), outcome: 'error', error: 'Error: PERMISSION_DENIED' }]);
  });

  it('a Firestore that never answers does not hold the start: timeout after the bound', async () => {
    jest.useFakeTimers();
    const { hooks, seen } = recorded();
    const done = warmUpFirestore(() => new Promise(() => {}), hooks, 5_000);
    await jest.advanceTimersByTimeAsync(4_999);
    expect(seen).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    await done;
    expect(seen).toEqual([{ ms: expect.any(Number), outcome: 'timeout' }]);
  });
});
