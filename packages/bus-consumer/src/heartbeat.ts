/** What a {@link Heartbeat} needs: its timing and what to do when pinging or giving up. */
export interface HeartbeatOptions {
  /** Send a ping this often. */
  pingIntervalMs: number;
  /** The peer is dead after this long without a sign of life. */
  pingTimeoutMs: number;
  /** After a late wakeup, how long a fresh ping gets to draw any frame before the peer is declared dead. */
  lateWakeupGraceMs: number;
  /** Sends one ping (protocol ping or `ping` frame); the caller checks the socket is still current. */
  ping: () => void;
  /** Called once when the peer is dead. */
  dead: () => void;
  /** The clock. @default Date.now */
  now?: () => number;
}

/**
 * Ping timer and watchdog of one connection. The caller reports every sign of
 * life: {@link Heartbeat.alive} for what the peer sends of its own accord (its
 * pings, events, replies), {@link Heartbeat.answered} for the pongs to our pings.
 * The watchdog calls `dead` after `pingTimeoutMs` of silence.
 *
 * Pings only a quiet peer: a tick of the ping timer that finds the peer heard from
 * of its own accord within `pingIntervalMs` sends nothing (within `pingTimeoutMs -
 * 2 * pingIntervalMs` when that is shorter, so that a ping always goes out, and is
 * answered, at least one interval before the watchdog's timeout; never when it is 0
 * or less). The gateway pings every
 * socket each interval, so against a live gateway the client's pings stay off and
 * each interval costs one ping and one pong instead of two of each. A protocol pong
 * does not count here (else a peer that never pings would be pinged every other
 * interval); it counts for the watchdog as any frame, and so does an app-level `pong`, which is
 * only known to be one once parsed ({@link Heartbeat.wasAnswer}). A peer that goes quiet is
 * pinged at the next tick, so the silence before a ping stays under two intervals.
 *
 * Late wakeups: browsers throttle timers in background tabs (Chrome aligns them
 * to one minute) and a sleeping laptop stops them altogether, so the watchdog
 * may run long after it was due, and the silence it then measures may be its
 * own fault (frames still queued behind the timer task). The rule: a watchdog
 * that runs more than `pingIntervalMs / 2` after it was due and finds the peer
 * silent does not give up at once; it sends a ping and gives the peer
 * `lateWakeupGraceMs` to send any frame. If nothing arrived by the time the
 * grace timer runs (itself possibly late), the peer is dead. A watchdog that
 * runs on time declares a silent peer dead at once, so a dead peer is detected
 * within `pingTimeoutMs` plus the timer's lateness plus one grace.
 */
export class Heartbeat {
  declare private readonly o: HeartbeatOptions;
  declare private readonly now: () => number;
  private lastSeen = 0;
  /** When the peer last sent something of its own accord (not a pong): it needs no ping then. */
  private lastHeard = 0;
  /** `lastHeard` before the last {@link alive} (see {@link wasAnswer}). */
  private heardBefore = 0;
  /** When the grace started (a ping was sent after a late wakeup); undefined outside a grace. */
  declare private graceSince: number | undefined;
  declare private pingTimer: ReturnType<typeof setInterval> | undefined;
  declare private watchdog: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor(options: HeartbeatOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
  }

  /** Starts pinging and watching; the connection counts as alive now. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastSeen = this.lastHeard = this.now();
    this.pingTimer = setInterval(this.tick, this.o.pingIntervalMs);
    this.schedule(this.o.pingTimeoutMs);
  }

  /** Stops both timers for good; `dead` is not called after this. */
  stop(): void {
    this.running = false;
    clearInterval(this.pingTimer);
    clearTimeout(this.watchdog);
    this.pingTimer = undefined;
    this.watchdog = undefined;
    this.graceSince = undefined;
  }

  /** Records a sign of life the peer sent of its own accord: any frame, a protocol ping. */
  alive(): void {
    this.heardBefore = this.lastHeard;
    this.lastSeen = this.lastHeard = this.now();
  }

  /** The frame just reported with {@link alive} was an answer to our ping (an app-level `pong`): still quiet. */
  wasAnswer(): void {
    this.lastHeard = this.heardBefore;
  }

  /** Records the answer to one of our pings (a protocol pong): alive, but still quiet. */
  answered(): void {
    this.lastSeen = this.now();
  }

  /** Milliseconds since the last sign of life. */
  get silentMs(): number {
    return this.now() - this.lastSeen;
  }

  /** The ping timer: a peer heard from within the interval (see the class for when shorter) needs no ping. */
  private readonly tick = (): void => {
    const { pingIntervalMs: i, pingTimeoutMs: t } = this.o;
    if (this.now() - this.lastHeard < Math.min(i, t - 2 * i)) return;
    this.o.ping();
  };

  private schedule(delayMs: number): void {
    const dueAt = this.now() + delayMs;
    this.watchdog = setTimeout(() => this.check(dueAt), delayMs);
  }

  private check(dueAt: number): void {
    if (!this.running) return;
    const now = this.now();
    if (this.graceSince !== undefined) {
      const heard = this.lastSeen >= this.graceSince;
      this.graceSince = undefined;
      if (!heard) {
        this.die();
        return;
      }
      // Heard something: judge the silence again like any other wakeup.
    }
    const silentMs = now - this.lastSeen;
    if (silentMs < this.o.pingTimeoutMs) {
      this.schedule(this.o.pingTimeoutMs - silentMs);
    } else if (now - dueAt > this.o.pingIntervalMs / 2 && this.o.lateWakeupGraceMs > 0) {
      // Woke up late: the silence may be ours (throttled or suspended), so ask once more.
      this.graceSince = now;
      this.o.ping();
      this.schedule(this.o.lateWakeupGraceMs);
    } else {
      this.die();
    }
  }

  private die(): void {
    this.stop();
    this.o.dead();
  }
}
