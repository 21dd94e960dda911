import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventFrame, TaskProgressUpdate } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
import { startBalancer, startFirestoreEmulator, startRedisServer, waitFor } from '@livebus/test-support';
import { BusConsumer } from '../src/index';
import { type GatewayProcess, getJson, startGatewayProcess, startWorkerProcess } from './gateway-process';

// The soak (`pnpm soak`, not in the default test command): two gateway processes
// behind a balancer, a task worker process, one Redis and the Firestore emulator,
// loopback only. Steady users receive an event every SOAK_EVERY_MS, a Firestore
// document of their own every SOAK_DOC_EVERY_MS (through the gateways' listeners) and
// start a document analysis every SOAK_TASK_EVERY_MS (run by the worker), while
// flapping users connect and leave every 1-3 s. A third of the way in Redis is killed
// for SOAK_REDIS_DOWN_MS and restarted with its data (an append-only file: a reboot or
// failover that keeps it); two thirds in one gateway is SIGKILLed and started again.
// It prints what was published, written and started, what was delivered, lost and
// duplicated, the max RSS of each process and /healthz p99, and fails on any loss.
const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const STEADY = Number(process.env.SOAK_STEADY_USERS ?? 100);
const FLAPPING = Number(process.env.SOAK_FLAPPING_USERS ?? 200);
const EVERY_MS = Number(process.env.SOAK_EVERY_MS ?? 250);
const REDIS_DOWN_MS = Number(process.env.SOAK_REDIS_DOWN_MS ?? 5_000);
/** Steady users that also get Firestore documents and start tasks. */
const DOC_USERS = Math.min(STEADY, Number(process.env.SOAK_DOC_USERS ?? 20));
const DOC_EVERY_MS = Number(process.env.SOAK_DOC_EVERY_MS ?? 1_000);
const TASK_EVERY_MS = Number(process.env.SOAK_TASK_EVERY_MS ?? 1_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid: number | undefined) => {
  try {
    // A process that just died has no VmRSS line: 0, not NaN (which would wipe its maximum).
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
};
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

it(`soak: ${SECONDS} s, ${STEADY} steady and ${FLAPPING} flapping users, documents, tasks, a Redis restart and an instance kill`, async () => {
  const [redis, firestore] = await Promise.all([
    startRedisServer({ persist: true }),
    startFirestoreEmulator('livebus-soak'),
  ]);
  const balancer = await startBalancer([]);
  const listenersFile = join(tmpdir(), `livebus-soak-listeners-${process.pid}.json`);
  writeFileSync(listenersFile, JSON.stringify({ user: [{ name: 'notes', collection: 'users/{uid}/notes' }] }));
  const env = {
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
    UNIFIED_REGISTRY_ENABLED: 'true',
    LISTENERS_FILE: listenersFile,
    FIREBASE_PROJECT_ID: firestore.projectId,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    METADATA_SERVER_DETECTION: 'none',
    LISTENER_LEASE_TTL_MS: '3000',
  };
  const gateways: GatewayProcess[] = [
    await startGatewayProcess('soak-a', env, undefined, 60_000),
    await startGatewayProcess('soak-b', env, undefined, 60_000),
  ];
  balancer.setBackends(gateways.map((g) => g.port));
  const worker = await startWorkerProcess('soak-worker', {
    REDIS_URL: redis.url,
    WORKER_CONCURRENCY: '2',
    TASK_STAGE_DELAY_MS: '50',
  });
  const publisher = createPublisher({ redisUrl: redis.url });
  const url = `ws://127.0.0.1:${balancer.port}/ws`;
  const maxRss: Record<string, number> = {};
  const sampleRss = () => {
    for (const g of gateways) maxRss[g.id] = Math.max(maxRss[g.id] ?? 0, rssMb(g.child.pid));
    maxRss.worker = Math.max(maxRss.worker ?? 0, rssMb(worker.child.pid));
    maxRss.soak = Math.max(maxRss.soak ?? 0, process.memoryUsage().rss / 1024 / 1024);
  };

  const steady = Array.from({ length: STEADY }, (_, i) => {
    const client = new BusConsumer({
      url,
      userId: `soak-steady-${i}`,
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 1_000,
    });
    const seen: number[] = [];
    const docs: string[] = [];
    const tasksCompleted: string[] = [];
    client.onClient('error', () => {});
    client.onAny((frame: EventFrame) => {
      if (frame.event === 'session.notice') seen.push(Number((frame.data as { message: string }).message));
      else if (frame.event === 'listener.change') {
        const change = frame.data as { path: string; change: string };
        if (change.change === 'added') docs.push(change.path);
      } else if (frame.event === 'task.progress_update') {
        const update = frame.data as TaskProgressUpdate;
        if (update.status === 'completed') tasksCompleted.push(update.task_id);
      }
    });
    return { userId: `soak-steady-${i}`, client, seen, docs, tasksCompleted };
  });
  for (let i = 0; i < steady.length; i += 50) await Promise.all(steady.slice(i, i + 50).map((s) => s.client.connect()));

  const until = Date.now() + SECONDS * 1_000;
  const healthMs: number[] = [];
  let healthFailures = 0;
  let flapCycles = 0;
  let published = 0;
  let publishFailures = 0;
  const workerHealthMs: number[] = [];
  let workerHealthFailures = 0;
  // Firestore documents written (acknowledged by the emulator), by path.
  const written = new Set<string>();
  // Seconds into the run at which each round of documents was written.
  const writtenAt = new Map<number, number>();
  let writeFailures = 0;
  // Tasks started (answered `queued`), and starts refused (`unavailable` while Redis was away) and retried.
  const tasksStarted = new Set<string>();
  let taskStartRefusals = 0;
  const timeline: string[] = [];
  const started = Date.now();
  const mark = (what: string) => timeline.push(`${Math.round((Date.now() - started) / 1000)} s: ${what}`);

  const health = (async () => {
    while (Date.now() < until) {
      for (const g of [...gateways]) {
        const h = await getJson(`${g.http}/healthz`).catch(() => undefined);
        if (h?.status === 200) healthMs.push(h.ms);
        else if (!g.child.killed) healthFailures++;
      }
      const w = await getJson(`${worker.http}/healthz`).catch(() => undefined);
      if (w?.status === 200) workerHealthMs.push(w.ms);
      else workerHealthFailures++;
      sampleRss();
      await sleep(250);
    }
  })();
  const flapping = Promise.all(
    Array.from({ length: FLAPPING }, async (_, i) => {
      await sleep(Math.random() * 2_000);
      while (Date.now() < until) {
        const client = new BusConsumer({ url, userId: `soak-flap-${i}` });
        client.onClient('error', () => {});
        await client.connect().then(
          () => flapCycles++,
          () => {},
        );
        await sleep(1_000 + Math.random() * 2_000);
        client.close();
      }
    }),
  );
  const publishing = (async () => {
    for (let round = 1; Date.now() < until; round++) {
      const batch = publisher.publishMany(
        steady.map((s) => ({
          userId: s.userId,
          event: { event: 'session.notice', data: { level: 'info', message: String(round) } },
        })),
      );
      batch.catch(() => {
        publishFailures++;
      });
      published = round;
      await sleep(EVERY_MS);
    }
  })();
  const docUsers = steady.slice(0, DOC_USERS);
  const documents = (async () => {
    for (let round = 1; Date.now() < until; round++) {
      await Promise.all(
        docUsers.map(async (u) => {
          const path = `users/${u.userId}/notes/d${round}`;
          const res = await fetch(
            `http://${firestore.host}/v1/projects/${firestore.projectId}/databases/(default)/documents/users/${u.userId}/notes?documentId=d${round}`,
            {
              method: 'POST',
              headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
              body: JSON.stringify({ fields: { round: { integerValue: String(round) } } }),
            },
          ).catch(() => undefined);
          if (res?.ok) {
            written.add(path);
            writtenAt.set(round, Math.round((Date.now() - started) / 1000));
          } else writeFailures++;
        }),
      );
      await sleep(DOC_EVERY_MS);
    }
  })();
  const tasks = (async () => {
    const content = Array.from({ length: 20 }, (_, i) => `Sentence ${i} of the soak. Tasks run on the worker.`).join(
      ' ',
    );
    for (let round = 1; Date.now() < until; round++) {
      const u = docUsers[round % docUsers.length];
      if (!u) break;
      const jobId = `soak-${round}`;
      // A start refused while Redis is away is retried with the same job id (docs/tasks.md).
      for (let tries = 0; tries < 20 && Date.now() < until + 30_000; tries++) {
        const ok = await u.client
          .rpc('TASK.start_document_analysis', u.userId, { content }, jobId)
          .then(() => true)
          .catch(() => false);
        if (ok) {
          tasksStarted.add(`doc_analysis_${jobId}`);
          break;
        }
        taskStartRefusals++;
        await sleep(500);
      }
      await sleep(TASK_EVERY_MS);
    }
  })();
  const faults = (async () => {
    await sleep((SECONDS * 1_000) / 3);
    mark('redis killed');
    await redis.kill();
    await sleep(REDIS_DOWN_MS);
    await redis.restart();
    mark('redis back');
    await sleep((SECONDS * 1_000) / 3 - REDIS_DOWN_MS);
    const victim = gateways[0] as GatewayProcess;
    mark(`${victim.id} SIGKILLed`);
    await victim.stop('SIGKILL');
    gateways.shift();
    await sleep(1_000);
    gateways.unshift(await startGatewayProcess('soak-a2', env, victim.port, 60_000));
    mark('soak-a2 started in its place');
  })();
  await Promise.all([health, flapping, publishing, documents, tasks, faults]);
  mark('publishing stopped');
  await publisher.flush(30_000);
  await Promise.all(steady.map((s) => waitFor(() => s.seen.length >= published, 'delivery', 30_000).catch(() => {})));
  const docsDelivered = () => docUsers.reduce((n, u) => n + new Set(u.docs).size, 0);
  const tasksDone = () => new Set(steady.flatMap((u) => u.tasksCompleted)).size;
  await waitFor(() => docsDelivered() >= written.size, 'documents delivered', 30_000).catch(() => {});
  await waitFor(() => tasksDone() >= tasksStarted.size, 'tasks completed', 60_000).catch(() => {});
  mark('deliveries settled');

  let lost = 0;
  let duplicated = 0;
  // Which events went missing, per steady user (their index): the first few of each.
  const lostEvents: Record<string, number[]> = {};
  for (const [i, s] of steady.entries()) {
    const unique = new Set(s.seen);
    duplicated += s.seen.length - unique.size;
    for (let k = 1; k <= published; k++) {
      if (unique.has(k)) continue;
      lost++;
      const missing = lostEvents[`user ${i}`] ?? [];
      if (missing.length < 10) lostEvents[`user ${i}`] = [...missing, k];
    }
  }
  let docsLost = 0;
  let docsDuplicated = 0;
  // Seconds into the run of the rounds with a lost or a duplicated document, and how many.
  const lostAt: Record<string, number> = {};
  const duplicatedAt: Record<string, number> = {};
  const roundOf = (path: string) => writtenAt.get(Number(/\/d(\d+)$/.exec(path)?.[1])) ?? -1;
  for (const u of docUsers) {
    const unique = new Set(u.docs);
    docsDuplicated += u.docs.length - unique.size;
    const counted = new Set<string>();
    for (const path of u.docs) {
      if (counted.has(path)) duplicatedAt[`${roundOf(path)} s`] = (duplicatedAt[`${roundOf(path)} s`] ?? 0) + 1;
      counted.add(path);
    }
    for (const path of written) {
      if (path.startsWith(`users/${u.userId}/`) && !unique.has(path)) {
        docsLost++;
        lostAt[`${roundOf(path)} s`] = (lostAt[`${roundOf(path)} s`] ?? 0) + 1;
      }
    }
  }
  const completions = steady.flatMap((u) => u.tasksCompleted);
  const tasksLost = [...tasksStarted].filter((t) => !completions.includes(t)).length;
  const tasksDuplicated = completions.length - new Set(completions).size;
  const figures = {
    seconds: SECONDS,
    steadyUsers: STEADY,
    flappingUsers: FLAPPING,
    flapCycles,
    eventsPublished: published * STEADY,
    eventsDelivered: steady.reduce((n, s) => n + new Set(s.seen).size, 0),
    lost,
    lostEvents,
    duplicated,
    publishFailures,
    outbox: publisher.stats(),
    documents: {
      users: DOC_USERS,
      written: written.size,
      delivered: docsDelivered(),
      lost: docsLost,
      duplicated: docsDuplicated,
      writeFailures,
      lostAt,
      duplicatedAt,
    },
    tasks: {
      started: tasksStarted.size,
      completed: new Set(completions).size,
      lost: tasksLost,
      duplicated: tasksDuplicated,
      startsRefusedAndRetried: taskStartRefusals,
      workerExit: worker.child.exitCode,
    },
    maxRssMb: Object.fromEntries(Object.entries(maxRss).map(([k, v]) => [k, Math.round(v)])),
    healthz: { samples: healthMs.length, p99Ms: Math.round(percentile(healthMs, 99)), failures: healthFailures },
    workerHealthz: {
      samples: workerHealthMs.length,
      p99Ms: Math.round(percentile(workerHealthMs, 99)),
      failures: workerHealthFailures,
    },
    timeline,
  };
  process.stdout.write(`\nSOAK FIGURES\n${JSON.stringify(figures, null, 2)}\n`);
  for (const s of steady) s.client.close();
  await publisher.close();
  const workerAlive = worker.child.exitCode === null;
  void worker.stop('SIGTERM');
  await Promise.all([...gateways.map((g) => g.stop('SIGTERM')), worker.exited]);
  await balancer.close();
  await Promise.all([redis.stop(), firestore.stop()]);
  rmSync(listenersFile, { force: true });
  expect({
    lost,
    duplicated,
    publishFailures,
    docsLost,
    docsDuplicated,
    tasksLost,
    tasksDuplicated,
    workerAlive,
  }).toEqual({
    lost: 0,
    duplicated: 0,
    publishFailures: 0,
    docsLost: 0,
    docsDuplicated: 0,
    tasksLost: 0,
    tasksDuplicated: 0,
    workerAlive: true,
  });
}, 600_000);
