import type { Duplex } from 'node:stream';
import { FifoDeadlines } from './fifo-deadlines';

/** Why an upgrade was refused: too many handshakes in flight, or the event loop running late during a burst. */
export type AdmissionReason = 'handshakes' | 'lag';

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Handshakes in flight (upgrade admitted, welcome not yet sent) at or above which upgrades are refused; 0: no bound. */
  maxHandshakes: number;
  /**
   * Event-loop lag (ms) above which upgrades are refused, while at least {@link LAG_FLOOR}
   * handshakes are in flight (a loop slowed by something else, with few clients arriving,
   * admits them); 0: not measured.
   */
  maxLagMs: number;
  /** Base of the `Retry-After` header (s); each refusal says between this and twice this. */
  retryAfterS: number;
  /** An admitted upgrade whose hello has not arrived after this long stops counting (an idle socket costs nothing). @default 1_000 */
  helloGraceMs?: number;
  /** Measures the event loop's current lag (ms). @default a timer sampling every {@link LAG_SAMPLE_MS} */
  lagMs?: () => number;
  /** @default Math.random */
  random?: () => number;
  /** Monotonic clock (ms) of the built-in lag sampler; tests inject one. @default performance.now */
  now?: () => number;
  /** Called at most once per second while upgrades are refused, with the refusals since the last call. */
  onRefusing?: (summary: { refused: number; reason: AdmissionReason; handshakes: number; lagMs: number }) => void;
}

/** Period of the built-in lag sampler. */
export const LAG_SAMPLE_MS = 10;
/** Handshakes in flight below which lag alone refuses nothing. */
export const LAG_FLOOR = 64;

/** One admitted upgrade, counted until its session opens or it fails. */
export interface HandshakeTicket {
  /** The hello arrived: the ticket now counts until {@link done}, however long the hello takes. */
  helloReceived(): void;
  /** The welcome was sent, or the hello failed, or the socket closed. Idempotent. */
  done(): void;
}

/** An upgrade's answer: admit it (and count it), or refuse it with a `Retry-After` in seconds. */
export type AdmissionDecision =
  | { admit: true; ticket: HandshakeTicket }
  | { admit: false; reason: AdmissionReason; retryAfterS: number };

/**
 * Admission control for WebSocket upgrades. When many clients come back at once
 * (an instance restarted, a deploy), each one costs an HTTP parse, the WebSocket
 * handshake, a zod parse of its hello, a token check and Redis round trips; taken all
 * at once they delay everything else on the event loop, health checks included. While
 * too many handshakes are in flight, or while the loop runs late during a burst, a new
 * upgrade is answered with a cheap `503` and a jittered `Retry-After` before the
 * WebSocket handshake, and the client comes back later (`@livebus/bus-consumer` in
 * Node honours it; browsers cannot see it and back off).
 *
 *   upgrade --check()--> admitted: ticket ---> ws handshake --hello--> helloReceived() ... welcome --> done()
 *              |                                    |                                        (or close, failure)
 *              |                                    +-- no hello within helloGraceMs: stops counting
 *              +--> refused: 503 Retry-After: n (refuseUpgrade(); the socket ends at once)
 */
export class Admission {
  readonly #o: AdmissionOptions;
  readonly #random: () => number;
  readonly #now: () => number;
  #handshakes = 0;
  #refusedTotal = 0;
  #refusedSinceReport = 0;
  #lastReportAt = 0;
  #lastReason: AdmissionReason = 'lag';
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  /** Lag measured by the last sample, and when the sampler last ran (on the `now` clock). */
  #sampledLagMs = 0;
  #lastTick = 0;
  /**
   * Tickets in their hello grace: every ticket has the same grace, so one timer serves them
   * all. A timer per ticket cost a Timeout and a closure (about 200 bytes) per upgrade.
   */
  readonly #graces: FifoDeadlines<Ticket>;

