import { EventEmitter } from 'node:events';
import { slotOf } from '@livebus/publisher/redis';
import type { Cluster } from 'ioredis';
import { SlotMovedError, SlotMoves } from './slot-moves';

/** A cluster subscriber as SlotMoves reads it: its slot map, and `refresh` after each read of it. */
function fakeSubscriber(master: string) {
  const emitter = new EventEmitter();
  const slots: string[][] = Array.from({ length: 16_384 }, () => [master]);
  return Object.assign(emitter, { slots }) as unknown as Pick<Cluster, 'slots' | 'on'> & EventEmitter;
}

/** A promise's state as it is now (a turn after it settled, at most). */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'resolved' | SlotMovedError | unknown> {
  let state: unknown = 'pending';
  promise.then(
    () => {
      state = 'resolved';
    },
    (error: unknown) => {
      state = error;
    },
  );
  await new Promise((resolve) => setImmediate(resolve));
  return state;
}

describe('SlotMoves', () => {
  const channel = 'lb:{alice}:n';
  const never = () => new Promise<never>(() => {});

  it('fails a waiting SSUBSCRIBE once a read of the slot map gives its slot another master', async () => {
    const sub = fakeSubscriber('127.0.0.1:7000');
    const waiting = new SlotMoves(sub, 5_000).unlessMoved(never(), channel);
    sub.emit('refresh'); // read again, unchanged
    expect(await stateOf(waiting)).toBe('pending');
    (sub.slots[slotOf(channel)] as string[])[0] = '127.0.0.1:7001';
    sub.emit('refresh');
    expect(await stateOf(waiting)).toBeInstanceOf(SlotMovedError);
  });

  it('keeps waiting on a node that stops answering (no slot moves), and settles as the answer does', async () => {
    const sub = fakeSubscriber('127.0.0.1:7000');
    const moves = new SlotMoves(sub, 5_000);
    const frozen = moves.unlessMoved(never(), channel);
    for (let i = 0; i < 3; i++) sub.emit('refresh');
    expect(await stateOf(frozen)).toBe('pending');
    let answer!: (v: number) => void;
    const answered = moves.unlessMoved(new Promise<number>((resolve) => (answer = resolve)), channel);
    answer(1);
    await expect(answered).resolves.toBe(1);
    // Settled: a later move changes nothing for it.
    (sub.slots[slotOf(channel)] as string[])[0] = '127.0.0.1:7001';
    sub.emit('refresh');
    expect(await stateOf(answered)).toBe('resolved');
  });

  it('passes the answer through when the slot map is not known yet', async () => {
    const sub = fakeSubscriber('127.0.0.1:7000');
    sub.slots.length = 0;
    await expect(new SlotMoves(sub, 5_000).unlessMoved(Promise.resolve('ok'), channel)).resolves.toBe('ok');
  });

  it('forgets a wait its caller gave up on (past the step), answered or not', async () => {
    const sub = fakeSubscriber('127.0.0.1:7000');
    let now = 0;
    const moves = new SlotMoves(sub, 5_000, () => now);
    moves.unlessMoved(never(), channel).catch(() => {});
    sub.emit('refresh');
    expect(moves.size).toBe(1);
    now = 5_001;
    sub.emit('refresh');
    expect(moves.size).toBe(0);
  });

  it("compares the map ioredis routes an SSUBSCRIBE by (its sharded subscribers'), rechecked when they take a new one", async () => {
    const sub = fakeSubscriber('127.0.0.1:7000');
    const groupSlots: string[][] = Array.from({ length: 16_384 }, () => ['127.0.0.1:7000']);
    Object.assign(sub, { shardedSubscribers: { clusterSlots: groupSlots } });
    const waiting = new SlotMoves(sub, 5_000).unlessMoved(never(), channel);
    // The cluster read the new map; its subscribers still route by the old one.
    (sub.slots[slotOf(channel)] as string[])[0] = '127.0.0.1:7001';
    sub.emit('refresh');
    expect(await stateOf(waiting)).toBe('pending');
    (groupSlots[slotOf(channel)] as string[])[0] = '127.0.0.1:7001';
    sub.emit('subscribersReady');
    expect(await stateOf(waiting)).toBeInstanceOf(SlotMovedError);
  });
});
