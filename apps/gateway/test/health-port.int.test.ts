import { Worker } from 'node:worker_threads';
import { waitFor } from '@livebus/test-support';
import { startHealthThread } from '../src/transport/http/health-thread';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';
import { RawWebSocket } from './raw-ws';

describe('the health port (HEALTH_PORT)', () => {
  let t: TestGateway;
  let health: string;
  beforeAll(async () => {
    t = await startGateway({ healthPort: 0 });
    health = `http://127.0.0.1:${t.gw.healthAddress()?.port}`;
  });
  afterAll(() => t.close());

  it('answers /healthz, liveness and readiness like the main port, and nothing else', async () => {
    const { client } = await connectAs(t.url, 'hp1');
    // The health thread answers from the snapshot the main thread last sent it: wait for one
    // taken after the session opened (a connection is counted before its hello is answered).
    await waitFor(async () => {
      const body = (await httpJson(`${health}/healthz`)).body;
      return body.connections === 1 && body.sessions === 1 && body.listeners_count === 1;
    }, 'a fresh snapshot');
    const [main, side] = await Promise.all([httpJson(`${t.http}/healthz`), httpJson(`${health}/healthz`)]);
    expect(side.status).toBe(200);
    const { uptime_s: _a, ...mainBody } = main.body;
    const { uptime_s: _b, ...sideBody } = side.body;
    expect(sideBody).toEqual(mainBody);
    expect((await httpJson(`${health}/health/liveness`)).body).toEqual({ status: 'ok' });
    expect((await httpJson(`${health}/health/readiness`)).body).toMatchObject({ status: 'ready' });
    expect((await httpJson(`${health}/ws-metrics`)).status).toBe(404);
    await client.close();
  });

  it('answers while the main thread is blocked', () => {
    // The client runs in a worker and wakes this thread, blocked in Atomics.wait, with the status
    // it got: an answer can only come from a thread other than this one.
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const client = new Worker(
      `const { workerData } = require('node:worker_threads');
       const s = new Int32Array(workerData.buffer);
       require('node:http').get(workerData.url, (res) => { res.resume(); Atomics.store(s, 0, res.statusCode); Atomics.notify(s, 0); })
         .on('error', () => { Atomics.store(s, 0, -1); Atomics.notify(s, 0); });`,
      { eval: true, workerData: { url: `${health}/healthz`, buffer: shared.buffer } },
    );
    try {
      expect(Atomics.wait(shared, 0, 0, 15_000)).not.toBe('timed-out');
      expect(Atomics.load(shared, 0)).toBe(200);
    } finally {
      void client.terminate();
    }
  });
});

describe('startHealthThread', () => {
  it('answers 503 "stalled" once the main thread has sent no snapshot for stallMs', async () => {
    const thread = await startHealthThread({
      port: 0,
      host: '127.0.0.1',
      snapshot: () => ({ healthz: { status: 200, body: { status: 'ok' } }, readiness: { status: 200, body: {} } }),
      intervalMs: 60_000, // one snapshot, at start
      stallMs: 50,
    });
    try {
      const url = `http://127.0.0.1:${thread.address.port}/healthz`;
      const stalled = await waitFor(async () => {
        const r = await httpJson(url);
        return r.status === 503 ? r : undefined;
      }, 'a stalled answer');
      expect(stalled.body).toMatchObject({ status: 'stalled' });
      thread.refresh();
      await waitFor(async () => (await httpJson(url)).status === 200, 'a fresh snapshot');
    } finally {
      await thread.stop();
    }
  });

  it('is started again on the same port when it ends on its own (a bug throws in it), and says so', async () => {
    let broken = false;
    const exits: number[] = [];
    const ok = { status: 200, body: { status: 'ok' } };
    const thread = await startHealthThread({
      port: 0,
      host: '127.0.0.1',
      // A snapshot without its answers makes the thread throw at the next request, as a bug would.
      snapshot: () => (broken ? ({} as never) : { healthz: ok, readiness: ok }),
      intervalMs: 20,
      restartDelayMs: 50,
      onExit: (code) => exits.push(code),
    });
    try {
      const url = `http://127.0.0.1:${thread.address.port}/healthz`;
      broken = true;
      await waitFor(async () => {
        await httpJson(url).catch(() => undefined);
        return exits.length > 0;
      }, 'the thread to end');
      broken = false;
      await waitFor(async () => (await httpJson(url).catch(() => ({ status: 0 }))).status === 200, 'answering again');
      expect(exits).toEqual([1]);
    } finally {
      await thread.stop();
    }
  });

  it('turns readiness 503 as soon as the gateway drains', async () => {
    // A long grace: the drain waits up to 8 s for the silent peer below, so a loaded machine
    // cannot end it before the health thread has served one snapshot; the test then lets go.
    const g = await startGateway({ healthPort: 0, shutdownGraceMs: 10_000 });
    const url = `http://127.0.0.1:${g.gw.healthAddress()?.port}/health/readiness`;
    expect((await httpJson(url)).status).toBe(200);
    // A peer that never answers the close handshake keeps the drain going for a while.
    // It opens a session first: a socket that never said hello is closed at once by the drain,
    // which then ended before a loaded machine's first poll (fetch failed: the thread had stopped).
    const silent = await RawWebSocket.open(g.port);
    await silent.text(JSON.stringify({ type: 'hello', v: 1, user_id: 'silent' }));
    await waitFor(
      () => silent.messages.some((m) => m.kind === 'text' && String(m.text).includes('"welcome"')),
      'welcome',
    );
    const stopping = g.close();
    // The drain reaches the health thread as a message; the next snapshot it serves says so
    // (while the drain still runs: the silent peer holds it open).
    const body = await waitFor(async () => {
      const answer = (await httpJson(url)).body as { draining?: boolean };
      return answer.draining ? answer : undefined;
    }, 'readiness saying draining');
    expect(body).toMatchObject({ status: 'not_ready', draining: true });
    silent.destroy();
    await stopping;
    await silent.closed;
  });

  it('reports not ready until the main port listens (the health port opens first)', async () => {
    const { healthAnswers } = await import('../src/transport/http/health');
    let listening = false;
    const answers = healthAnswers({
      config: { instanceId: 'gw-x' } as never,
      listenerCounters: () => ({ attached: 0, workflows: 0 }) as never,
      stats: () => ({ connections: 0, sessions: 0, draining: false }) as never,
      redisStatus: () => 'disabled',
      startedAt: Date.now(),
      version: '0',
      isDraining: () => false,
      isListening: () => listening,
    });
    expect(answers.readiness()).toMatchObject({ status: 503, body: { status: 'not_ready' } });
    listening = true;
    expect(answers.readiness()).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('fails to start on a port already taken', async () => {
    const first = await startHealthThread({
      port: 0,
      host: '127.0.0.1',
      snapshot: () => ({ healthz: { status: 200, body: {} }, readiness: { status: 200, body: {} } }),
    });
    try {
      await expect(
        startHealthThread({ port: first.address.port, host: '127.0.0.1', snapshot: () => ({}) as never }),
      ).rejects.toThrow(/health port/);
    } finally {
      await first.stop();
    }
  });
});
