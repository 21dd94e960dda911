import type { Logger } from '../../logger';
import { type HeldSessions, type InstanceThroughput, type Presence, PresenceRefreshError } from '../presence/presence';

/** What {@link FleetHeartbeat} reads and calls. */
export interface FleetHeartbeatOptions {
  presence: Presence;
  instanceId: string;
  /** How long an instance's entries outlive its last beat; it beats every third of it (at least every 100 ms). */
  instanceTtlMs: number;
  /** This instance's sessions now: each user's session ids it serves, and the counts it announces. */
  local: () => { held: Iterable<HeldSessions>; sessions: number; users: number } & InstanceThroughput;
  /** Writes a user's sessions into the presence directory again (their entries expired anyway). */
  reannounce: (userId: string) => Promise<void>;
  /** When this instance started, ms since the epoch (the cluster view's uptime). */
  startedAt: number;
  version: string;
  logger: Logger;
}

/**
 * The fleet heartbeat: keeps this instance's sessions alive in the presence
 * directory (a killed instance's expire within INSTANCE_TTL_MS) and announces
 * the instance for the cluster view. Entries that expired anyway (a stalled
 * process) are written again.
 */
export class FleetHeartbeat {
  readonly #o: FleetHeartbeatOptions;
  #timer: NodeJS.Timeout | undefined;
  #beating = false;

  constructor(options: FleetHeartbeatOptions) {
    this.#o = options;
  }

  /** One beat. Never rejects: a presence store away is logged and the next beat tries again. */
  async beat(): Promise<void> {
    // A beat still waiting (a node that answers nothing, until its steps time out) is not joined by another.
    if (this.#beating) return;
    this.#beating = true;
    try {
      await this.#beat();
    } finally {
      this.#beating = false;
    }
  }

  async #beat(): Promise<void> {
    const o = this.#o;
    const failures: string[] = [];
    let announced = false;
    try {
      const { held, ...counts } = o.local();
      let lost: readonly string[] = [];
      try {
        lost = await o.presence.refresh(o.instanceId, held);
      } catch (error) {
        // Some users' nodes away: the others were refreshed, and the instance is still announced.
        if (!(error instanceof PresenceRefreshError)) throw error;
        failures.push(String(error));
        lost = error.lost;
      }
      const written = await Promise.allSettled(lost.map((uid) => o.reannounce(uid)));
      const notWritten = written.filter((r) => r.status === 'rejected');
      if (notWritten.length > 0) {
        failures.push(`${notWritten.length} lost user(s) could not be written again: ${String(notWritten[0]?.reason)}`);
      }
      await o.presence.announce(
        { id: o.instanceId, ...counts, startedAt: o.startedAt, version: o.version },
        o.instanceTtlMs,
      );
      announced = true;
    } catch (error) {
      failures.push(String(error));
    }
    if (failures.length > 0) o.logger.warn('fleet_heartbeat_error', { error: failures.join('; '), announced });
  }

  /** Beats now and then every third of the TTL, on a timer that does not hold the process open. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.#o.instanceTtlMs / 3)));
    this.#timer.unref();
    void this.beat();
  }

  /** Stops beating (shutdown); the instance's entries then expire unless retired first. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
