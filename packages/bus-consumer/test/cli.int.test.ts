import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { ClientFrame } from '@livebus/protocol';
import { freePort, runCli, startChild, waitFor } from '@livebus/test-support';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import { type GatewayHandle, numbered, startGateway } from './helpers';
import { welcomeFrame } from './welcome-frame';

const cli = join(__dirname, '..', 'dist', 'cli.js');

let g: GatewayHandle;
beforeAll(async () => {
  g = await startGateway();
});
afterAll(() => g.stop());

const livebus = (...args: string[]) => runCli('livebus', process.execPath, [cli, ...args], { env: process.env });

/**
 * A gateway the test drives (a bare `ws` server): it answers a hello with a welcome and sends
 * events when told. `delivered(peer)` resolves once the client has read everything sent before
 * it: a WebSocket ping after them, answered by the client's `ws` only after the frames before it.
 */
async function scriptedGateway() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const peers: WebSocket[] = [];
  let offset = 0;
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as ClientFrame;
      if (frame.type !== 'hello') return;
      ws.send(JSON.stringify(welcomeFrame(frame, { cursor: `e:${offset}` })), () => peers.push(ws));
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`,
    /** The client welcomed last, once there is one. */
    peer: () => peers[peers.length - 1],
    event: (ws: WebSocket, message: string) =>
      ws.send(
        JSON.stringify({
          type: 'event',
          event: 'session.notice',
          data: { level: 'info', message },
          cursor: `e:${++offset}`,
          ts: Date.now(),
        }),
      ),
    delivered: (ws: WebSocket) =>
      new Promise<void>((resolve) => {
        ws.once('pong', () => resolve());
        ws.ping();
      }),
    close: async () => {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('livebus CLI', () => {
  it('--help explains the commands', async () => {
    const res = await livebus('--help');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('livebus tail');
    expect(res.stdout).toContain('livebus rpc');
  });

  it('publish points to livebus-publish (exit 2), without publishing or echoing the Redis URL', async () => {
    const url = 'redis://app:hunter2@127.0.0.1:1';
    for (const args of [
      ['publish', '--redis-url', url, 'u', 'session.notice', '{"level":"info","message":"hi"}'],
      ['--redis-url', url, '--cluster', '--retries', '0', 'publish', 'u', 'session.notice', '{}'],
      ['publish'],
    ]) {
      const res = await livebus(...args);
      expect([args, res.code, res.stdout]).toEqual([args, 2, '']);
      expect(res.stderr).toContain('livebus: publish moved to');
      expect(res.stderr).toContain('npx livebus-publish --redis-url URL');
      expect(res.stderr).not.toContain('hunter2');
    }
    const help = await livebus('--help');
    expect(help.stdout).not.toContain('livebus publish');
    expect(help.stdout).toContain('livebus-publish');
  });

  it('--version / -v print the version, before or after a command', async () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-v'], ['rpc', '--version'], ['tail', '--url', g.url, '-v']]) {
      const res = await livebus(...args);
      expect([args, res.code, res.stdout]).toEqual([args, 0, `${version}\n`]);
    }
  });

  it('rpc to a wrong path says it is not a livebus endpoint (HTTP 404), not a timeout', async () => {
    const url = g.url.replace(/\/ws$/, '/wrong');
    const res = await livebus('rpc', '--url', url, '--user', 'u', 'REGISTRY.get_sessions', '"u"');
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr)).toEqual({
      code: 'not_livebus_endpoint',
      message: `not a livebus endpoint: HTTP 404 from ${url}`,
    });
  });

  it('rpc says why the gateway refused the credentials', async () => {
    // AUTH_MODE=none takes the token as the user id: 129 characters is no user id.
    const res = await livebus('rpc', '--url', g.url, '--token', 'x'.repeat(129), 'REGISTRY.get_sessions', '"u"');
    expect(res.code).toBe(1);
    const error = JSON.parse(res.stderr) as { code: string; message: string };
    expect(error.code).toBe('invalid_subject');
    expect(error.message).toContain('the gateway refused the credentials: invalid_subject');
  });

  it.each([
    ['tail', '--timeout', '5000'],
    ['rpc', '--cursor', 'k3x9q2:41'],
    ['rpc', '--group-window', '50'],
  ])('%s %s (a flag of another command) is a usage error naming it, not ignored', async (command, flag, value) => {
    const res = await livebus(command, '--url', g.url, '--user', 'u', flag, value, 'REGISTRY.get_sessions');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${flag} is not an option of ${command}`);
  });

  it('a misspelt command is named (exit 2), with or without --url', async () => {
    for (const args of [['tial'], ['tial', '--url', g.url, '--user', 'u'], ['rcp', '--timeout', '5']]) {
      const res = await livebus(...args);
      expect([args, res.code, res.stdout]).toEqual([args, 2, '']);
      expect(res.stderr).toMatch(/^livebus: unknown command (tial|rcp)\n/);
    }
  });

  it('a URL without a scheme is a usage error', async () => {
    const res = await livebus('rpc', '--url', g.url.replace(/^ws:\/\//, ''), '--user', 'u', 'REGISTRY.get_sessions');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('url has no scheme');
  });

  it('rpc says the gateway cannot be reached, at once, rather than timing out', async () => {
    const started = Date.now();
    const res = await livebus(
      'rpc',
      '--url',
      `ws://127.0.0.1:${await freePort()}/ws`,
      '--user',
      'u',
      'REGISTRY.get_sessions',
      '"u"',
    );
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr)).toMatchObject({ code: 'unavailable' });
    expect(res.stderr).toContain('ECONNREFUSED');
    expect(res.stderr).toContain('is it running');
    process.stdout.write(`cli unavailable figures: ${JSON.stringify({ exitedAfterMs: Date.now() - started })}\n`);
  });

  it('rpc probes an https:// or wss:// URL over TLS, not plain http', async () => {
    // What the probe sends first: a TLS record (22, a handshake) or a plain `GET /healthz`.
    const firstBytes: number[] = [];
    const server = createServer((socket) => {
      socket.once('data', (data: Buffer) => {
        firstBytes.push(data[0] as number);
        socket.destroy();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      for (const scheme of ['https', 'wss']) {
        firstBytes.length = 0;
        const url = `${scheme}://127.0.0.1:${port}/ws`;
        const res = await livebus('rpc', '--url', url, '--user', 'u', 'REGISTRY.get_sessions', '"u"');
        expect([scheme, res.code, [...new Set(firstBytes)]]).toEqual([scheme, 1, [22]]);
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('says how to give a token when none is given', async () => {
    const res = await livebus('rpc', '--url', g.url, 'REGISTRY.get_sessions', '"u"');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('no token: pass --token TOKEN or set LIVEBUS_TOKEN');
  });

  it('rpc prints the result as JSON and exits 0', async () => {
    const res = await livebus(
      'rpc',
      '--url',
      g.url,
      '--user',
      'cli-user',
      'REGISTRY.register_user',
      '"cli-user"',
      '"tab"',
      '"/cli"',
    );
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      success: true,
      user_id: 'cli-user',
      session_id: 'tab',
      route: '/cli',
    });
  });

  it('rpc prints a result larger than a pipe holds (64 KB) whole, then exits 0', async () => {
    // About 300 KB printed: 2 000 sessions of a 100-character route.
    const sessions = Array.from({ length: 2_000 }, (_, i) => ({
      session_id: `s${i}`,
      route: `/${i}/`.padEnd(100, 'r'),
      registered_at: '2026-12-07T00:00:00.000Z',
    }));
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    server.on('connection', (ws) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as ClientFrame;
        if (frame.type === 'hello') ws.send(JSON.stringify(welcomeFrame(frame)));
        if (frame.type !== 'rpc') return;
        ws.send(JSON.stringify({ type: 'rpc_result', id: frame.id, result: { user_id: 'u', sessions } }));
      });
    });
    try {
      const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`;
      const args = [cli, 'rpc', '--url', url, '--user', 'u', 'REGISTRY.get_sessions', '"u"'];
      const res = await runCli('livebus', process.execPath, args, { env: process.env, keepBytes: 1_000_000 });
      expect([res.code, res.stderr, res.stdout.length > 65_536]).toEqual([0, '', true]);
      expect(JSON.parse(res.stdout)).toEqual({ user_id: 'u', sessions });
    } finally {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    }
  });

  it('rpc prints the typed error and exits non-zero', async () => {
    const res = await livebus('rpc', '--url', g.url, '--user', 'cli-user', 'REGISTRY.get_sessions', '"another-user"');
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr)).toMatchObject({ code: 'forbidden' });
    const bad = await livebus('rpc', '--url', g.url, '--user', 'cli-user', 'REGISTRY.get_sessions', '42');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr)).toMatchObject({ code: 'invalid_params' });
    const usage = await livebus('rpc', '--url', g.url, 'NOPE.method');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown method');
  });

  it('tail prints every event as a JSON line', async () => {
    const { child } = startChild(
      'livebus tail',
      process.execPath,
      [cli, 'tail', '--url', g.url, '--user', 'tail-user'],
      {
        env: process.env,
      },
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await waitFor(() => g.gw.stats().users > 0, 'tail connected');
      await g.gw.publish('tail-user', numbered(1));
      await g.gw.publish('tail-user', numbered(2));
      await waitFor(() => out.split('\n').filter(Boolean).length === 2, 'two lines');
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.data.message)).toEqual(['1', '2']);
      expect(lines[0]).toMatchObject({
        type: 'event',
        event: 'session.notice',
        cursor: expect.stringMatching(/^[\w-]+:1$/),
      });
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
  });

  it('tail --group-window MS --group-by FIELD prints one { key, events } line per batch', async () => {
    const { child } = startChild(
      'livebus tail',
      process.execPath,
      [cli, 'tail', '--url', g.url, '--user', 'tail-group', '--group-window', '1000', '--group-by', 'level'],
      { env: process.env },
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await waitFor(() => g.gw.stats().users > 0, 'tail connected');
      for (const [level, message] of [
        ['info', 'a'],
        ['warning', 'b'],
        ['info', 'c'],
      ] as const) {
        await g.gw.publish('tail-group', { event: 'session.notice', data: { level, message } });
      }
      await waitFor(() => out.split('\n').filter(Boolean).length === 2, 'two batches');
      const batches = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { key: string; events: Array<{ data: { message: string } }> });
      const byKey = Object.fromEntries(batches.map((b) => [b.key, b.events.map((e) => e.data.message)]));
      expect(byKey).toEqual({ info: ['a', 'c'], warning: ['b'] });
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
  });

  it('tail refuses --group-by without --group-window', async () => {
    const res = await livebus('tail', '--url', g.url, '--user', 'u', '--group-by', 'level');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--group-by needs --group-window MS');
  });

  it('tail to a wrong path says why it stopped (not_livebus_endpoint, HTTP 404) and exits 1', async () => {
    const url = g.url.replace(/\/ws$/, '/wrong');
    const res = await livebus('tail', '--url', url, '--user', 'u');
    expect(res.code).toBe(1);
    const reasons = res.stderr.split('\n').filter((l) => l.startsWith('livebus: not_livebus_endpoint: '));
    expect(reasons).toEqual([`livebus: not_livebus_endpoint: not a livebus endpoint: HTTP 404 from ${url}`]);
  });

  it('tail says why the gateway refused the credentials and exits 1', async () => {
    // AUTH_MODE=none takes the token as the user id: 129 characters is no user id.
    const res = await livebus('tail', '--url', g.url, '--token', 'x'.repeat(129));
    expect(res.code).toBe(1);
    const reasons = res.stderr.split('\n').filter((l) => l.startsWith('livebus: invalid_subject: '));
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toContain('the gateway refused the credentials: invalid_subject');
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'tail on %s prints the batch still collecting and exits 0',
    async (signal) => {
      const gw = await scriptedGateway();
      const tail = startChild(
        'livebus tail',
        process.execPath,
        [cli, 'tail', '--url', gw.url, '--user', 'u', '--group-window', '20000'],
        { env: process.env },
      );
      try {
        const peer = await tail.waitUntil(() => gw.peer(), 'tail connected');
        gw.event(peer, 'held');
        await gw.delivered(peer);
        tail.child.kill(signal);
        expect(await tail.exited).toBe(0);
        const lines = tail
          .stdout()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { key: string; events: Array<{ data: { message: string } }> });
        expect(lines.map((b) => [b.key, b.events.map((e) => e.data.message)])).toEqual([['', ['held']]]);
        expect(tail.stderr()).not.toContain('closed');
      } finally {
        await tail.stop('SIGKILL');
        await gw.close();
      }
    },
  );

  it('tail whose stdout is closed (| head -0) exits 0 quietly, without a stack trace', async () => {
    const gw = await scriptedGateway();
    const tail = startChild('livebus tail', process.execPath, [cli, 'tail', '--url', gw.url, '--user', 'u'], {
      env: process.env,
      exits: true,
    });
    try {
      const peer = await tail.waitUntil(() => gw.peer(), 'tail connected');
      tail.child.stdout?.destroy();
      gw.event(peer, '1');
      expect(await tail.exited).toBe(0);
      expect(tail.stderr()).not.toContain('EPIPE');
      expect(tail.stderr()).not.toMatch(/^\s+at /m);
    } finally {
      await tail.stop('SIGKILL');
      await gw.close();
    }
  });

  it('rpc refuses a --timeout that is not a positive number of milliseconds (exit 2, naming the flag)', async () => {
    for (const timeout of ['abc', '0', '-5', '', '1.5', '1e12', '99999999999']) {
      const res = await livebus('rpc', '--url', g.url, '--user', 'u', `--timeout=${timeout}`, 'REGISTRY.get_sessions');
      expect([timeout, res.code, res.stdout]).toEqual([timeout, 2, '']);
      expect(res.stderr).toContain('livebus: --timeout must be a whole number of milliseconds');
    }
    const ok = await livebus('rpc', '--url', g.url, '--user', 'u', '--timeout', '5000', 'REGISTRY.get_sessions', '"u"');
    expect(ok.code).toBe(0);
  });

  it('tail refuses a --group-window that is not a positive number of milliseconds (exit 2, naming the flag)', async () => {
    for (const window of ['abc', '0', '-5', '', '1.5', '1e3', '3000000000']) {
      const res = await livebus('tail', '--url', g.url, '--user', 'u', `--group-window=${window}`);
      expect([window, res.code, res.stdout]).toEqual([window, 2, '']);
      expect(res.stderr).toContain('livebus: --group-window must be a whole number of milliseconds');
    }
  });

  it("rpc reaches a gateway on a port fetch() refuses (a WHATWG 'bad port'), and says when nothing listens there", async () => {
    // A TCP relay to the gateway on the first of these ports that is free here.
    let relay: Server | undefined;
    let port = 0;
    for (const candidate of [6666, 6667, 6668, 6669, 6697, 6000, 10080, 6665]) {
      const server = createServer((socket) => {
        const upstream = createConnection({ port: g.port, host: '127.0.0.1' });
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(candidate, '127.0.0.1', () => resolve(true));
      });
      if (bound) {
        relay = server;
        port = candidate;
        break;
      }
    }
    if (!relay) throw new Error('none of the bad ports is free on this host');
    const url = `ws://127.0.0.1:${port}/ws`;
    try {
      const res = await livebus('rpc', '--url', url, '--user', 'bad-port', 'REGISTRY.get_sessions', '"bad-port"');
      expect([res.code, res.stderr]).toEqual([0, '']);
      expect(JSON.parse(res.stdout)).toBeDefined();
    } finally {
      await new Promise((r) => relay.close(r));
    }
    const closed = await livebus('rpc', '--url', url, '--user', 'bad-port', 'REGISTRY.get_sessions', '"bad-port"');
    expect(closed.code).toBe(1);
    expect(JSON.parse(closed.stderr)).toMatchObject({ code: 'unavailable' });
    expect(closed.stderr).toContain('ECONNREFUSED');
  });
});
