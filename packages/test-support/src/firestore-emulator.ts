import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from './free-port';
import { sleep } from './wait';

/** Google's Firestore emulator, started by a test on a free port. */
export interface FirestoreEmulatorHandle {
  /** `127.0.0.1:PORT`, the value for FIRESTORE_EMULATOR_HOST. */
  readonly host: string;
  readonly projectId: string;
  /** Deletes every document of the project. */
  clear(): Promise<void>;
  /** Kills the emulator (SIGKILL, like an outage); the port stays reserved for {@link restart}. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (the emulator keeps nothing). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_JAR = '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';

/**
 * Starts the emulator (Debian package google-cloud-cli-firestore-emulator) and
 * waits until `GET /` answers `Ok`. The jar cannot be downloaded here, so a
 * missing jar fails with a message saying what to install.
 */
export async function startFirestoreEmulator(projectId = 'livebus-test'): Promise<FirestoreEmulatorHandle> {
  const jar = process.env.FIRESTORE_EMULATOR_JAR ?? DEFAULT_JAR;
  if (!existsSync(jar)) {
    throw new Error(
      `Firestore emulator jar not found at ${jar}: install the Debian package google-cloud-cli-firestore-emulator or set FIRESTORE_EMULATOR_JAR`,
    );
  }
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let child: ChildProcess = await launch(jar, host, port);
  const kill = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  return {
    host,
    projectId,
    clear: async () => {
      const res = await fetch(`http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`, {
        method: 'DELETE',
      });
      if (!res.ok) throw new Error(`clearing the emulator failed: ${res.status}`);
    },
    kill,
    restart: async () => {
      await kill();
      child = await launch(jar, host, port);
    },
    stop: kill,
  };
}

async function launch(jar: string, host: string, port: number): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    'java',
    ['-cp', jar, 'com.google.cloud.datastore.emulator.firestore.CloudFirestore', '--host=127.0.0.1', `--port=${port}`],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Firestore emulator exited with ${child.exitCode}`);
    try {
      const res = await fetch(`http://${host}/`);
      if ((await res.text()).trim() === 'Ok') return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('Firestore emulator did not start within 60 s');
    }
    await sleep(200);
  }
}
