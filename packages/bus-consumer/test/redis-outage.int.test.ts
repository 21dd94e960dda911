import { Agent, request } from 'node:http';
import type { EventFrame } from '@livebus/protocol';
import {
  type Balancer,
  type ChildHandle,
  type RedisServerHandle,
  startBalancer,
  startChild,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import { BusConsumer } from '../src/index';
import { type GatewayProcess, getJson, startGatewayProcess } from './gateway-process';

// Redis SIGKILLed for 3 s and for 10 s under a steady publish rate from two
// publishers: a backend process using @livebus/publisher, and POST /publish on
// a gateway. Two gateway processes behind a balancer, real clients. After 3 s Redis
// comes back with its data (append-only file, fsync always): every event once, the
// sessions open. After 10 s it comes back empty (a new epoch): each session resumes once
// and hears `gap`, and gets every event once except, at the epoch's change, those in
// flight at the kill (docs/reliability.md, "Redis restarted empty").

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let redis: RedisServerHandle;
let balancer: Balancer;
const gateways: GatewayProcess[] = [];
/** What a test left running when it failed half way (clients, publishers), ended by afterAll. */
const leftRunning: Array<() => void> = [];

beforeAll(async () => {
  redis = await startRedisServer({ persist: true });
  balancer = await startBalancer([]);
});
afterAll(async () => {
  for (const stop of leftRunning.splice(0)) stop();
  await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
  await balancer.close();
  await redis.stop();
});

/** Every event a client handles, by publisher tag. */
function follow(userId: string) {
  const client = new BusConsumer({
    url: `ws://127.0.0.1:${balancer.port}/ws`,
    userId,
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
  });
  leftRunning.push(() => client.close());
  const seen: Record<string, number[]> = { p: [], h: [] };
  /** The epoch of each number in `seen`, at the same index. */
  const epochs: Record<string, string[]> = { p: [], h: [] };
  // Each event's cursor by tag and number, for the failure message: a repeat across epochs
  // (Redis restarted empty) reads differently from one within an epoch.
  const cursors = new Map<string, string[]>();
  // What the client went through, for the failure message: a loss reads differently after
  // a close and a `gap` (a resume that could not replay) than on a session that stayed open.
  const log: string[] = [];
  client.onClient('error', (e) => log.push(`error ${e instanceof Error ? e.message : String(e)}`));
  client.onClient('gap', (g) => log.push(`gap ${JSON.stringify(g)}`));
  client.onClient('close', (c) => log.push(`close ${JSON.stringify(c)}`));
  client.onAny((frame: EventFrame) => {
    const message = String((frame.data as { message: string }).message);
    const [tag, n] = message.split(':');
    seen[tag as string]?.push(Number(n));
    epochs[tag as string]?.push(frame.cursor.slice(0, frame.cursor.lastIndexOf(':')));
    cursors.set(message, [...(cursors.get(message) ?? []), frame.cursor]);
  });
  return { client, seen, epochs, log, cursors };
}

/** How `seen` differs from 1..sent: counts, the numbers missing (as ranges), repeats, out-of-order steps. */
function difference(seen: number[], sent: number): string {
  const got = new Set(seen);
  const missing: string[] = [];
  for (let n = 1; n <= sent; n++) {
    if (got.has(n)) continue;
    let end = n;
    while (end + 1 <= sent && !got.has(end + 1)) end++;
    missing.push(end === n ? `${n}` : `${n}-${end}`);
    n = end;
  }
  const backwards = seen.filter((n, i) => i > 0 && n <= (seen[i - 1] as number)).length;
  return `got ${seen.length}/${sent}, missing [${missing.join(',')}], repeated ${seen.length - got.size}, backwards ${backwards}`;
}

/** Throws, saying what kind of loss it was, when a follower did not get every event once in order on one session. */
function reportLoss(index: number, f: ReturnType<typeof follow>, sentP: number, sentH: number): void {
  const p = difference(f.seen.p ?? [], sentP);
  const h = difference(f.seen.h ?? [], sentH);
  const exact = (seen: number[] | undefined, sent: number) =>
    seen?.length === sent && seen.every((n, i) => n === i + 1);
  const reconnects = f.client.counters.reconnects;
  if (exact(f.seen.p, sentP) && exact(f.seen.h, sentH) && reconnects === 0) return;
  const repeats = [...f.cursors].filter(([, at]) => at.length > 1).map(([m, at]) => `${m} at ${at.join(' and ')}`);
  throw new Error(
    `follower ${index}: reconnects ${reconnects}; p: ${p}; h: ${h}; repeats: [${repeats.join('; ')}]; client events: ${JSON.stringify(f.log)}`,
  );
}

/**
 * Redis came back empty: the numbers of the first epoch must be 1..a and those of the second
 * b..sent, each once and in order, and the session resumed once and heard `gap` (what the old
 * epoch held after its position may be lost). Where the epoch changes, an event
 * in flight at the kill may be missing (Redis answered its publisher, then died before it
 * wrote the event to the subscribers) or come twice (the subscribers got it, the publisher
 * did not get the answer and stored it again in the new epoch). Returns b - (a + 1) per tag:
 * negative for repeats, positive for events lost.
 */
function acrossEmptyRestart(index: number, f: ReturnType<typeof follow>, sent: Record<string, number>) {
  const boundary: Record<string, number> = {};
  const problems: string[] = [];
  for (const tag of ['p', 'h']) {
    const seen = f.seen[tag] ?? [];
    const epochs = f.epochs[tag] ?? [];
    const change = epochs.findIndex((e) => e !== epochs[0]);
    const before = change < 0 ? seen : seen.slice(0, change);
    const after = change < 0 ? [] : seen.slice(change);
    const a = before.length;
    const b = after[0] ?? a + 1;
    boundary[tag] = b - (a + 1);
    const consecutive = (ns: number[], from: number) => ns.every((n, i) => n === from + i);
    if (new Set(epochs).size > 2) problems.push(`${tag}: ${new Set(epochs).size} epochs`);
    if (!consecutive(before, 1)) problems.push(`${tag}: before the new epoch ${difference(before, a)}`);
    if (!consecutive(after, b) || (after.at(-1) ?? a) !== sent[tag])
      problems.push(`${tag}: in the new epoch, from ${b}: ${difference(after, sent[tag] as number)}`);
    if (Math.abs(boundary[tag] as number) > 3) problems.push(`${tag}: ${boundary[tag]} at the epoch's change`);
  }
  const gaps = f.log.filter((line) => line.startsWith('gap ')).length;
  if (f.client.counters.reconnects !== 1 || gaps !== 1)
    problems.push(`reconnects ${f.client.counters.reconnects} and gap ${gaps} times (once each expected)`);
  if (problems.length > 0) {
    throw new Error(`follower ${index}: ${problems.join('; ')}; client events: ${JSON.stringify(f.log)}`);
  }
  return boundary;
}

/** The backend publisher, in its own process (its stderr kept for a failure report). */
function startPublisherProcess(userId: string): {
  child: ChildHandle['child'];
  started: Promise<unknown>;
  result: Promise<Record<string, unknown>>;
} {
  const publisher = startChild('steady-publisher', process.execPath, [`${__dirname}/fixtures/steady-publisher.mjs`], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url, USER_ID: userId, TAG: 'p', EVERY_MS: '20' },
    stdin: true,
  });
  leftRunning.push(() => {
    if (publisher.child.exitCode === null) publisher.child.kill('SIGKILL');
  });
  // It prints its result and exits once stdin ends; a crash fails the wait with its stderr.
  const result = publisher.exited.then(() => publisher.waitForLine((l) => !l.started, 'the publisher result', 0));
  return {
    child: publisher.child,
    started: publisher.waitForLine((l) => l.started === true, 'the publisher started'),
    result,
  };
}

