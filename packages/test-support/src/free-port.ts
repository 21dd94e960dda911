import { createServer } from 'node:net';
import { sleep } from './wait';

/**
 * Asks the kernel for a TCP port on 127.0.0.1 that is free right now. It is a probe: the probe
 * socket is closed before this returns, so another process (a parallel jest worker, an outgoing
 * connection) may take the port before the caller binds it. Prefer listening on port 0 where the
 * server allows it; where it does not, bind through {@link retryBind}.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The error {@link retryBind}'s `start` throws when its port was taken by another process. */
export class PortBusyError extends Error {
  override readonly name = 'PortBusyError';
  readonly code = 'port_busy';
  constructor(
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`port ${port} is taken by another process`, options);
  }
}

/**
 * Runs `start` (a server binding a port it was given) until it does not throw
 * {@link PortBusyError}, at most `attempts` times, waiting a little longer each time. A port
 * released a moment ago (a killed server restarting on it) can be held briefly by another
 * process; a port held for good fails with the last PortBusyError. @default attempts 10
 */
export async function retryBind<T>(start: (attempt: number) => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (error) {
      if (!(error instanceof PortBusyError) || attempt >= attempts) throw error;
      await sleep(50 * attempt);
    }
  }
}
