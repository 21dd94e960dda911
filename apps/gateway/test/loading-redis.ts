import { createServer, type Server, type Socket } from 'node:net';

/**
 * A fake Redis that answers like one loading its dataset after a restart: INFO says
 * `loading:1` (what ioredis's ready check reads: it waits and asks again), PING and every
 * other command `-LOADING`, the handshake (CLIENT, SELECT) `+OK`. {@link LoadingRedis.loaded}
 * ends the loading: INFO says `loading:0`, PING `+PONG`; {@link LoadingRedis.reload} starts
 * it again under the connections already open (a replica's full sync, `DEBUG RELOAD`).
 */
export interface LoadingRedis {
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** INFO commands with a section (the ready check's has none), so far. */
  sectionInfos(): number;
  loaded(): void;
  reload(): void;
  close(): Promise<void>;
}

/** Splits a client's RESP arrays out of `buffer`; returns the commands and what is left. */
function parseCommands(buffer: string): { commands: string[][]; rest: string } {
  const commands: string[][] = [];
  let at = 0;
  for (;;) {
    const start = at;
    if (buffer[at] !== '*') break;
    const head = buffer.indexOf('\r\n', at);
    if (head < 0) break;
    const count = Number(buffer.slice(at + 1, head));
    at = head + 2;
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      const lenEnd = buffer.indexOf('\r\n', at);
      if (lenEnd < 0) break;
      const len = Number(buffer.slice(at + 1, lenEnd));
      if (buffer.length < lenEnd + 2 + len + 2) break;
      args.push(buffer.slice(lenEnd + 2, lenEnd + 2 + len));
      at = lenEnd + 2 + len + 2;
    }
    if (args.length < count) return { commands, rest: buffer.slice(start) };
    commands.push(args);
  }
  return { commands, rest: buffer.slice(at) };
}

export async function startLoadingRedis(): Promise<LoadingRedis> {
  let loading = true;
  let connections = 0;
  let sectionInfos = 0;
  const sockets = new Set<Socket>();
  const answer = (args: string[]): string => {
    const name = (args[0] ?? '').toLowerCase();
    if (name === 'info') {
      if (args.length > 1) sectionInfos++;
      const text = `# Persistence\r\nloading:${loading ? 1 : 0}\r\nloading_eta_seconds:1\r\n`;
      return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
    }
    if (name === 'client' || name === 'select') return '+OK\r\n';
    if (loading) return '-LOADING Redis is loading the dataset in memory\r\n';
    return name === 'ping' ? '+PONG\r\n' : '+OK\r\n';
  };
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    let buffer = '';
    socket.on('data', (data) => {
      const { commands, rest } = parseCommands(buffer + data.toString('latin1'));
      buffer = rest;
      for (const args of commands) socket.write(answer(args));
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    connections: () => connections,
    sectionInfos: () => sectionInfos,
    loaded: () => {
      loading = false;
    },
    reload: () => {
      loading = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
