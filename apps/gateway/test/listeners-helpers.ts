import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ServerFrame } from '@livebus/protocol';
import { userKeys } from '@livebus/publisher/redis';
import {
  type ChildHandle,
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
} from '@livebus/test-support';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { type DocumentReference, type Firestore, getFirestore } from 'firebase-admin/firestore';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import type { GatewayConfig } from '../src/config';
import type { ListenersConfig } from '../src/listeners/listeners-config';
import { startGateway, type TestClient, type TestGateway } from './helpers';
import { startGatewayProcess } from './task-processes';

/** The listeners of the tests: a per-user collection, a filtered shared one, and the workflow document. */
export const testListeners: ListenersConfig = {
  user: [
    { name: 'notifications', collection: 'users/{uid}/notifications' },
    { name: 'jobs', collection: 'jobs', where: [['owner_id', '==', '{uid}']] },
  ],
  workflow: { document: 'jobs/{job_id}', owner_field: 'owner_id' },
};

/** Points firebase-admin at the emulator (read when a Firestore client is made). */
export function useEmulator(emulator: FirestoreEmulatorHandle): void {
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  process.env.METADATA_SERVER_DETECTION = 'none';
}

/**
 * A Firestore client of the test itself, to write documents. Its close terminates the client
 * (deleteApp does not), which fails while a listener of the test is still registered: a
 * listener left open would otherwise keep retrying after the emulator stops, into later test
 * files of the same jest worker.
 */
export function testFirestore(projectId: string, name: string): { db: Firestore; close: () => Promise<void> } {
  const app = initializeApp({ projectId }, name);
  const db = getFirestore(app);
  return {
    db,
    close: async () => {
      await db.terminate();
      await deleteApp(app);
    },
  };
}

/**
 * The emulator answers its first queries slowly (JVM warm-up, many seconds): one
 * listener round trip before the tests keeps that out of their timings.
 */
export async function warmUp(db: Firestore): Promise<void> {
  await db.doc('warm-up/doc').set({ at: Date.now() });
  await new Promise<void>((resolve, reject) => {
    const stop = db.collection('warm-up').onSnapshot((s) => {
      if (s.size > 0) {
        stop();
        resolve();
      }
    }, reject);
  });
}

type EventFrame = Extract<ServerFrame, { type: 'event' }>;

/** The `listener.change` events a client received for one document path. */
export function changesOf(client: TestClient, path?: string): EventFrame[] {
  return client
    .events()
    .filter((e) => e.event === 'listener.change' && (path === undefined || (e.data as { path: string }).path === path));
}

/**
 * Creates a document, retrying while the emulator comes back (a restarted emulator
 * answers its first commits with UNKNOWN or UNAVAILABLE). `create`, not `set`: a retry
 * of a commit that did land fails with ALREADY_EXISTS instead of writing twice.
 */
export async function createWhenReachable(db: Firestore, path: string, data: Record<string, unknown>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await db.doc(path).create(data);
      return;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 6 /* ALREADY_EXISTS: an earlier attempt landed */) return;
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * Writes a document that nothing listens to yet (a test's starting state), retrying when the
 * emulator, on a loaded host, answers the commit with UNKNOWN, UNAVAILABLE or DEADLINE_EXCEEDED.
 * Only before any listener: a retried write that had landed writes the same data once more.
 */
export async function seed(db: Firestore, path: string, data: Record<string, unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.doc(path).set(data);
      return;
    } catch (error) {
      if (attempt >= 5 || !isTransientCommitError(error)) throw error;
      await sleep(200);
    }
  }
}

/** Codes the emulator answers a commit with on a loaded host: UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE. */
function isTransientCommitError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 2 || code === 4 || code === 14;
}

/**
 * A write while a client listens. The emulator may answer a commit it applied with UNKNOWN: it
 * applies the write, then fails notifying a listen stream that a client just closed ("Stream is
 * already completed" in its log; seen once on a loaded host). A write answered so is tried again
 * only when a read shows it did not land: one that landed and was written again would make a
 * second change event. Landed means: deleted for `delete`; for `set` and `update`, every given
 * field holds the given value (plain JSON values only, and the write must change the document).
 */
export async function write(
  db: Firestore,
  path: string,
  how: 'set' | 'update' | 'delete',
  data: Record<string, unknown> = {},
): Promise<void> {
  const ref = db.doc(path);
  for (let attempt = 1; ; attempt++) {
    try {
      if (how === 'delete') await ref.delete();
      else if (how === 'update') await ref.update(data);
      else await ref.set(data);
      return;
    } catch (error) {
      if (!isTransientCommitError(error)) throw error;
      if (await landed(ref, how, data, error)) return;
      if (attempt >= 5) throw error;
      await sleep(200);
    }
  }
}