/** POST over a keep-alive agent. */
function post(agent: Agent, url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * POSTs `h:<n>` to one gateway every `everyMs`, never waiting for the previous
 * answer. One connection carries them, so they reach the gateway in the order
 * made: requests racing on several connections have no order to keep.
 */
function httpPublisher(gateway: GatewayProcess, userId: string, everyMs: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let n = 0;
  const answers: Array<Promise<{ status: number; queued: boolean }>> = [];
  const timer = setInterval(() => {
    const message = `h:${++n}`;
    answers.push(
      post(agent, `${gateway.http}/publish`, {
        user_id: userId,
        event: { event: 'session.notice', data: { level: 'info', message } },
      }).then((res) => ({ status: res.status, queued: Boolean(res.body.queued) })),
    );
  }, everyMs);
  leftRunning.push(() => {
    clearInterval(timer);
    agent.destroy();
  });
  return {
    stop: async () => {
      clearInterval(timer);
      const settled = await Promise.all(answers);
      agent.destroy();
      return { sent: n, answers: settled };
    },
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

async function outage(downMs: number, { empty }: { empty: boolean }) {
  const a = await startGatewayProcess(`gw-out-${downMs}-a`, { REDIS_URL: redis.url });
  const b = await startGatewayProcess(`gw-out-${downMs}-b`, { REDIS_URL: redis.url });
  gateways.push(a, b);
  balancer.setBackends([a.port, b.port]);
  const user = `outage-${downMs}`;
  // Round robin: one client on each instance.
  const followers = [follow(user), follow(user)];
  for (const f of followers) await f.client.connect();
  expect(new Set(followers.map((f) => f.client.session?.instance_id)).size).toBe(2);

  const backend = startPublisherProcess(user);
  await backend.started;
  const http = httpPublisher(a, user, 40);
  await sleep(1_000);

  await redis.kill();
  const killedAt = Date.now();
  await waitFor(async () => (await getJson(`${a.http}/healthz`)).body.redis === 'down', 'redis down on healthz', 5_000);
  const health = await getJson(`${a.http}/healthz`);
  const live = await getJson(`${a.http}/health/liveness`);
  const ready = await getJson(`${a.http}/health/readiness`);
  // Redis is every task's: no check fails for it (ECS would replace every task at once).
  expect([health.status, live.status, ready.status]).toEqual([200, 200, 200]);
  expect(ready.body.redis).toBe('down');
  // /healthz stays fast on the other instance all through the outage.
  const healthMs: number[] = [];
  const polling = (async () => {
    while (Date.now() - killedAt < downMs) {
      const h = await getJson(`${b.http}/healthz`);
      expect(h.status).toBe(200);
      healthMs.push(h.ms);
      await sleep(100);
    }
  })();
  // A registry RPC needs Redis: it answers `unavailable` at once, not after seconds of retries.
  const rpcMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const error = await followers[0]?.client.rpc('REGISTRY.register_user', user, `s${i}`, '/').catch((e: unknown) => e);
    rpcMs.push(performance.now() - started);
    expect(error).toMatchObject({ code: 'unavailable' });
    await sleep(100);
  }
  await polling;
  await redis.restart({ empty });
  await sleep(1_500);

  backend.child.stdin?.end();
  const [fromBackend, fromHttp] = await Promise.all([backend.result, http.stop()]);
  expect(fromBackend).toMatchObject({ failed: 0, drained: true });
  // Every POST accepted (the refused ones listed, by number, if not).
  expect(fromHttp.answers.flatMap((x, i) => (x.status === 202 ? [] : [{ n: i + 1, status: x.status }]))).toEqual([]);
  const sentP = fromBackend.published as number;
  const sentH = fromHttp.sent;
  const boundaries: Array<Record<string, number>> = [];
  for (const [index, f] of followers.entries()) {
    // Events arrive in order: once the last of each publisher is there, nothing more is on its way.
    await waitFor(() => f.seen.p?.at(-1) === sentP && f.seen.h?.at(-1) === sentH, 'every event', 15_000).catch(
      () => {},
    );
    if (empty) {
      boundaries.push(acrossEmptyRestart(index, f, { p: sentP, h: sentH }));
    } else {
      reportLoss(index, f, sentP, sentH);
      // Each once, in the order published, per publisher.
      expect(f.seen.p).toEqual(range(sentP));
      expect(f.seen.h).toEqual(range(sentH));
      // The sessions stayed open through the outage.
      expect(f.client.counters.reconnects).toBe(0);
    }
    f.client.close();
  }
  const statusLines = a.logs.filter((l) => l.event === 'redis_status');
  const figures = {
    downMs,
    published: { backend: sentP, http: sentH },
    httpQueued: fromHttp.answers.filter((x) => x.queued).length,
    backendQueued: (fromBackend.stats as { queued: number }).queued,
    rpcUnavailableMs: Math.round(Math.max(...rpcMs)),
    healthzMaxMs: Math.round(Math.max(...healthMs)),
    redisStatusLines: statusLines.length,
    ...(empty ? { atTheEpochChange: boundaries } : {}),
  };
  process.stdout.write(`redis outage figures: ${JSON.stringify(figures)}\n`);
  // down, a few repeats with a doubling interval, up: not one line per reconnect attempt.
  expect(statusLines.length).toBeLessThanOrEqual(2 + Math.ceil(Math.log2(downMs / 1_000 + 1)) + 1);
  expect(statusLines.at(-1)).toMatchObject({ status: 'up' });
  for (const g of [a, b]) expect(await g.stop('SIGTERM')).toBe(0);
  return figures;
}

describe('Redis killed under a steady publish rate', () => {
  it('for 3 s, back with its data: every event of both publishers delivered once and in order, sessions open, health honest', async () => {
    const f = await outage(3_000, { empty: false });
    // Shorter than the retry window: nothing had to wait in the outbox.
    expect(f.httpQueued).toBe(0);
  }, 60_000);

  it('for 10 s, back empty: events outlive their retries, wait in the outbox, and are delivered in the new epoch once Redis is back; sessions resume and hear gap', async () => {
    const f = await outage(10_000, { empty: true });
    expect(f.backendQueued).toBeGreaterThan(0);
    expect(f.httpQueued).toBeGreaterThan(0);
  }, 90_000);
});
