import { withRedisTimeout } from '@livebus/publisher';
import type { Logger } from '../../logger';
import {
  type HeldSessions,
  heartbeatStepTimeoutMs,
  type InstanceInfo,
  type InstanceThroughput,
  type Presence,
  PresenceRefreshError,
} from '../presence/presence';

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
  /** How long a re-announce or the announce may go unanswered (a frozen node), as a user's refresh step. */
  readonly #stepMs: number;
  #timer: NodeJS.Timeout | undefined;
  #beating = false;
  #announcing = false;
  #stopped = false;

  constructor(options: FleetHeartbeatOptions) {
    this.#o = options;
    this.#stepMs = heartbeatStepTimeoutMs(options.instanceTtlMs);
  }

  /** One beat. Never rejects: a presence store away is logged and the next beat tries again. */
  async beat(): Promise<void> {
    // A beat still waiting for its users (a node that answers nothing, until their steps time
    // out) is not joined by another. Its announce does not hold the next beat: the announce's
    // keys live on one node for the whole fleet, and with that node frozen the users on the
    // others would go unrefreshed too.
    if (this.#beating || this.#stopped) return;
    this.#beating = true;
    const failures: string[] = [];
    let counts: Counts | undefined;
    try {
      counts = await this.#keepUsers(failures);
    } finally {
      this.#beating = false;
    }
    const announced = counts !== undefined && (await this.#announce(counts, failures));
    if (failures.length > 0) this.#o.logger.warn('fleet_heartbeat_error', { error: failures.join('; '), announced });
  }

  /**
   * Refreshes this instance's users and writes the lost ones again; resolves with the counts to
   * announce, or `undefined` when the presence store is away (nothing to announce then).
   */
  async #keepUsers(failures: string[]): Promise<Counts | undefined> {
    const o = this.#o;
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
      // Stopped meanwhile (shutdown): its sessions are closing, nothing is written again.
      if (this.#stopped) return counts;
      const written = await Promise.allSettled(lost.map((uid) => withRedisTimeout(o.reannounce(uid), this.#stepMs)));
      const notWritten = written.filter((r) => r.status === 'rejected');
      if (notWritten.length > 0) {
        failures.push(`${notWritten.length} lost user(s) could not be written again: ${String(notWritten[0]?.reason)}`);
      }
      return counts;
    } catch (error) {
      failures.push(String(error));
      return undefined;
    }
  }

  /** Announces the instance, unless stopped or the last beat's announce still waits; resolves with whether it was. */
  async #announce(counts: Counts, failures: string[]): Promise<boolean> {
    const o = this.#o;
    // Stopped (shutdown): the instance was or is about to be retired, and must not be listed again.
    if (this.#stopped) return false;
    if (this.#announcing) {
      failures.push('the last announce is still waiting for Redis');
      return false;
    }
    this.#announcing = true;
    try {
      const info = { id: o.instanceId, ...counts, startedAt: o.startedAt, version: o.version };
      await withRedisTimeout(o.presence.announce(info, o.instanceTtlMs), this.#stepMs);
      return true;
    } catch (error) {
      failures.push(`announce: ${String(error)}`);
      return false;
    } finally {
      this.#announcing = false;
    }
  }

  /** Beats now and then every third of the TTL, on a timer that does not hold the process open. */
  start(): void {
    if (this.#timer) return;
    this.#stopped = false;
    this.#timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.#o.instanceTtlMs / 3)));
    this.#timer.unref();
    void this.beat();
  }

  /**
   * Stops beating (shutdown); the instance's entries then expire unless retired first. A beat in
   * flight writes nothing more: no lost user again, no announce (which would list the instance
   * again after its retire).
   */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** What a beat announces besides the instance's id, start and version. */
type Counts = Omit<InstanceInfo, 'id' | 'startedAt' | 'version' | 'lastSeen'>;
