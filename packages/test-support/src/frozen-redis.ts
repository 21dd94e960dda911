import { askRedis } from './redis-cluster';

/** A redis-server stopped with SIGSTOP: its connections stay open and nothing answers, until {@link thaw}. */
export interface FrozenRedis {
  readonly port: number;
  readonly pid: number;
  /** SIGCONT; nothing when thawed already or the process is gone. */
  thaw(): void;
}

/**
 * Stops the redis-server on `port` (its pid as it says itself, INFO server): a frozen process,
 * a host gone without closing its connections. Asks with redis-cli ({@link askRedis}), off the
 * test's event loop (a gateway under test may run in it).
 */
export async function freezeRedis(port: number): Promise<FrozenRedis> {
  const pid = Number(/process_id:(\d+)/.exec(await askRedis(port, 'info', 'server'))?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process_id in INFO server of port ${port}`);
  process.kill(pid, 'SIGSTOP');
  let frozen = true;
  return {
    port,
    pid,
    thaw: () => {
      if (!frozen) return;
      frozen = false;
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone already.
      }
    },
  };
}
