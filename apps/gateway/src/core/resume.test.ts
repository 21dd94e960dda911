import { type AppEvent, type Cursor, formatCursor, parseCursor } from '@livebus/protocol';
import type { ReadResult } from '../fleet/bus/event-bus';
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

  it('says gap when the cursor is older than the stream keeps; a bus that cannot read past holes replays nothing and starts at the head', async () => {
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

  it('a gap within the epoch replays what a bus that reads past holes still retains after the cursor, then goes live', async () => {
    // A bus with readRetained (as the Redis bus, whose offsets also skip at a failover).
    class RetainingBus extends MemoryEventBus {
      async readRetained(userId: string, afterCursor: Cursor): Promise<ReadResult> {
        const head = await this.head(userId);
        const at = parseCursor(afterCursor);
        const h = parseCursor(head);
        if (!at || !h || at.epoch !== h.epoch) return { status: 'gap', events: [], cursor: head };
        for (let o = at.offset; o <= h.offset; o++) {
          const read = await this.readSince(userId, formatCursor(h.epoch, o));
          if (read.status === 'resumed') return read;
        }
        return { status: 'resumed', events: [], cursor: head };
      }
    }
    core = startCore({}, { bus: new RetainingBus({ retentionEvents: 2 }) });
    const stored = [];
    for (let i = 1; i <= 5; i++) stored.push(await core.bus.publish('alice', note(i)));
    const replay = core.hooks.next('session.replay');
    const { socket, welcome } = await core.open('alice', { last_cursor: stored[0]?.cursor });
    // Gap (2 and 3 are gone), continuing right before the oldest event still held.
    expect(welcome.resume).toEqual({ status: 'gap', cursor: stored[2]?.cursor, replayed: 2 });
    await expect(replay).resolves.toMatchObject({ events: 2, gap: true });
    await core.bus.publish('alice', note(6));
    expect(messages(socket.of('event'))).toEqual(['4', '5', '6']);
  });

  it('a gap across a failover replays what is retained, holes and all, in order, without closing the session; then goes live', async () => {
    // Offsets 2 and 4 are missing after the cursor (an event lost at a failover, the promoted
    // replica's offset skip): the read since the cursor says gap, the read past holes has 3, 5, 6.
    class FailoverBus extends MemoryEventBus {
      readonly lost = new Set([2, 4]);
      override async readSince(userId: string): Promise<ReadResult> {
        return { status: 'gap', events: [], cursor: await this.head(userId) };
      }
      async readRetained(userId: string, afterCursor: Cursor): Promise<ReadResult> {
        const read = await super.readSince(userId, afterCursor);
        if (read.status !== 'resumed') return read;
        const events = read.events.filter((e) => !this.lost.has(parseCursor(e.cursor)?.offset ?? 0));
        return { status: 'resumed', events, cursor: read.cursor };
      }
    }
    const bus = new FailoverBus();
    core = startCore({}, { bus });
    const stored = [];
    for (let i = 1; i <= 6; i++) stored.push(await bus.publish('alice', note(i)));
    const { socket, welcome } = await core.open('alice', { last_cursor: stored[0]?.cursor });
    expect(welcome.resume).toEqual({ status: 'gap', cursor: stored[1]?.cursor, replayed: 3 });
    await bus.publish('alice', note(7));
    expect(messages(socket.of('event'))).toEqual(['3', '5', '6', '7']);
    expect(socket.ended).toBeUndefined();
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