/** Whether `ref` reads as the write left it; the read is tried again while the emulator cannot answer it. */
async function landed(
  ref: DocumentReference,
  how: 'set' | 'update' | 'delete',
  data: Record<string, unknown>,
  writeError: unknown,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      const snapshot = await ref.get();
      if (how === 'delete') return !snapshot.exists;
      return (
        snapshot.exists && Object.entries(data).every(([field, value]) => isDeepStrictEqual(snapshot.get(field), value))
      );
    } catch (error) {
      // Not knowing whether it landed, the write is not tried again: it might make a second change event.
      if (attempt >= 5 || !isTransientCommitError(error)) throw writeError;
      await sleep(200);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes a sentinel document and waits until `client` has it: listener snapshots are published
 * one after the other, in order, so anything a write made before it caused has arrived by then.
 * The positive marker for "nothing else arrived".
 */
export async function sentinel(db: Firestore, client: TestClient, path: string): Promise<void> {
  await write(db, path, 'set', { sentinel: true });
  await waitForChange(client, path);
}

async function waitForChange(client: TestClient, path: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (changesOf(client, path).length === 0) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the sentinel ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A gateway in a child process (the built `dist/main.js`), on Redis and the emulator, with
 * `listeners` as its LISTENERS_FILE and `env` on top; resolves once it is ready. Started by
 * startGatewayProcess: PORT=0, the port read from its gateway_listening line (a port probed free
 * beforehand could be taken by another worker before the child bound it, and the child exit on
 * EADDRINUSE unnoticed); a child that exits before it is ready fails the start at once.
 * `readyTimeoutMs` is kept for the callers: startGatewayProcess allows 20 s for the listening line.
 */
export async function startListenersChild(options: {
  instanceId: string;
  redisUrl: string;
  emulator: FirestoreEmulatorHandle;
  listeners: unknown;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}): Promise<{ handle: ChildHandle; port: number; url: string }> {
  const { instanceId, redisUrl, emulator } = options;
  const file = join(tmpdir(), `livebus-listeners-${instanceId}-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(options.listeners));
  const handle = await startGatewayProcess(redisUrl, {
    INSTANCE_ID: instanceId,
    AUTH_MODE: 'none',
    UNIFIED_REGISTRY_ENABLED: 'false',
    LISTENERS_FILE: file,
    FIREBASE_PROJECT_ID: emulator.projectId,
    FIRESTORE_EMULATOR_HOST: emulator.host,
    METADATA_SERVER_DETECTION: 'none',
    ...options.env,
  });
  return { handle, port: handle.port, url: `ws://127.0.0.1:${handle.port}/ws` };
}

/** How many times each document path has a listener.change in `uid`'s stream on standalone Redis. */
export async function listenerChangesInStream(redisUrl: string, uid: string): Promise<Map<string, number>> {
  const admin = new Redis(redisUrl);
  try {
    const counts = new Map<string, number>();
    for (const [, fields] of await admin.xrange(userKeys(uid).stream, '-', '+')) {
      const frame = JSON.parse(fields[fields.indexOf('d') + 1] as string) as { event: string; data: { path: string } };
      if (frame.event === 'listener.change') counts.set(frame.data.path, (counts.get(frame.data.path) ?? 0) + 1);
    }
    return counts;
  } finally {
    admin.disconnect();
  }
}

/**
 * What the tests of a failing listener holder share: a Firestore emulator and a Redis of their
 * own, a writer's Firestore client (warmed up), and a gateway in this process that survives the
 * holder (a child process the test starts) and takes its listeners over.
 */
export interface HolderFailureRig {
  emulator: FirestoreEmulatorHandle;
  redis: RedisServerHandle;
  db: Firestore;
  survivor: TestGateway;
  /** Stops all of the above. */
  stop(): Promise<void>;
}

/** Starts a {@link HolderFailureRig}: `name` names the project, the writer and the survivor. */
export async function startHolderFailureRig(name: string, survivor: Partial<GatewayConfig>): Promise<HolderFailureRig> {
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const [emulator, redis] = await Promise.all([startFirestoreEmulator(`livebus-${name}`), startRedisServer()]);
    stops.push(() => Promise.all([emulator.stop(), redis.stop()]));
    useEmulator(emulator);
    const { db, close } = testFirestore(emulator.projectId, `${name}-writer`);
    stops.push(close);
    await warmUp(db);
    const gateway = await startGateway(
      {
        instanceId: `gw-${name}-survivor`,
        redisUrl: redis.url,
        listeners: testListeners,
        firestoreProjectId: emulator.projectId,
        ...survivor,
      },
      composePorts,
    );
    stops.push(() => gateway.close());
    return { emulator, redis, db, survivor: gateway, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The Firestore client re-opens a failed listen stream by itself, eleven times with a backoff
 * (1 s, x1.5, up to 60 s: about 113 s in all), before it reports an error. Its test hook
 * (`setTimeoutHandler`, what its own tests use) makes those waits 20 ms at most here, so an
 * outage reaches the gateway within a second. The watch's 120 s idle timer goes through the
 * same hook and is not armed (a timer made by the hook cannot be cleared).
 */
export function hurryFirestoreRetries(): void {
  const path = require.resolve('@google-cloud/firestore/build/src/backoff', {
    paths: [dirname(require.resolve('firebase-admin/firestore'))],
  });
  const { setTimeoutHandler } = require(path) as { setTimeoutHandler(h: (f: () => void, ms: number) => void): void };
  const { WATCH_IDLE_TIMEOUT_MS } = require(path.replace(/backoff\.js$/, 'watch.js')) as {
    WATCH_IDLE_TIMEOUT_MS: number;
  };
  setTimeoutHandler((f, ms) => {
    if (ms !== WATCH_IDLE_TIMEOUT_MS) setTimeout(f, Math.min(ms, 20));
  });
}
