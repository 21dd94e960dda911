import type { AppEvent } from '@livebus/protocol';
import { MemoryEventBus } from '../fleet/bus/memory-event-bus';
import { type SentFrame, startCore } from './core-harness';

const note = (n: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(n) } });
const messages = (frames: SentFrame[]) => frames.map((f) => (f.data as { message: string }).message);

describe('resume', () => {
  let core: ReturnType<typeof startCore>;
  afterEach(() => core.stop());

  it('replays the events after the cursor, in order, after the welcome, then goes live (hook session.replay)', async () => {
    core = startCore();
    const stored = [];
    for (let i = 1; i <= 5; i++) stored.push(await core.bus.publish('alice', note(i)));
    const replay = core.hooks.next('session.replay');
    const { socket, welcome } = await core.open('alice', { last_cursor: stored[1]?.cursor });
    expect(welcome.resume).toEqual({ status: 'resumed', cursor: stored[4]?.cursor, replayed: 3 });
    await expect(replay).resolves.toEqual({ uid: 'alice', sessionId: welcome.session_id, events: 3, gap: false });
    expect(socket.sent[0]?.type).toBe('welcome');
    expect(messages(socket.of('event'))).toEqual(['3', '4', '5']);
    await core.bus.publish('alice', note(6));
    expect(messages(socket.of('event'))).toEqual(['3', '4', '5', '6']);
  });

  it('says gap when the cursor is older than the stream keeps, replays nothing and starts at the head', async () => {
    core = startCore({}, { bus: new MemoryEventBus({ retentionEvents: 2 }) });
    const stored = [];
    for (let i = 1; i <= 5; i++) stored.push(await core.bus.publish('alice', note(i)));
    const replay = core.hooks.next('session.replay');
    const { socket, welcome } = await core.open('alice', { last_cursor: stored[0]?.cursor });
    expect(welcome.resume).toEqual({ status: 'gap', cursor: stored[4]?.cursor, replayed: 0 });
    await expect(replay).resolves.toMatchObject({ events: 0, gap: true });
    await core.bus.publish('alice', note(6));
    expect(messages(socket.of('event'))).toEqual(['6']);
  });

  it('a fresh session (no cursor) starts at the head: no replay, no replay hook', async () => {
    core = startCore();
    const head = await core.bus.publish('alice', note(1));
    let replays = 0;
    core.hooks.on('session.replay', () => replays++);
    const { socket, welcome } = await core.open('alice');
    expect(welcome.resume).toEqual({ status: 'fresh', cursor: head.cursor, replayed: 0 });
    expect(socket.of('event')).toEqual([]);
    expect(replays).toBe(0);
  });
});
