import { type ShardedSubscribe, SubscribeBatch } from './subscribe-batch';

/** A subscriber that records each command's channels and settles it when told. */
function recordingSubscriber() {
  const commands: { channels: string[]; resolve: (count: number) => void; reject: (error: Error) => void }[] = [];
  const sub: ShardedSubscribe = {
    ssubscribe: (...channels: string[]) =>
      new Promise((resolve, reject) => {
        commands.push({ channels, resolve, reject });
      }),
  };
  return { sub, commands };
}

/** Lets the turn's nextTick and microtasks run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SubscribeBatch', () => {
  it('sends the channels asked for in one turn, microtasks included, as one command', async () => {
    const { sub, commands } = recordingSubscriber();
    const batch = new SubscribeBatch(sub);
    const first = batch.ssubscribe('a');
    const second = Promise.resolve().then(() => batch.ssubscribe('b'));
    expect(commands).toHaveLength(0);
    await nextTurn();
    expect(commands.map((c) => c.channels)).toEqual([['a', 'b']]);
    commands[0]?.resolve(2);
    await expect(first).resolves.toBe(2);
    await expect(second).resolves.toBe(2);
  });

  it('starts a new command in the next turn', async () => {
    const { sub, commands } = recordingSubscriber();
    const batch = new SubscribeBatch(sub);
    void batch.ssubscribe('a');
    await nextTurn();
    void batch.ssubscribe('b');
    void batch.ssubscribe('a');
    await nextTurn();
    expect(commands.map((c) => c.channels)).toEqual([['a'], ['b', 'a']]);
  });

  it('fails every channel of a command that fails, and only those', async () => {
    const { sub, commands } = recordingSubscriber();
    const batch = new SubscribeBatch(sub);
    const failed = [batch.ssubscribe('a'), batch.ssubscribe('b')];
    await nextTurn();
    const later = batch.ssubscribe('c');
    await nextTurn();
    commands[0]?.reject(new Error('Connection is closed.'));
    commands[1]?.resolve(1);
    for (const p of failed) await expect(p).rejects.toThrow('Connection is closed.');
    await expect(later).resolves.toBe(1);
  });

  it('turns a subscriber that throws into a rejection', async () => {
    const batch = new SubscribeBatch({
      ssubscribe: () => {
        throw new Error('thrown');
      },
    });
    await expect(batch.ssubscribe('a')).rejects.toThrow('thrown');
  });
});
