import { type AppEvent, CloseCode, type NoticeFrame } from '@livebus/protocol';
import { type LiveEvent, liveEventOf } from '../fleet/bus/event-bus';
import { LiveFrame } from '../fleet/bus/live-frame';
import { MemoryEventBus } from '../fleet/bus/memory-event-bus';
import type { Logger } from '../logger';
import { Connection, Session } from './session';
import { SessionHub, STREAM_LOST_SPREAD_MS } from './session-hub';
import type { GatewaySocket } from './socket';

const note = (n: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(n) } });
const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** A socket that records what was written to it. */
function socket() {
  const sent: string[] = [];
  const closed: number[] = [];
  const s: Omit<GatewaySocket, 'isOpen'> & { isOpen: boolean; sent: string[]; closed: number[] } = {
    sent,
    closed,
    isOpen: true,
    bufferedAmount: 0,
    send: (text) => sent.push(text),
    close: (code) => closed.push(code),
    terminate() {},
    ping() {},
  };
  return s;
}

function open(uid: string, id: string, lastCursor?: string) {
  const s = socket();
  const session = new Session(id, { uid, service: false }, '', new Connection(s, undefined), lastCursor);
  return {
    session,
    sent: s.sent,
    closed: s.closed,
    messages: () => s.sent.map((t) => (JSON.parse(t) as { data: { message: string } }).data.message),
  };
}

