import type { ServerFrame } from '@livebus/protocol';
import type { FirestoreEmulatorHandle } from '@livebus/test-support';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { type Firestore, getFirestore } from 'firebase-admin/firestore';
import type { ListenersConfig } from '../src/listeners/listeners-config';
import type { TestClient } from './helpers';

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

/** A Firestore client of the test itself, to write documents. */
export function testFirestore(projectId: string, name: string): { db: Firestore; close: () => Promise<void> } {
  const app = initializeApp({ projectId }, name);
  return { db: getFirestore(app), close: () => deleteApp(app) };
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
 * Writes a sentinel document and waits until `client` has it: listener snapshots are published
 * one after the other, in order, so anything a write made before it caused has arrived by then.
 * The positive marker for "nothing else arrived".
 */
export async function sentinel(db: Firestore, client: TestClient, path: string): Promise<void> {
  await db.doc(path).set({ sentinel: true });
  await waitForChange(client, path);
}

async function waitForChange(client: TestClient, path: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (changesOf(client, path).length === 0) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the sentinel ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
