import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { connectAs, startGateway, TestClient, type TestGateway } from './helpers';

let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({ maxPayloadBytes: 4096, handshakeTimeoutMs: 300 });
});
afterAll(() => t.close());

/** After every bad client, a well-behaved one is served normally. */
afterEach(async () => {
  const { client, welcome } = await connectAs(t.url, 'u-good');
  expect(welcome.resume.status).toBe('fresh');
  const pong = client.next('pong', (f) => f.ts === 7);
  client.send({ type: 'ping', ts: 7 });
  await pong;
  await client.close();
});

describe('before the handshake', () => {
  it('malformed JSON gets a bad_frame error and close 4004', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    c.sendRaw('{"type":');
    expect(await c.next('error')).toMatchObject({ code: 'bad_frame', message: 'frame is not valid JSON' });
    expect((await c.closed).code).toBe(CloseCode.BadFrame);
  });

  it('an rpc frame before hello is refused with close 4004', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    c.send({ type: 'rpc', id: 1, method: 'REGISTRY.get_sessions', args: ['x'] });
    expect(await c.next('error')).toMatchObject({ message: 'the first frame must be hello' });
    expect((await c.closed).code).toBe(CloseCode.BadFrame);
  });

  it('no hello within the handshake timeout closes with 4002', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    expect((await c.closed).code).toBe(CloseCode.AuthTimeout);
    await waitFor(
      () => t.logs.entries.some((e) => e.event === 'ws_disconnect' && e.type === 'auth_timeout'),
      'ws_disconnect classified as auth_timeout',
    );
  });

  it('a hello with a protocol version the gateway does not speak closes with 4010, naming the versions', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    c.sendRaw(JSON.stringify({ type: 'hello', v: 99, user_id: 'x' }));
    const err = await c.next('error');
    expect(err.issues?.[0]?.path).toBe('v');
    expect(err.message).toContain('version 1');
    expect((await c.closed).code).toBe(CloseCode.UnsupportedVersion);
  });
});

describe('after the handshake', () => {
  it('malformed JSON and unknown frame types get typed errors and the session stays open', async () => {
    const { client } = await connectAs(t.url, 'u-bad');
    client.sendRaw('not json');
    await client.next('error', (f) => f.message === 'frame is not valid JSON');
    client.sendRaw(JSON.stringify({ type: 'teleport' }));
    const unknown = await client.next('error', (f) => f.issues?.[0]?.path === 'type');
    expect(unknown.code).toBe('bad_frame');
    // Still usable.
    const res = await client.call('REGISTRY.get_sessions', ['u-bad']);
    expect(res.type).toBe('rpc_result');
    await client.close();
  });

  it('wrong param types get invalid_params with the path, unknown methods unknown_method', async () => {
    const { client } = await connectAs(t.url, 'u-params');
    const bad = await client.call('REGISTRY.register_user', ['u-params', 42, '/x']);
    expect(bad).toMatchObject({ type: 'rpc_error', error: { code: 'invalid_params' } });
    if (bad.type !== 'rpc_error') throw new Error('expected an error');
    expect(bad.error.message).toContain('args.1');
    expect(bad.error.data).toEqual({ issues: [expect.objectContaining({ path: '1' })] });
    const missing = await client.call('REGISTRY.register_user', ['u-params']);
    expect(missing).toMatchObject({ type: 'rpc_error', error: { code: 'invalid_params' } });
    const unknown = await client.call('NOPE.nothing', []);
    expect(unknown).toMatchObject({ type: 'rpc_error', error: { code: 'unknown_method' } });
    await client.close();
  });

  it('an oversize frame closes with 1009', async () => {
    const { client } = await connectAs(t.url, 'u-big');
    client.sendRaw(JSON.stringify({ type: 'ping', pad: 'x'.repeat(10_000) }));
    expect((await client.closed).code).toBe(CloseCode.MessageTooBig);
  });

  it('a binary frame closes with 1003', async () => {
    const { client } = await connectAs(t.url, 'u-bin');
    client.sendRaw(Buffer.from('{"type":"ping"}'), true);
    expect((await client.closed).code).toBe(CloseCode.UnsupportedData);
  });

  it('a second hello is refused without closing', async () => {
    const { client } = await connectAs(t.url, 'u-twice');
    client.send({ type: 'hello', v: 1, user_id: 'someone-else' });
    await client.next('error', (f) => f.message === 'hello was already received');
    const res = await client.call('REGISTRY.get_sessions', ['u-twice']);
    expect(res.type).toBe('rpc_result');
    await client.close();
  });
});
