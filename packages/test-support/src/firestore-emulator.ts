import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startChild } from './child-process';
import { freePort, PortBusyError, retryBind } from './free-port';
import { sleep } from './wait';

/** Google's Firestore emulator, started by a test on a free port. */
export interface FirestoreEmulatorHandle {
  /** `127.0.0.1:PORT`, the value for FIRESTORE_EMULATOR_HOST. */
  readonly host: string;
  readonly projectId: string;
  /** Deletes every document of the project. */
  clear(): Promise<void>;
  /**
   * Kills the emulator (SIGKILL, like an outage). Nothing holds its port while it is down;
   * {@link restart} retries the bind if another process took it meanwhile.
   */
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
  let port = await freePort();
  let child: ChildProcess = await retryBind(async (attempt) => {
    if (attempt > 1) port = await freePort();
    return launch(jar, port);
  });
  const host = `127.0.0.1:${port}`;
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
      child = await retryBind(() => launch(jar, port));
    },
    stop: kill,
  };
}

/**
 * One start on `port`; PortBusyError when the JVM exits before answering (its bind failed).
 * Another process (another jest worker's emulator) may hold the port, and answer `Ok` there
 * while this JVM is still starting, about to fail its bind: the answer counts only once this
 * JVM said on stdout that it serves on the port (it says so after binding; a failed bind says
 * nothing there and exits).
 */
async function launch(jar: string, port: number): Promise<ChildProcess> {
  const host = `127.0.0.1:${port}`;
  // Through startChild: a test that fails while the emulator runs prints the tail of its output
  // (a stalled listen stream or an UNKNOWN answer is the emulator's to explain). It is killed by
  // the tests or exits when its port is taken: neither is reported as a crash.
  const handle = startChild(
    'firestore-emulator',
    'java',
    ['-cp', jar, 'com.google.cloud.datastore.emulator.firestore.CloudFirestore', '--host=127.0.0.1', `--port=${port}`],
    { env: process.env, exits: true, keepBytes: 8_192 },
  );
  const { child } = handle;
  const bound = `API endpoint: http://${host}`;
  let ours = false;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new PortBusyError(port, { cause: new Error(`Firestore emulator exited with ${child.exitCode}`) });
    }
    // Latched: the stdout kept is its tail, which later output could push the line out of.
    ours ||= handle
      .stdout()
      .split('\n')
      .some((line) => line.trim() === bound);
    if (ours) {
      try {
        const res = await fetch(`http://${host}/`);
        if ((await res.text()).trim() === 'Ok') return child;
      } catch {
        // not answering yet
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('Firestore emulator did not start within 60 s');
    }
    await sleep(200);
  }
}
