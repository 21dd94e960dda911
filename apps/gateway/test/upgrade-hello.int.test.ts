// The hello carried in the WebSocket upgrade (`Sec-WebSocket-Protocol`, see the protocol's
// upgrade-hello.ts): the session opens without a hello frame, and the hello is checked exactly as
// a first frame is (same close codes).
import {
  CloseCode,
  FRAME_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX,
  PROTOCOL_VERSION,
  UPGRADE_HELLO_PROTOCOL,
} from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { startGateway, TestClient, type TestGateway } from './helpers';
import { RawWebSocket } from './raw-ws';

const SECRET = 'a-test-secret-that-is-long-enough-1234';

/** The protocols a client offers to carry `hello` (any value: the gateway must check it). */
const offering = (hello: unknown, text = JSON.stringify(hello)) => [
  FRAME_HELLO_PROTOCOL,
  UPGRADE_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX + Buffer.from(text).toString('base64url'),
];

describe('a hello carried in the upgrade', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway(
      { authMode: 'jwt', jwtSecret: SECRET },
      { auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }) },
    );
  });
  afterAll(() => t.close());

  const token = (sub: string) => signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);

  it('opens the session without a hello frame', async () => {
    const c = new TestClient(t.url, {}, offering({ type: 'hello', v: PROTOCOL_VERSION, token: token('up1') }));
    await c.opened;
    expect(c.ws.protocol).toBe(UPGRADE_HELLO_PROTOCOL);
    expect(await c.next('welcome')).toMatchObject({ user_id: 'up1', resume: { status: 'fresh' } });
    expect(t.gw.stats().sessions).toBe(1);
    c.ws.close();
    await c.closed;
  });

  it('answers frames pipelined behind the upgrade after the welcome, in order', async () => {
    const hello = { type: 'hello', v: PROTOCOL_VERSION, token: token('up5') };
    const pings = Buffer.concat(
      [1, 2].map((ts) => RawWebSocket.frame(1, Buffer.from(JSON.stringify({ type: 'ping', ts })))),
    );
    const raw = await RawWebSocket.open(t.port, '/ws', {
      headers: [`Sec-WebSocket-Protocol: ${offering(hello).join(', ')}`],
      pipelined: pings,
    });
    await waitFor(() => raw.messages.length >= 3, 'the welcome and two pongs');
    const texts = raw.messages.map((m) => (m.kind === 'text' ? JSON.parse(m.text) : m));
    expect(texts.map((f) => [f.type, f.ts])).toEqual([
      ['welcome', undefined],
      ['pong', 1],
      ['pong', 2],
    ]);
    raw.destroy();
  });

  it('sends the close a peer asked for while its hello was being checked', async () => {
    // The token check waits until the test ends: the gateway answers the peer's close meanwhile.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = await startGateway(
      { authMode: 'jwt', jwtSecret: SECRET },
      {
        auth: {
          mode: 'jwt',
          authenticate: async (request) => {
            await held;
            return new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }).authenticate(request);
          },
        },
      },
    );
    try {
      const hello = { type: 'hello', v: PROTOCOL_VERSION, token: token('up6') };
      const raw = await RawWebSocket.open(slow.port, '/ws', {
        headers: [`Sec-WebSocket-Protocol: ${offering(hello).join(', ')}`],
        pipelined: RawWebSocket.frame(8, Buffer.from([0x03, 0xe8])),
      });
      expect(await raw.closed).toBe(1000);
    } finally {
      release();
      await slow.close();
    }
  });

  it('replays after the cursor it carries, as a hello frame does', async () => {
    const notice = (message: string) => ({
      event: 'session.notice' as const,
      data: { level: 'info' as const, message },
    });
    const first = new TestClient(t.url, {}, offering({ type: 'hello', v: 1, token: token('up2'), session_id: 'tab' }));
    await first.next('welcome');
    await t.gw.publish('up2', notice('m1'));
    const seen = await first.next('event');
    first.ws.close();
    await first.closed;
    await t.gw.publish('up2', notice('m2'));
    await t.gw.publish('up2', notice('m3'));
    const again = new TestClient(
      t.url,
      {},
      offering({ type: 'hello', v: 1, token: token('up2'), session_id: 'tab', last_cursor: seen.cursor }),
    );
    expect(await again.next('welcome')).toMatchObject({
      session_id: 'tab',
      resume: { status: 'resumed', replayed: 2 },
    });
    await again.next('event', (e) => (e.data as { message: string }).message === 'm3');
    expect(again.frames.filter((f) => f.type === 'event').map((e) => (e.data as { message: string }).message)).toEqual([
      'm2',
      'm3',
    ]);
    again.ws.close();
    await again.closed;
  });

  it.each([
    ['a token the gateway refuses', { type: 'hello', v: 1, token: 'not-a-jwt' }, CloseCode.AuthFailed],
    ['another protocol version', { type: 'hello', v: PROTOCOL_VERSION + 1 }, CloseCode.UnsupportedVersion],
    ['a frame that is not a hello', { type: 'ping' }, CloseCode.BadFrame],
    ['a hello with a field it does not know', { type: 'hello', v: 1, extra: true }, CloseCode.BadFrame],
  ])('closes on %s with the code a hello frame gets', async (_what, hello, code) => {
    const c = new TestClient(t.url, {}, offering(hello));
    await c.opened;
    expect((await c.closed).code).toBe(code);
  });

  it('closes 4004 on a carried text that is not JSON', async () => {
    const c = new TestClient(t.url, {}, offering(undefined, 'not json'));
    await c.opened;
    expect((await c.closed).code).toBe(CloseCode.BadFrame);
  });

  it('answers `livebus` to a client that offers no hello (it sends the hello as a frame)', async () => {
    const c = new TestClient(t.url, {}, [FRAME_HELLO_PROTOCOL]);
    await c.opened;
    expect(c.ws.protocol).toBe(FRAME_HELLO_PROTOCOL);
    expect(await c.hello({ token: token('up3') })).toMatchObject({ user_id: 'up3' });
    c.ws.close();
    await c.closed;
  });

  it('waits for a hello frame when `livebus.hello` comes without the hello it names', async () => {
    const c = new TestClient(t.url, {}, [FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL]);
    await c.opened;
    expect(c.ws.protocol).toBe(FRAME_HELLO_PROTOCOL);
    expect(await c.hello({ token: token('up4') })).toMatchObject({ user_id: 'up4' });
    c.ws.close();
    await c.closed;
  });
});
