import { type Corkable, TurnWrites } from './turn-writes';

/** A socket that records its corks, uncorks and writes in order. */
function recordingSocket() {
  const log: string[] = [];
  const socket: Corkable = {
    cork: () => log.push('cork'),
    uncork: () => log.push('uncork'),
  };
  return { socket, log };
}

/** Lets the turn's nextTick and microtasks run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnWrites', () => {
  it('corks the socket at the first command of a turn and uncorks it once the turn is done, microtasks included', async () => {
    const { socket, log } = recordingSocket();
    const writes = new TurnWrites(() => socket);
    expect(writes.send(() => log.push('a'))).toBe(2);
    await Promise.resolve().then(() => writes.send(() => log.push('b')));
    expect(log).toEqual(['cork', 'a', 'b']);
    await nextTurn();
    expect(log).toEqual(['cork', 'a', 'b', 'uncork']);
    writes.send(() => log.push('c'));
    await nextTurn();
    expect(log).toEqual(['cork', 'a', 'b', 'uncork', 'cork', 'c', 'uncork']);
  });

  it('uncorks the socket it corked, even when the connection has another by then', async () => {
    const first = recordingSocket();
    const second = recordingSocket();
    let current = first.socket;
    const writes = new TurnWrites(() => current);
    writes.send(() => {});
    current = second.socket;
    writes.send(() => {});
    await nextTurn();
    expect(first.log).toEqual(['cork', 'uncork']);
    expect(second.log).toEqual([]);
  });

  it('sends without corking while the connection has no socket to write to', async () => {
    const { socket, log } = recordingSocket();
    let ready = false;
    const writes = new TurnWrites(() => (ready ? socket : undefined));
    writes.send(() => log.push('offline'));
    ready = true;
    writes.send(() => log.push('ready'));
    await nextTurn();
    expect(log).toEqual(['offline', 'cork', 'ready', 'uncork']);
  });

  it('passes on what the command throws, and still uncorks', async () => {
    const { socket, log } = recordingSocket();
    const writes = new TurnWrites(() => socket);
    expect(() =>
      writes.send(() => {
        throw new Error('thrown');
      }),
    ).toThrow('thrown');
    await nextTurn();
    expect(log).toEqual(['cork', 'uncork']);
  });
});