describe('SessionHub', () => {
  let bus: MemoryEventBus;
  let hub: SessionHub;
  beforeEach(() => {
    bus = new MemoryEventBus();
    hub = new SessionHub({ bus, logger: quiet, maxBufferedBytes: 1_000_000 });
  });
  afterEach(() => bus.close());

  it('writes a frame given as bytes as they are to a socket with nothing queued; as text otherwise and when held', () => {
    const text = (n: number) =>
      JSON.stringify({ type: 'event', cursor: `ep:${n}`, ts: 1, event: 'session.notice', data: {} });
    const frame = (n: number) => new LiveFrame('ep', n, undefined, Buffer.from(text(n)));
    const s = socket();
    const bytes: Buffer[] = [];
    const withBytes = Object.assign(s, { bufferedAmount: 0, sendBytes: (b: Buffer) => bytes.push(b) });
    const session = new Session('a', { uid: 'u', service: false }, '', new Connection(withBytes, undefined), 'ep:0');
    // Held while the replay is prepared: text only, no view of the bus's read buffer.
    expect(hub.deliver(session, frame(1))).toBe(false);
    expect(session.pending?.map((e) => [e.cursor, e.text, e.bytes])).toEqual([['ep:1', text(1), undefined]]);
    session.pending = undefined;
    expect(hub.deliver(session, frame(1))).toBe(true);
    expect(bytes.map(String)).toEqual([text(1)]);
    // Something queued: the frame waits behind it as text of its own.
    withBytes.bufferedAmount = 10;
    expect(hub.deliver(session, frame(2))).toBe(true);
    expect([bytes.length, s.sent]).toEqual([1, [text(2)]]);
    expect(session.lastCursor).toBe('ep:2');
  });

  it('writes live events to every session of the user, each once, and counts the writes', async () => {
    const a = open('u', 'a');
    const b = open('u', 'b');
    await hub.add(a.session);
    await hub.add(b.session);
    a.session.pending = undefined;
    b.session.pending = undefined;
    expect(hub.countOf('u')).toBe(2);
    expect(hub.sessionCount).toBe(2);
    await bus.publish('u', note(1));
    await bus.publish('other', note(2));
    expect(a.messages()).toEqual(['1']);
    expect(b.messages()).toEqual(['1']);
    expect(hub.deliveredCount).toBe(2);
    expect(a.sent[0]).toBe(b.sent[0]);
  });

  it('closes a session whose write throws (1011, logged as an error) and still writes the event to the user’s other sessions', async () => {
    const errors: Array<[string, Record<string, unknown>]> = [];
    const logger: Logger = { ...quiet, error: (event, fields = {}) => void errors.push([event, fields]) };
    hub = new SessionHub({ bus, logger, maxBufferedBytes: 1_000_000 });
    const a = open('u', 'a');
    const b = open('u', 'b');
    const c = open('u', 'c');
    for (const s of [a, b, c]) {
      // As the handshake opens it.
      s.session.connection.session = s.session;
      await hub.add(s.session);
      s.session.pending = undefined;
    }
    const cursor = a.session.lastCursor;
    a.session.connection.socket.send = () => {
      throw new Error('write after end');
    };
    await bus.publish('u', note(1));
    expect(b.messages()).toEqual(['1']);
    expect(c.messages()).toEqual(['1']);
    expect(a.closed).toEqual([CloseCode.InternalError]);
    // Its client resumes from where it was: the event it did not get is replayed to it.
    expect(a.session.lastCursor).toBe(cursor);
    expect(errors.map(([event, f]) => [event, f.where, f.uid, f.session_id])).toEqual([
      ['ws_handler_error', 'deliver', 'u', 'a'],
    ]);
    expect(String(errors[0]?.[1].error)).toMatch(/write after end/);
  });

  it('drops events at or below the session position, compares offsets as numbers, and takes another epoch as new', async () => {
    const first = await bus.publish('u', note(1));
    for (let i = 2; i <= 10; i++) await bus.publish('u', note(i));
    const nine = (await bus.readSince('u', first.cursor)).events;
    const s = open('u', 's', nine[7]?.cursor); // at offset 9
    await hub.add(s.session);
    s.session.pending = undefined;
    for (const e of nine) hub.deliver(s.session, liveEventOf(e));
    // "10" > "9" as numbers, though not as strings.
    expect(s.messages()).toEqual(['10']);
    expect(s.session.lastCursor).toBe(nine[8]?.cursor);
    hub.deliver(s.session, liveEventOf({ ...(nine[0] as (typeof nine)[0]), cursor: 'other-epoch:1' }));
    expect(s.messages()).toEqual(['10', '2']);
    expect(s.session.lastCursor).toBe('other-epoch:1');
  });

  it('closes a session that missed events (a jump in offsets) rather than write on past the hole', async () => {
    const events = [];
    for (let i = 1; i <= 4; i++) events.push(liveEventOf(await bus.publish('u', note(i))));
    const [one, two, , four] = events as [LiveEvent, LiveEvent, LiveEvent, LiveEvent];
    const s = open('u', 's', one.cursor);
    await hub.add(s.session);
    s.session.pending = undefined;
    hub.deliver(s.session, two);
    hub.deliver(s.session, four);
    expect(s.messages()).toEqual(['2']);
    expect(s.closed).toEqual([CloseCode.ServiceRestart]);
    expect(s.session.lastCursor).toBe(two.cursor);

    // A new epoch starts at 1: anything later means its first events were missed too.
    const t = open('u', 't', one.cursor);
    await hub.add(t.session);
    t.session.pending = undefined;
    hub.deliver(t.session, { ...two, epoch: 'other-epoch', offset: 2, cursor: 'other-epoch:2' });
    expect(t.sent).toEqual([]);
    expect(t.closed).toEqual([CloseCode.ServiceRestart]);
  });

  it('closes the sessions at a position of a stream the bus found made anew (they resume and hear gap); not those of the new epoch', async () => {
    let tell: ((uid: string, epoch: string) => void) | undefined;
    const lossy = Object.assign(new MemoryEventBus(), {
      onStreamLost: (listener: (uid: string, epoch: string) => void) => {
        tell = listener;
      },
    });
    const own = new SessionHub({ bus: lossy, logger: quiet, maxBufferedBytes: 1_000_000, random: () => 0.5 });
    const old = open('u', 'old', 'ep-old:3');
    const fresh = open('u', 'fresh', 'ep-new:0');
    const elsewhere = open('v', 'elsewhere', 'ep-old:3');
    for (const o of [old, fresh, elsewhere]) {
      await own.add(o.session);
      o.session.pending = undefined;
    }
    tell?.('u', 'ep-old');
    expect([old.closed, fresh.closed, elsewhere.closed]).toEqual([[CloseCode.ServiceRestart], [], []]);
    // A reconnect hint first, drawn over STREAM_LOST_SPREAD_MS (the whole fleet may be told at once).
    const notices = old.sent.map((f) => JSON.parse(f) as NoticeFrame);
    expect(notices).toEqual([
      expect.objectContaining({ type: 'notice', kind: 'reconnect', reconnect_after_ms: STREAM_LOST_SPREAD_MS / 2 }),
    ]);
    // Told again (another catch-up): a session closing already is not closed twice.
    tell?.('u', 'ep-old');
    expect(old.closed).toEqual([CloseCode.ServiceRestart]);
    expect(old.sent).toHaveLength(1);
    await lossy.close();
  });

  it('takes a write refused by a closing socket as no hole: not closed, not counted as service_restart', async () => {
    const events = [];
    for (let i = 1; i <= 4; i++) events.push(liveEventOf(await bus.publish('u', note(i))));
    const [one, two, three, four] = events as [LiveEvent, LiveEvent, LiveEvent, LiveEvent];
    const sock = socket();
    const conn = new Connection(sock, undefined);
    const session = new Session('s', { uid: 'u', service: false }, '', conn, undefined);
    await hub.add(session);
    session.pending = undefined;
    hub.deliver(session, one);
    // The client closed: the socket is closing, writes are refused from here on.
    sock.isOpen = false;
    hub.deliver(session, two);
    hub.deliver(session, three);
    hub.deliver(session, four);
    expect(sock.sent).toHaveLength(1);
    expect(sock.closed).toEqual([]);
    expect(conn.localCloseReason).toBeUndefined();
    // The position stays at what was written: the client resumes from there.
    expect(session.lastCursor).toBe(one.cursor);
    expect(hub.deliveredCount).toBe(1);
  });

  it('holds live events in pending until the replay is written', async () => {
    const s = open('u', 's');
    await hub.add(s.session);
    await bus.publish('u', note(1));
    expect(s.sent).toEqual([]);
    expect(s.session.pending).toHaveLength(1);
  });

  it('keeps one session per id: a replacement takes the place of the old one, which is then not removed', async () => {
    const old = open('u', 'x');
    const next = open('u', 'x');
    const other = open('u', 'y');
    await hub.add(old.session);
    await hub.add(next.session);
    expect(hub.sessionCount).toBe(1);
    expect(hub.get('u', 'x')).toBe(next.session);
    expect(hub.remove(old.session)).toBe(false);
    await hub.add(other.session);
    expect(hub.sessionsOf('u')).toEqual([next.session, other.session]);
    expect(hub.remove(next.session)).toBe(true);
    expect(hub.sessionsOf('u')).toEqual([other.session]);
    expect(hub.get('u', 'y')).toBe(other.session);
    expect(hub.remove(other.session)).toBe(true);
    expect(hub.has('u')).toBe(false);
    expect(hub.sessionCount).toBe(0);
    expect(hub.describe()).toEqual([]);
  });
  it("lists each user's open session ids for the fleet heartbeat; not a reserved user's, nor a removed session's", async () => {
    const a = open('u', 'a');
    const b = open('u', 'b');
    const c = open('v', 'c');
    for (const s of [a, b, c]) await hub.add(s.session);
    hub.reserve('w');
    hub.remove(b.session);
    expect([...hub.sessionIdsByUser()]).toEqual([
      ['u', ['a']],
      ['v', ['c']],
    ]);
    await hub.add(b.session);
    expect([...hub.sessionIdsByUser()]).toEqual([
      ['u', ['a', 'b']],
      ['v', ['c']],
    ]);
    hub.release('w');
  });

  describe('reserve / release (a hello subscribes while presence is written)', () => {
    /** The bus, counting listen and unlisten calls. */
    function counted() {
      const calls: string[] = [];
      const listen = bus.listen.bind(bus);
      const unlisten = bus.unlisten.bind(bus);
      bus.listen = (uid, fn, target) => {
        calls.push(`listen ${uid}`);
        return listen(uid, fn, target);
      };
      bus.unlisten = (uid, fn, target) => {
        calls.push(`unlisten ${uid}`);
        return unlisten(uid, fn, target);
      };
      return calls;
    }
    const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

    it('subscribes once at reserve; the session added afterwards takes that subscription and hears what follows', async () => {
      const calls = counted();
      hub.reserve('u');
      expect(calls).toEqual(['listen u']);
      // Reserved: no session, not counted, not seen.
      expect([hub.has('u'), hub.userCount, hub.sessionCount]).toEqual([false, 0, 0]);
      await settled();
      await bus.publish('u', note(1)); // heard by nobody: before the session
      const s = open('u', 's');
      const added = hub.add(s.session);
      hub.release('u');
      await added;
      s.session.pending = undefined;
      await bus.publish('u', note(2));
      expect(s.messages()).toEqual(['2']);
      expect(calls).toEqual(['listen u']);
      expect(hub.remove(s.session)).toBe(true);
      await settled();
      expect(calls).toEqual(['listen u', 'unlisten u']);
    });

    it('undoes a reservation no session took (a refused hello)', async () => {
      const calls = counted();
      hub.reserve('u');
      hub.reserve('u');
      hub.release('u');
      await settled();
      expect(calls).toEqual(['listen u']);
      hub.release('u');
      await settled();
      expect(calls).toEqual(['listen u', 'unlisten u']);
      expect(hub.has('u')).toBe(false);
      // The next session subscribes afresh.
      const s = open('u', 's');
      await hub.add(s.session);
      expect(calls).toEqual(['listen u', 'unlisten u', 'listen u']);
    });

    it("keeps the live subscription for a hello being admitted when the user's last session leaves meanwhile", async () => {
      const calls = counted();
      const old = open('u', 'a');
      await hub.add(old.session);
      hub.reserve('u');
      expect(hub.remove(old.session)).toBe(true);
      expect(hub.has('u')).toBe(false);
      await settled();
      expect(calls).toEqual(['listen u']);
      const next = open('u', 'b');
      const added = hub.add(next.session);
      hub.release('u');
      await added;
      next.session.pending = undefined;
      await bus.publish('u', note(1));
      expect(next.messages()).toEqual(['1']);
      expect(old.sent).toEqual([]);
      expect(calls).toEqual(['listen u']);
      expect(hub.sessionCount).toBe(1);
    });

    /**
     * The bus's listen, held: the first call waits for the test to `live()` it (then it
     * listens on the memory bus) or `fail()` it; later calls listen at once.
     */
    function heldListen() {
      const listen = bus.listen.bind(bus);
      let live = () => {};
      let fail = (_error: Error) => {};
      const gate = new Promise<void>((resolve, reject) => {
        live = resolve;
        fail = reject;
      });
      let first = true;
      bus.listen = (uid, fn, target) => {
        if (!first) return listen(uid, fn, target);
        first = false;
        return gate.then(() => listen(uid, fn, target));
      };
      // Counted as called, whether held or not.
      const calls = counted();
      return { calls, live: () => live(), fail: (error: Error) => fail(error) };
    }

    it('forgets a reservation whose subscription rejected: a later add subscribes again and hears what follows', async () => {
      const held = heldListen();
      hub.reserve('u');
      held.fail(new Error('SSUBSCRIBE refused'));
      await settled();
      // Failed and dropped: nothing was subscribed, so nothing is undone at release.
      expect([hub.has('u'), hub.userCount, hub.sessionCount]).toEqual([false, 0, 0]);
      const s = open('u', 's');
      await hub.add(s.session);
      expect(held.calls).toEqual(['listen u', 'listen u']);
      hub.release('u');
      await settled();
      expect(held.calls).toEqual(['listen u', 'listen u']);
      s.session.pending = undefined;
      await bus.publish('u', note(1));
      expect(s.messages()).toEqual(['1']);
      expect([hub.has('u'), hub.sessionCount]).toEqual([true, 1]);
      // Its own subscription, undone with its last session: once.
      expect(hub.remove(s.session)).toBe(true);
      await settled();
      expect(held.calls).toEqual(['listen u', 'listen u', 'unlisten u']);
    });

    it('rejects the add that took a reservation whose subscription then rejected, removes its session; the next add subscribes again', async () => {
      const held = heldListen();
      hub.reserve('u');
      const first = open('u', 'a');
      const added = hub.add(first.session);
      held.fail(new Error('SSUBSCRIBE refused'));
      await expect(added).rejects.toThrow('SSUBSCRIBE refused');
      hub.release('u');
      await settled();
      expect([hub.has('u'), hub.userCount, hub.sessionCount]).toEqual([false, 0, 0]);
      expect(held.calls).toEqual(['listen u']);
      const next = open('u', 'b');
      await hub.add(next.session);
      next.session.pending = undefined;
      await bus.publish('u', note(1));
      expect(next.messages()).toEqual(['1']);
      expect(first.sent).toEqual([]);
      expect(held.calls).toEqual(['listen u', 'listen u']);
    });

    it('an add taking a reservation whose subscription is still pending resolves once it is live, without subscribing again', async () => {
      const held = heldListen();
      hub.reserve('u');
      const s = open('u', 's');
      let done = false;
      const added = hub.add(s.session).then(() => {
        done = true;
      });
      await settled();
      // Added (counted, seen) but not resolved: the replay read must wait for the subscription.
      expect([done, hub.has('u'), hub.sessionCount]).toEqual([false, true, 1]);
      hub.release('u');
      await settled();
      // The reservation was taken by the session: release undoes nothing.
      expect([done, held.calls]).toEqual([false, ['listen u']]);
      held.live();
      await added;
      expect(held.calls).toEqual(['listen u']);
      s.session.pending = undefined;
      await bus.publish('u', note(1));
      expect(s.messages()).toEqual(['1']);
      // A second session of the user shares the one subscription.
      const other = open('u', 't');
      await hub.add(other.session);
      expect(held.calls).toEqual(['listen u']);
    });
  });
});
