import {
  FRAME_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX,
  MAX_HELLO_PROTOCOL_CHARS,
  UPGRADE_HELLO_PROTOCOL,
} from '@livebus/protocol/client';
import WebSocket from 'ws';
import { NodeWebSocket } from './node';
import { makesProtocolPingSockets, upgradeProtocols, type WebSocketConstructor } from './socket';

const decode = (protocols: string[] | undefined) =>
  Buffer.from((protocols?.[2] ?? '').slice(HELLO_PROTOCOL_PREFIX.length), 'base64url').toString('utf8');

describe('upgradeProtocols', () => {
  const hello = JSON.stringify({ type: 'hello', v: 1, token: 'a.b-c_d', route: '/boîte/📬?x=1&y=ü' });

  it('offers livebus, livebus.hello and the hello in base64url, in that order', () => {
    const protocols = upgradeProtocols(hello);
    expect(protocols?.slice(0, 2)).toEqual([FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL]);
    expect(protocols?.[2]).toMatch(/^livebus\.hello\.[A-Za-z0-9_-]+$/);
    expect(decode(protocols)).toBe(hello);
  });

  it('encodes the same without Buffer (browsers: TextEncoder and btoa), any character included', () => {
    const withBuffer = upgradeProtocols(hello);
    const saved = globalThis.Buffer;
    // As in a browser: no Buffer global.
    (globalThis as { Buffer?: unknown }).Buffer = undefined;
    let withoutBuffer: string[] | undefined;
    try {
      withoutBuffer = upgradeProtocols(hello);
    } finally {
      globalThis.Buffer = saved;
    }
    expect(withoutBuffer).toEqual(withBuffer);
  });

  it('gives up on a hello too long for a header', () => {
    const long = JSON.stringify({ type: 'hello', v: 1, token: 'x'.repeat(MAX_HELLO_PROTOCOL_CHARS) });
    expect(upgradeProtocols(long)).toBeUndefined();
  });
});

describe('makesProtocolPingSockets', () => {
  it('knows ws, its own factory, and a socket without protocol pings', () => {
    expect(makesProtocolPingSockets(WebSocket as unknown as WebSocketConstructor)).toBe(true);
    expect(makesProtocolPingSockets(NodeWebSocket)).toBe(true);
    class BrowserLike {
      readyState = 0;
      send() {}
      close() {}
      onopen = null;
      onmessage = null;
      onclose = null;
      onerror = null;
    }
    expect(makesProtocolPingSockets(BrowserLike as unknown as WebSocketConstructor)).toBe(false);
    expect(makesProtocolPingSockets((() => ({})) as unknown as WebSocketConstructor)).toBe(false);
  });
});
