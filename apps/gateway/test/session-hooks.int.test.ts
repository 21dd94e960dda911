import { CloseCode } from '@livebus/protocol';
import { connectAs, startGateway, TestClient, type TestGateway } from './helpers';

/** The session moments of a real gateway over real WebSockets, as gateway.hooks tells them. */
describe('session hooks', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway();
  });
  afterAll(() => t.close());

  it('a session opens, resumes from a cursor with its replay counted, and closes with its classified reason', async () => {
    const first = await t.gw.publish('hooked', { event: 'session.notice', data: { level: 'info', message: '1' } });
    await t.gw.publish('hooked', { event: 'session.notice', data: { level: 'info', message: '2' } });
    const { client, welcome } = await connectAs(t.url, 'hooked', { session_id: 'h1', last_cursor: first.cursor });
    expect(welcome.resume.replayed).toBe(1);
    expect(await t.hooks.waitFor('session.open', 'hooked')).toMatchObject({
      sessionId: 'h1',
      service: false,
      resumeFrom: first.cursor,
    });
    expect(await t.hooks.waitFor('session.replay', 'hooked')).toMatchObject({ sessionId: 'h1', events: 1, gap: false });
    await client.close(1000);
    expect(await t.hooks.waitFor('session.close', 'hooked')).toMatchObject({
      sessionId: 'h1',
      code: 1000,
      type: 'normal_closure',
      authenticated: true,
    });
  });

  it('a refused hello: session.auth_failed, then an unauthenticated session.close 4001', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    c.send({ type: 'hello', v: 1 });
    expect((await c.closed).code).toBe(CloseCode.AuthFailed);
    expect(await t.hooks.waitFor('session.auth_failed')).toMatchObject({ reason: 'missing', code: 'missing_token' });
    expect(await t.hooks.waitFor('session.close', undefined, (e) => e.code === CloseCode.AuthFailed)).toMatchObject({
      authenticated: false,
      type: 'auth_failed',
    });
  });
});
