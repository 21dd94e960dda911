import { protocolDefaults } from '@livebus/protocol';
import { consumerDefaults, resolveOptions } from './options';

const sessionId = () => 'generated';

describe('resolveOptions', () => {
  it('gives what spreading the defaults and the options gives, keys in the same order', () => {
    for (const options of [
      { url: 'ws://127.0.0.1:1/ws' },
      { url: 'wss://rt.example.com/ws', token: 't', pingIntervalMs: 1_000, sessionId: 's1' },
      { lateWakeupGraceMs: 0, url: 'http://h/ws', route: '/r', userId: 'u' },
      { url: 'https://h/ws', maxQueuedCalls: 3, pingTimeoutMs: 90_000, lastCursor: 'e1:5' },
    ]) {
      const merged = { ...consumerDefaults, ...options };
      const spread = {
        ...merged,
        // The URL the socket opens: http(s) as ws(s).
        url: options.url.replace(/^http/, 'ws'),
        sessionId: options.sessionId ?? sessionId(),
        lateWakeupGraceMs: options.lateWakeupGraceMs ?? Math.min(merged.pingIntervalMs, 5_000),
      };
      const resolved = resolveOptions(options, sessionId);
      expect(resolved).toEqual(spread);
      expect(Object.keys(resolved)).toEqual(Object.keys(spread));
      expect(Object.getPrototypeOf(resolved)).toBe(Object.prototype);
    }
  });

  it("gives an attempt longer than the gateway's handshake timeout, so that the gateway's close (1013) comes first", () => {
    expect([consumerDefaults.handshakeTimeoutMs, protocolDefaults.handshakeTimeoutMs]).toEqual([
      protocolDefaults.clientHandshakeTimeoutMs,
      protocolDefaults.clientHandshakeTimeoutMs - 2_000,
    ]);
  });

  it('keeps an own "__proto__" key of the options a plain key, not the prototype', () => {
    const options = JSON.parse('{"url":"ws://h/ws","__proto__":{"token":"from the prototype"}}');
    const resolved = resolveOptions(options, sessionId);
    expect(Object.getPrototypeOf(resolved)).toBe(Object.prototype);
    expect(resolved.token).toBeUndefined();
  });

  it('checks the URL every time, whether or not the last one was accepted', () => {
    const ok = { url: 'ws://127.0.0.1:1/ws' };
    expect(resolveOptions(ok, sessionId).url).toBe(ok.url);
    expect(resolveOptions(ok, sessionId).url).toBe(ok.url);
    expect(() => resolveOptions({ url: '127.0.0.1:1/ws' }, sessionId)).toThrow('url has no scheme');
    expect(() => resolveOptions({ url: 'ftp://h/ws' }, sessionId)).toThrow('unknown scheme ftp:');
    expect(resolveOptions(ok, sessionId).url).toBe(ok.url);
    expect(() => resolveOptions({ url: '' }, sessionId)).toThrow('url is required');
  });

  it('checks a URL object (from JavaScript) as it is at each call, even after it was changed', () => {
    const url = new URL('ws://h/ws');
    const options = { url } as unknown as { url: string };
    expect(resolveOptions(options, sessionId).url).toBe('ws://h/ws');
    url.protocol = 'ftp:';
    expect(() => resolveOptions(options, sessionId)).toThrow('unknown scheme ftp:');
  });

  it('drops a fragment, which `ws` refuses (it would throw at every attempt)', () => {
    expect(resolveOptions({ url: 'ws://127.0.0.1:1/ws#frag' }, sessionId).url).toBe('ws://127.0.0.1:1/ws');
    expect(resolveOptions({ url: 'https://h/ws?x=1#' }, sessionId).url).toBe('wss://h/ws?x=1');
  });

  it('gives the socket a URL every browser opens: a relative one resolved against the page, http(s) as ws(s)', () => {
    const page = globalThis as { location?: { href: string } };
    page.location = { href: 'https://app.example.com/inbox/today' };
    try {
      expect(resolveOptions({ url: '/ws' }, sessionId).url).toBe('wss://app.example.com/ws');
      expect(resolveOptions({ url: 'rt/ws' }, sessionId).url).toBe('wss://app.example.com/inbox/rt/ws');
      expect(resolveOptions({ url: 'http://127.0.0.1:8080/ws' }, sessionId).url).toBe('ws://127.0.0.1:8080/ws');
      expect(resolveOptions({ url: 'wss://rt.example.com/ws' }, sessionId).url).toBe('wss://rt.example.com/ws');
    } finally {
      delete page.location;
    }
  });

  it('takes user and session ids of 1 to 128 characters, counted as code points', () => {
    const url = 'ws://h/ws';
    for (const id of ['x', 'x'.repeat(128), '\u{1F600}'.repeat(128)]) {
      expect(resolveOptions({ url, userId: id, sessionId: id }, sessionId)).toMatchObject({
        userId: id,
        sessionId: id,
      });
    }
    for (const id of ['', 'x'.repeat(129), '\u{1F600}'.repeat(129)]) {
      expect(() => resolveOptions({ url, userId: id }, sessionId)).toThrow('userId must be 1 to 128 characters');
      expect(() => resolveOptions({ url, sessionId: id }, sessionId)).toThrow('sessionId must be 1 to 128 characters');
    }
  });

  it('takes helloInUpgrade as true or false only (a string such as "false" would read as true)', () => {
    const url = 'ws://127.0.0.1:1/ws';
    expect(resolveOptions({ url }, sessionId).helloInUpgrade).toBe(true);
    expect(resolveOptions({ url, helloInUpgrade: false }, sessionId).helloInUpgrade).toBe(false);
    const wrong = { url, helloInUpgrade: 'false' } as unknown as Parameters<typeof resolveOptions>[0];
    expect(() => resolveOptions(wrong, sessionId)).toThrow('helloInUpgrade must be true or false (got "false")');
  });

  it('gives an option passed as undefined its default, as when it is left out', () => {
    const url = 'ws://127.0.0.1:1/ws';
    const plain = resolveOptions({ url }, sessionId);
    for (const key of Object.keys(consumerDefaults)) {
      const resolved = resolveOptions({ url, [key]: undefined }, sessionId);
      expect([key, resolved[key as keyof typeof resolved]]).toEqual([
        key,
        consumerDefaults[key as keyof typeof consumerDefaults],
      ]);
      expect(resolved).toEqual(plain);
      expect(Object.keys(resolved)).toEqual(Object.keys(plain));
    }
    expect(resolveOptions({ url, pingIntervalMs: undefined, lateWakeupGraceMs: undefined }, sessionId)).toEqual(plain);
  });

  it.each([
    // Each a delay Node would run after 1 ms (NaN, Infinity, over 2^31-1), or no number at all.
    ...['pingIntervalMs', 'pingTimeoutMs', 'handshakeTimeoutMs', 'rpcTimeoutMs'].flatMap((name) =>
      [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5000', null].map((value) => [name, value, 1]),
    ),
    ...['lateWakeupGraceMs', 'minReconnectDelayMs', 'maxReconnectDelayMs'].flatMap((name) =>
      [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '0'].map((value) => [name, value, 0]),
    ),
    ...[-1, Number.NaN, 2 ** 31, '0'].map((value) => ['networkRetryWindowMs', value, 0]),
  ])('refuses %s: %p with a TypeError naming both', (name, value, least) => {
    const options = { url: 'ws://h/ws', [name as string]: value } as Parameters<typeof resolveOptions>[0];
    const got = typeof value === 'string' ? `"${value}"` : String(value);
    expect(() => resolveOptions(options, sessionId)).toThrow(
      new TypeError(`${name} must be a number from ${least} to 2147483647 (got ${got})`),
    );
  });

  it('takes 0 where it means something, any number of milliseconds in range, and the longest timer', () => {
    const url = 'ws://h/ws';
    const zeros = { lateWakeupGraceMs: 0, minReconnectDelayMs: 0, maxReconnectDelayMs: 0, networkRetryWindowMs: 0 };
    expect(resolveOptions({ url, ...zeros, maxQueuedCalls: 0 }, sessionId)).toMatchObject({
      ...zeros,
      maxQueuedCalls: 0,
    });
    const longest = { pingTimeoutMs: 2 ** 31 - 1, handshakeTimeoutMs: 2 ** 31 - 1, rpcTimeoutMs: 1.5 };
    expect(resolveOptions({ url, ...longest }, sessionId)).toMatchObject(longest);
  });

  it('takes Infinity for networkRetryWindowMs: a refused connection never grows the backoff', () => {
    const options = { url: 'ws://h/ws', networkRetryWindowMs: Number.POSITIVE_INFINITY };
    expect(resolveOptions(options, sessionId).networkRetryWindowMs).toBe(Number.POSITIVE_INFINITY);
  });

  it('takes Infinity for maxQueuedCalls: no bound on the calls held', () => {
    const options = { url: 'ws://h/ws', maxQueuedCalls: Number.POSITIVE_INFINITY };
    expect(resolveOptions(options, sessionId).maxQueuedCalls).toBe(Number.POSITIVE_INFINITY);
  });

  it.each([[-1], [1.5], [Number.NaN], [Number.NEGATIVE_INFINITY], ['100']])(
    'refuses maxQueuedCalls: %p (a whole number from 0)',
    (value) => {
      const options = { url: 'ws://h/ws', maxQueuedCalls: value } as Parameters<typeof resolveOptions>[0];
      const got = typeof value === 'string' ? `"${value}"` : String(value);
      expect(() => resolveOptions(options, sessionId)).toThrow(
        new TypeError(`maxQueuedCalls must be a whole number from 0 to 2147483647 (got ${got})`),
      );
    },
  );

  it("takes whileDisconnected as 'queue' or 'fail' only (a misspelt 'Fail' would queue)", () => {
    const url = 'ws://h/ws';
    expect(resolveOptions({ url, whileDisconnected: 'fail' }, sessionId).whileDisconnected).toBe('fail');
    for (const value of ['Fail', 'reject', true]) {
      const options = { url, whileDisconnected: value } as unknown as Parameters<typeof resolveOptions>[0];
      const got = typeof value === 'string' ? `"${value}"` : String(value);
      expect(() => resolveOptions(options, sessionId)).toThrow(
        new TypeError(`whileDisconnected must be 'queue' or 'fail' (got ${got})`),
      );
    }
  });
});
