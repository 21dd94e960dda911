import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import {
  PortBusyError,
  retryBind,
  startAuthEmulatorStub,
  startFirestoreEmulator,
  startRedisServer,
  startTcpProxy,
  unsignedIdToken,
  waitFor,
} from '../src';

async function echoServer() {
  const server = createServer((s) => {
    s.on('error', () => {}); // the proxy's cut resets this side too
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Writes `text` and resolves with what comes back, or undefined after `timeoutMs`. The default is
 * for an answer that must come (generous: a busy machine); a silence is checked with a short one.
 */
function roundTrip(sock: Socket, text: string, timeoutMs = 10_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      sock.off('data', onData);
      resolve(undefined);
    }, timeoutMs);
    const onData = (d: Buffer) => {
      clearTimeout(t);
      resolve(d.toString());
    };
    sock.once('data', onData);
    sock.write(text);
  });
}

describe('startTcpProxy', () => {
  it('forwards, freezes (silence, connection kept), thaws, and cuts', async () => {
    const echo = await echoServer();
    const proxy = await startTcpProxy(echo.port);
    const sock = connect(proxy.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    expect(await roundTrip(sock, 'a')).toBe('a');
    proxy.freeze();
    expect(await roundTrip(sock, 'b', 300)).toBeUndefined();
    expect(proxy.connections).toBe(1);
    proxy.thaw();
    await waitFor(() => proxy.connections === 1, 'still connected');
    const closed = new Promise((r) => sock.once('close', r));
    sock.on('error', () => {});
    proxy.dropAll();
    await closed;
    expect(proxy.connections).toBe(0);
    await proxy.close();
    await new Promise((r) => echo.server.close(r));
  });
});

describe('startRedisServer', () => {
  it('starts on a free port, and can be killed and restarted on the same port', async () => {
    const redis = await startRedisServer();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    await redis.kill();
    const refused = connect(redis.port, '127.0.0.1');
    await expect(new Promise((_, reject) => refused.once('error', reject))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await redis.restart();
    const sock = connect(redis.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    expect(await roundTrip(sock, 'PING\r\n')).toBe('+PONG\r\n');
    sock.destroy();
    await redis.stop();
  });
});

describe('startRedisServer({ clusterEnabled: true })', () => {
  it('is a single-node cluster owning every slot: any key is served there, keys of two slots in one command are CROSSSLOT; a restart keeps it', async () => {
    const redis = await startRedisServer({ clusterEnabled: true });
    try {
      const ask = async (command: string) => {
        const sock = connect(redis.port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        try {
          return await roundTrip(sock, `${command}\r\n`);
        } finally {
          sock.destroy();
        }
      };
      const info = await ask('CLUSTER INFO');
      expect(info).toContain('cluster_state:ok');
      expect(info).toContain('cluster_slots_assigned:16384');
      expect(await ask('SET {a}x 1')).toBe('+OK\r\n');
      expect(await ask('SET {b}y 1')).toBe('+OK\r\n');
      expect(await ask('MSET {a}x 1 {b}y 2')).toMatch(/^-CROSSSLOT/);
      await redis.restart();
      expect(await ask('CLUSTER INFO')).toContain('cluster_state:ok');
    } finally {
      await redis.stop();
    }
  });
});

describe('startRedisServer restart on a port another process took', () => {
  it("retries the bind and then fails with PortBusyError, never handing over the other process's server", async () => {
    const redis = await startRedisServer();
    await redis.kill();
    // Another redis-server takes the port while ours is down: an impostor that answers PING.
    const impostor = spawn(
      process.env.REDIS_SERVER_BIN ?? 'redis-server',
      ['--port', String(redis.port), '--save', ''],
      {
        stdio: 'ignore',
      },
    );
    try {
      await waitFor(async () => {
        const sock = connect(redis.port, '127.0.0.1');
        const connected = await new Promise((r) => {
          sock.once('connect', () => r(true));
          sock.once('error', () => r(false));
        });
        if (!connected) return false;
        const answer = await roundTrip(sock, 'PING\r\n', 1_000);
        sock.destroy();
        return answer === '+PONG\r\n';
      }, 'the impostor');
      await expect(redis.restart()).rejects.toBeInstanceOf(PortBusyError);
    } finally {
      impostor.kill('SIGKILL');
      await new Promise((r) => impostor.once('exit', r));
    }
    // Once the port is free again, a restart takes it.
    await redis.restart();
    const sock = connect(redis.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    expect(await roundTrip(sock, 'PING\r\n')).toBe('+PONG\r\n');
    sock.destroy();
    await redis.stop();
  });
});

describe('retryBind', () => {
  it('retries a start that found its port busy, a bounded number of times, and passes other errors on', async () => {
    let calls = 0;
    expect(
      await retryBind(async (attempt) => {
        calls++;
        if (attempt < 3) throw new PortBusyError(1234);
        return 'bound';
      }),
    ).toBe('bound');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      retryBind(async () => {
        calls++;
        throw new PortBusyError(1234);
      }, 4),
    ).rejects.toMatchObject({ code: 'port_busy', port: 1234 });
    expect(calls).toBe(4);
    await expect(retryBind(async () => Promise.reject(new Error('other')))).rejects.toThrow('other');
  });
});

describe('waitFor', () => {
  it('returns the first truthy value and names what it waited for on timeout', async () => {
    let n = 0;
    expect(await waitFor(() => ++n >= 3 && n, 'three')).toBe(3);
    await expect(waitFor(() => false, 'the impossible', 50)).rejects.toThrow(/waiting for the impossible/);
  });
});

describe('startAuthEmulatorStub', () => {
  it('answers accounts:lookup for known users only', async () => {
    const stub = await startAuthEmulatorStub();
    stub.users.set('u1', { localId: 'u1' });
    const lookup = (id: string) =>
      fetch(`http://${stub.host}/identitytoolkit.googleapis.com/v1/projects/p/accounts:lookup`, {
        method: 'POST',
        body: JSON.stringify({ localId: [id] }),
      }).then((r) => r.json());
    expect(await lookup('u1')).toMatchObject({ users: [{ localId: 'u1' }] });
    expect(await lookup('nobody')).toEqual({});
    expect(stub.lookups).toBe(2);
    expect(unsignedIdToken('p', 'u1').split('.')).toHaveLength(3);
    await stub.close();
  });
});

describe('startFirestoreEmulator', () => {
  it('starts the emulator, answers Ok, clears documents, and stops', async () => {
    const emulator = await startFirestoreEmulator('helpers-test');
    const base = `http://${emulator.host}/v1/projects/helpers-test/databases/(default)/documents`;
    const created = await fetch(`${base}/things?documentId=one`, {
      method: 'POST',
      headers: { authorization: 'Bearer owner' },
      body: JSON.stringify({ fields: { n: { integerValue: '1' } } }),
    });
    expect(created.status).toBe(200);
    expect((await fetch(`${base}/things/one`, { headers: { authorization: 'Bearer owner' } })).status).toBe(200);
    await emulator.clear();
    expect((await fetch(`${base}/things/one`, { headers: { authorization: 'Bearer owner' } })).status).toBe(404);
    await emulator.stop();
  }, 90_000);
});
