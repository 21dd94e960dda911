import { ChannelBatch, type ChannelCommand } from './channel-batch';

/** A command that records each call's channels and settles it when told. */
function recordingSend() {
  const commands: { channels: string[]; resolve: (count: number) => void; reject: (error: Error) => void }[] = [];
  const send: ChannelCommand = (...channels: string[]) =>
    new Promise((resolve, reject) => {
      commands.push({ channels, resolve, reject });
    });
  return { send, commands };
}

/** Lets the turn's nextTick and microtasks run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ChannelBatch', () => {
  it('sends the channels asked for in one turn, microtasks included, as one command', async () => {
    const { send, commands } = recordingSend();
    const batch = new ChannelBatch(send);
    const first = batch.add('a');
    const second = Promise.resolve().then(() => batch.add('b'));
    expect(commands).toHaveLength(0);
    await nextTurn();
    expect(commands.map((c) => c.channels)).toEqual([['a', 'b']]);
    commands[0]?.resolve(2);
    await expect(first).resolves.toBe(2);
    await expect(second).resolves.toBe(2);
  });

  it('starts a new command in the next turn', async () => {
    const { send, commands } = recordingSend();
    const batch = new ChannelBatch(send);
    void batch.add('a');
    await nextTurn();
    void batch.add('b');
    void batch.add('a');
    await nextTurn();
    expect(commands.map((c) => c.channels)).toEqual([['a'], ['b', 'a']]);
  });

  it('fails every channel of a command that fails, and only those', async () => {
    const { send, commands } = recordingSend();
    const batch = new ChannelBatch(send);
    const failed = [batch.add('a'), batch.add('b')];
    await nextTurn();
    const later = batch.add('c');
    await nextTurn();
    commands[0]?.reject(new Error('Connection is closed.'));
    commands[1]?.resolve(1);
    for (const p of failed) await expect(p).rejects.toThrow('Connection is closed.');
    await expect(later).resolves.toBe(1);
  });

  it('turns a subscriber that throws into a rejection', async () => {
    const batch = new ChannelBatch(() => {
      throw new Error('thrown');
    });
    await expect(batch.add('a')).rejects.toThrow('thrown');
  });
});