  constructor(options: AdmissionOptions) {
    if (!(options.retryAfterS >= 1)) throw new TypeError(`retryAfterS must be at least 1 (got ${options.retryAfterS})`);
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    // An idle socket's upgrade stops counting (its last ticket may empty the queue: see #release).
    this.#graces = new FifoDeadlines<Ticket>(options.helloGraceMs ?? 1_000, {
      isPending: (ticket) => ticket.inGrace,
      onDue: (ticket) => ticket.done(),
    });
  }

  /**
   * Allows the lag sampler (from `listen()`: a gateway only built runs no timer). It runs
   * only while handshakes are in flight, so an idle gateway does not wake up every 10 ms.
   */
  start(): void {
    this.#started = true;
    if (this.#handshakes > 0) this.#sample();
  }

  stop(): void {
    this.#started = false;
    this.#stopSampling();
  }

  #sample(): void {
    if (this.#timer || !this.#started || this.#o.lagMs || this.#o.maxLagMs <= 0) return;
    this.#lastTick = this.#now();
    this.#sampledLagMs = 0;
    this.#timer = setInterval(() => {
      const now = this.#now();
      this.#sampledLagMs = Math.max(0, now - this.#lastTick - LAG_SAMPLE_MS);
      this.#lastTick = now;
    }, LAG_SAMPLE_MS);
    this.#timer.unref();
  }

  #stopSampling(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The event loop's lag now: what the last sample measured, or, when the sampler is
   * overdue (the loop is busy right now, e.g. with a burst of upgrades), how overdue it is.
   */
  lagMs(): number {
    if (this.#o.lagMs) return this.#o.lagMs();
    if (!this.#timer) return 0;
    return Math.max(this.#sampledLagMs, this.#now() - this.#lastTick - LAG_SAMPLE_MS);
  }

  /** Handshakes in flight now. */
  get handshakes(): number {
    return this.#handshakes;
  }

  /** Upgrades refused since start. */
  get refused(): number {
    return this.#refusedTotal;
  }

  /** Decides on one upgrade: a ticket to hand to the connection, or a refusal (counted and reported). */
  check(): AdmissionDecision {
    let reason: AdmissionReason | undefined;
    if (this.#o.maxHandshakes > 0 && this.#handshakes >= this.#o.maxHandshakes) reason = 'handshakes';
    else if (this.#o.maxLagMs > 0 && this.#handshakes >= LAG_FLOOR && this.lagMs() > this.#o.maxLagMs) reason = 'lag';
    if (!reason) return { admit: true, ticket: this.#ticket() };
    this.#refusedTotal++;
    this.#refusedSinceReport++;
    this.#lastReason = reason;
    this.#report();
    const base = this.#o.retryAfterS;
    return { admit: false, reason, retryAfterS: base + Math.floor(this.#random() * (base + 1)) };
  }

  #ticket(): HandshakeTicket {
    if (this.#handshakes++ === 0) this.#sample();
    const ticket = new Ticket(this.#release);
    this.#graces.add(ticket);
    return ticket;
  }

  /** One ticket done: shared by every ticket (a closure per ticket would stay with its connection). */
  readonly #release = (): void => {
    if (--this.#handshakes > 0) return;
    this.#stopSampling();
    // No handshake in flight: no ticket is in its grace.
    this.#graces.clear();
    // The burst is over: the refusals since the last line are told now, not with the next burst.
    if (this.#refusedSinceReport > 0) this.#report(true);
  };

  #report(atOnce = false): void {
    const now = Date.now();
    if (!this.#o.onRefusing || (!atOnce && now - this.#lastReportAt < 1_000)) return;
    this.#lastReportAt = now;
    this.#o.onRefusing({
      refused: this.#refusedSinceReport,
      reason: this.#lastReason,
      handshakes: this.#handshakes,
      lagMs: Math.round(this.lagMs()),
    });
    this.#refusedSinceReport = 0;
  }
}

/**
 * An admitted upgrade's count, and nothing of the connection: a ticket is kept for as long
 * as the handshake runs (one that held a cleared timer and two closures cost each
 * connection about 450 bytes for its whole life). Its hello grace is timed by the
 * {@link Admission} that issued it.
 */
class Ticket implements HandshakeTicket {
  #release: (() => void) | undefined;
  /** No hello yet and not done: the admission ends it when its grace is over. */
  inGrace = true;

  constructor(release: () => void) {
    this.#release = release;
  }

  helloReceived(): void {
    this.inGrace = false;
  }

  done(): void {
    const release = this.#release;
    if (!release) return;
    this.#release = undefined;
    this.inGrace = false;
    release();
  }
}

/**
 * Answers an upgrade with `503` and `Retry-After` and ends the socket: a few bytes,
 * no WebSocket handshake. A peer that keeps the socket open is dropped after 5 s.
 */
export function refuseUpgrade(socket: Duplex, retryAfterS: number): void {
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retryAfterS}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
  );
  const timer = setTimeout(() => socket.destroy(), 5_000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
