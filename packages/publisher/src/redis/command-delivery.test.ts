import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { CommandWatch } from './command-delivery';

/**
 * A canary on the ioredis internals CommandWatch relies on (every write of a command goes through
 * its `toWritable`, a failed command is rejected through its `reject`): a real ioredis client
 * against a one-command server. Were a future ioredis to write without `toWritable`, a write lost
 * with its connection would read `unanswered: false` (maybeStored false) without a word.
 */
describe('CommandWatch on a real ioredis client (standalone): what it sees of a write', () => {
  /**
   * A server that reads the first command and does `onCommand` with its socket; `received` holds
   * what came. The client sends nothing before it (no ready check, no CLIENT SETINFO).
   */
  async function oneCommandServer(onCommand: (socket: Socket) => void) {
    const received: string[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.once('data', (data) => {
        received.push(data.toString());
        onCommand(socket);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = new Redis({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      enableReadyCheck: false,
      disableClientInfo: true,
      // The connection lost stays lost: its command is rejected, not sent again on a reconnect.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => {});
    await once(client, 'ready');
    const close = async () => {
      if (client.status !== 'end') {
        const ended = once(client, 'end');
        client.disconnect();
        await ended;
      }
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    };
    return { client, received, close };
  }

  it('says unanswered when the connection is lost with the command written (Redis may have run it)', async () => {
    const { client, received, close } = await oneCommandServer((socket) => socket.destroy());
    try {
      const watch = new CommandWatch();
      await expect(watch.send(client, 'get', ['canary'])).rejects.toThrow(/Connection is closed/);
      expect(received.join('')).toContain('canary');
      expect(watch.delivery).toEqual({ unanswered: true });
    } finally {
      await close();
    }
  });

  it('says answered when the command written is answered with an error reply (Redis ran nothing)', async () => {
    const { client, received, close } = await oneCommandServer((socket) => socket.write('-ERR canary refused\r\n'));
    try {
      const watch = new CommandWatch();
      await expect(watch.send(client, 'get', ['canary'])).rejects.toMatchObject({
        name: 'ReplyError',
        message: 'ERR canary refused',
      });
      expect(received.join('')).toContain('canary');
      expect(watch.delivery).toEqual({ unanswered: false });
    } finally {
      await close();
    }
  });
});
