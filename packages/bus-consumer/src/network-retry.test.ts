// The backoff after a lost session, against sockets scripted attempt by attempt (fake clock): which
// failures double the ceiling and which are retried within the first one (`networkRetryWindowMs`).
import { welcomeFrame } from '../test/welcome-frame';
import { BusConsumer } from './consumer';
import type { WebSocketLike } from './transport/socket';

/** What the next socket does: open and welcome, fail before TCP connects, or get an HTTP 502. */
type Step = 'welcome' | 'refused' | 'http502';

const script: Step[] = [];
const sockets: ScriptedSocket[] = [];

/** A socket whose one attempt plays the next step of `script` (10 ms after it is made). */
class BrowserLikeSocket implements WebSocketLike {
  readyState = 0;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;

  constructor(_url: string) {
    const step = script.shift() ?? 'refused';
    sockets.push(this);
    setTimeout(() => this.play(step), 10);
  }

  protected play(step: Step): void {
    if (step === 'welcome') {
      this.readyState = 1;
      this.onopen?.({});
      return;
    }
    this.onerror?.({});
    this.end(1006);
  }

  send(data: string): void {
    const frame = JSON.parse(data) as { type: string; session_id?: string };
    if (frame.type !== 'hello') return;
    const welcome = welcomeFrame(frame);
    setTimeout(() => this.onmessage?.({ data: JSON.stringify(welcome) }), 1);
  }

  close(): void {
    this.end(1000);
  }

  /** The gateway went away (killed): the open socket ends with 1006. */
  kill(): void {
    this.end(1006);
  }

  protected end(code: number): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

/** As `ws` in Node: protocol pings, the HTTP answer of a refused upgrade, and the error's syscall. */
class NodeLikeSocket extends BrowserLikeSocket {
  readonly #listeners = new Map<string, Array<(...args: unknown[]) => void>>();

  on(event: string, listener: (...args: unknown[]) => void): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return this;
  }

  #emit(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) listener(...args);
  }

  ping(): void {}

  terminate(): void {
    this.end(1006);
  }

  protected override play(step: Step): void {
    if (step === 'refused') {
      // What `ws` emits when nothing listens: the system error, then the close.
      this.#emit(
        'error',
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' }),
      );
      this.end(1006);
    } else if (step === 'http502') {
      // The consumer terminates the socket itself on a refused upgrade.
      this.#emit('unexpected-response', {}, { statusCode: 502, headers: {}, resume: () => {} });
    } else super.play(step);
  }
}

type ScriptedSocket = BrowserLikeSocket;

/** The backoff's calls: the attempt number it was asked for, and when (ms after the session was lost). */
interface Call {
  attempt: number;
  atMs: number;
}

function start(Socket: new (url: string) => WebSocketLike, options: { networkRetryWindowMs?: number } = {}) {
  const calls: Call[] = [];
  let lostAt = 0;
  const client = new BusConsumer({
    url: 'ws://gateway.test/ws',
    userId: 'u',
    WebSocket: Socket,
    // A fixed delay: what is asserted is the attempt number each retry's delay is drawn for.
    backoff: (attempt) => {
      calls.push({ attempt, atMs: Date.now() - lostAt });
      return 100;
    },
    ...options,
  });
  client.onClient('error', () => {});
  const opened = client.connect().catch(() => {});
  return {
    client,
    calls,
    opened,
    /** Kills the open socket (the gateway died) and counts time from then. */
    lose() {
      lostAt = Date.now();
      calls.length = 0;
      (sockets[sockets.length - 1] as BrowserLikeSocket).kill();
    },
  };
}

describe('the reconnect backoff after a loss (networkRetryWindowMs)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    script.length = 0;
    sockets.length = 0;
  });
  afterEach(() => jest.useRealTimers());

  it('retries refused connects within the first ceiling for the window, then doubles it', async () => {
    script.push('welcome');
    const c = start(NodeLikeSocket);
    await jest.advanceTimersByTimeAsync(20);
    expect(c.client.state).toBe('open');

    c.lose(); // every later attempt is refused: the gateway is restarting, nothing listens
    await jest.advanceTimersByTimeAsync(3_500);
    c.client.close();
    await c.opened;

    const inWindow = c.calls.filter((call) => call.atMs < 3_000);
    const after = c.calls.filter((call) => call.atMs >= 3_000);
    // The loss itself, then about 27 refused attempts (110 ms each): all drawn from the first ceiling.
    expect(inWindow.length).toBeGreaterThan(20);
    expect(inWindow.map((call) => call.attempt)).toEqual(inWindow.map(() => 0));
    // After the window each refusal counts: the loss was attempt 0, so 1, 2, 3, ...
    expect(after.length).toBeGreaterThan(2);
    expect(after.map((call) => call.attempt)).toEqual(after.map((_, k) => k + 1));
  });

  it.each([
    ['after attempts that reached a gateway (HTTP 502)', 'http502', NodeLikeSocket, {}],
    ['in a browser, which cannot tell a refused connect from a refused upgrade', 'refused', BrowserLikeSocket, {}],
    ['with networkRetryWindowMs 0', 'refused', NodeLikeSocket, { networkRetryWindowMs: 0 }],
  ] as const)('doubles the ceiling at once %s', async (_, failure, Socket, options) => {
    script.push('welcome', failure, failure, failure);
    const c = start(Socket, options);
    await jest.advanceTimersByTimeAsync(20);
    c.lose();
    await jest.advanceTimersByTimeAsync(330);
    c.client.close();
    await c.opened;
    expect(c.calls.map((call) => call.attempt)).toEqual([0, 1, 2, 3]);
  });

  it('counts the window from each loss: after a welcome, refused connects start again at the first ceiling', async () => {
    script.push('welcome');
    const c = start(NodeLikeSocket);
    await jest.advanceTimersByTimeAsync(20);
    c.lose(); // refused for 4 s: past the window, the ceiling grows
    await jest.advanceTimersByTimeAsync(4_000);
    expect(Math.max(...c.calls.map((call) => call.attempt))).toBeGreaterThan(1);

    script.push('welcome'); // the gateway is back: the next attempt opens
    // Open for more than 10 s: a session that lasted resets the backoff (a shorter one would not).
    await jest.advanceTimersByTimeAsync(20_000);
    expect(c.client.state).toBe('open');

    c.lose(); // lost again: the first second of this outage is retried within the first ceiling
    await jest.advanceTimersByTimeAsync(1_000);
    c.client.close();
    await c.opened;
    expect(c.calls.length).toBeGreaterThan(5);
    expect(c.calls.map((call) => call.attempt)).toEqual(c.calls.map(() => 0));
  });
});
