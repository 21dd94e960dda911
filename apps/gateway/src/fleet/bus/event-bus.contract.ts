import { type AppEvent, compareCursors, parseCursor } from '@livebus/protocol';
import type { EventBus, LiveEvent, StoredEvent } from './event-bus';
import { InvalidEventError } from './invalid-event-error';

/** Retention the contract's `make` must apply, so that the trimming cases can be checked. */
export const contractRetention = { retentionEvents: 5, retentionMs: 1_500, retentionBytes: 4_096 } as const;

/** What the contract needs of an implementation under test. */
export interface EventBusFixture {
  /** A bus with {@link contractRetention}. Two calls give two handles on the same streams (two instances). */
  make(): Promise<EventBus>;
  /** Loses every stream (a Redis flush, a process restart), if the implementation can; else undefined. */
  reset?: () => Promise<void>;
}

const note = (n: number | string): AppEvent => ({
  event: 'session.notice',
  data: { level: 'info', message: String(n) },
});
const offsetOf = (e: StoredEvent) => parseCursor(e.cursor)?.offset ?? Number.NaN;
/** The frame a live event carries, checked against the position it was handed with. */
const frameOf = (e: LiveEvent): StoredEvent => {
  const frame = JSON.parse(e.text) as StoredEvent;
  expect(frame.cursor).toBe(e.cursor);
  expect(parseCursor(e.cursor)).toEqual({ epoch: e.epoch, offset: e.offset });
  return frame;
};
const waitUntil = async (check: () => boolean, what: string, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/**
 * The contract every {@link EventBus} passes: run against the in-memory bus,
 * standalone Redis and Redis Cluster (test/event-bus-contract.int.test.ts).
 */
export function eventBusContract(name: string, fixture: EventBusFixture): void {
  describe(`EventBus contract: ${name}`, () => {
    const open: EventBus[] = [];
    let n = 0;
    let uid: string;
    const make = async () => {
      const bus = await fixture.make();
      open.push(bus);
      return bus;
    };
    beforeEach(() => {
      uid = `ebc-${Date.now()}-${n++}`;
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });

    it('stamps consecutive offsets in one epoch and delivers live events in order, once', async () => {
      const bus = await make();
      const seen: StoredEvent[] = [];
      const off = await bus.subscribe(uid, (e) => seen.push(frameOf(e)));
      // A second subscriber of the user, kept: the marker that an event reached the subscribers.
      const watched: StoredEvent[] = [];
      const offWatcher = await bus.subscribe(uid, (e) => watched.push(frameOf(e)));
      const stored = [];
      for (let i = 1; i <= 4; i++) stored.push(await bus.publish(uid, note(i)));
      await bus.publish(`${uid}-other`, note('x'));
      const offsets = stored.map(offsetOf);
      expect(offsets).toEqual([offsets[0], (offsets[0] ?? 0) + 1, (offsets[0] ?? 0) + 2, (offsets[0] ?? 0) + 3]);
      expect(new Set(stored.map((e) => parseCursor(e.cursor)?.epoch)).size).toBe(1);
      await waitUntil(() => seen.length === 4, '4 live events');
      expect(seen.map((e) => e.cursor)).toEqual(stored.map((e) => e.cursor));
      expect(seen[0]).toMatchObject({ type: 'event', event: 'session.notice', data: { message: '1' } });
      await off();
      await bus.publish(uid, note(5));
      await bus.publish(uid, note('sentinel'));
      // Events reach a user's subscribers in order: once the sentinel did, 5 would have too.
      await waitUntil(() => watched.length === 6, 'the sentinel on the kept subscriber');
      expect(watched.map((e) => (e.data as { message: string }).message)).toEqual([
        '1',
        '2',
        '3',
        '4',
        '5',
        'sentinel',
      ]);
      expect(seen).toHaveLength(4);
      await offWatcher();
    });

    it('listen: one shared function, each call with its own target, in order, until unlisten', async () => {
      const bus = await make();
      if (!bus.listen || !bus.unlisten) return;
      const seen: string[] = [];
      const shared = (e: LiveEvent, target: string) => {
        const frame = frameOf(e);
        seen.push(`${target}:${(frame.data as { message: string }).message}`);
      };
      await bus.listen(uid, shared, 'a');
      await bus.listen(uid, shared, 'b');
      const watched: StoredEvent[] = [];
      const offWatcher = await bus.subscribe(uid, (e) => watched.push(frameOf(e)));
      await bus.publish(uid, note(1));
      await waitUntil(() => watched.length === 1, 'the first event');
      expect(seen).toEqual(['a:1', 'b:1']);
      // Only the pair given: the other target keeps listening; an unknown pair changes nothing.
      await bus.unlisten(uid, shared, 'a');
      await bus.unlisten(uid, shared, 'nobody');
      await bus.publish(uid, note(2));
      await waitUntil(() => watched.length === 2, 'the second event');
      expect(seen).toEqual(['a:1', 'b:1', 'b:2']);
      await bus.unlisten(uid, shared, 'b');
      await bus.publish(uid, note(3));
      await waitUntil(() => watched.length === 3, 'the third event');
      expect(seen).toEqual(['a:1', 'b:1', 'b:2']);
      await offWatcher();
      // The Redis bus counts the users it is subscribed to (the embedded one, streams kept for resume).
      if (bus.sharedAcrossInstances) expect(bus.stats().streams).toBe(0);
      // Listening again after the user was let go starts a new subscription.
      await bus.listen(uid, shared, 'c');
      await bus.publish(uid, note(4));
      await waitUntil(() => seen.length === 4, 'the event on the new subscription');
      expect(seen.at(-1)).toBe('c:4');
      await bus.unlisten(uid, shared, 'c');
    });

    it('listen: a listener that ends its own or starts another subscription while called costs no one the event', async () => {
      const bus = await make();
      if (!bus.listen || !bus.unlisten) return;
      const seen: string[] = [];
      const shared = (e: LiveEvent, target: string) => {
        const message = (frameOf(e).data as { message: string }).message;
        seen.push(`${target}:${message}`);
        if (target === 'a' && message === '1') {
          // Both at once, while the bus is calling its listeners of this event.
          void bus.unlisten?.(uid, shared, 'a');
          void bus.listen?.(uid, shared, 'd');
        }
      };
      for (const target of ['a', 'b', 'c']) await bus.listen(uid, shared, target);
      const watched: StoredEvent[] = [];
      const offWatcher = await bus.subscribe(uid, (e) => watched.push(frameOf(e)));
      await bus.publish(uid, note(1));
      await waitUntil(() => watched.length === 1, 'the first event');
      // The listeners of the moment, each once; the one that came meanwhile hears the next event.
      expect(seen).toEqual(['a:1', 'b:1', 'c:1']);
      await bus.publish(uid, note(2));
      await waitUntil(() => watched.length === 2, 'the second event');
      expect(seen.slice(3)).toEqual(['b:2', 'c:2', 'd:2']);
      for (const target of ['b', 'c', 'd']) await bus.unlisten(uid, shared, target);
      await offWatcher();
    });

    it('delivers an event published through one handle to a subscriber of another (two instances)', async () => {
      const a = await make();
      const b = await make();
      const seen: StoredEvent[] = [];
      const off = await b.subscribe(uid, (e) => seen.push(frameOf(e)));
      const sent = await a.publish(uid, note('across'));
      if (!a.sharedAcrossInstances) {
        // Two embedded buses share nothing: that is what "embedded" means.
        expect(seen).toEqual([]);
      } else {
        await waitUntil(() => seen.length === 1, 'the event on the other handle');
        expect(seen[0]?.cursor).toBe(sent.cursor);
        expect((await b.readSince(uid, await a.head(uid))).status).toBe('resumed');
      }
      await off();
    });

    it('replays after a cursor, says resumed at the head, gap beyond retention or ahead of the head', async () => {
      const bus = await make();
      const first = await bus.publish(uid, note(0));
      const c = [first];
      for (let i = 1; i <= 7; i++) c.push(await bus.publish(uid, note(i)));
      const last = c[7] as StoredEvent;
      expect(await bus.head(uid)).toBe(last.cursor);
      expect(await bus.readSince(uid, last.cursor)).toEqual({ status: 'resumed', events: [], cursor: last.cursor });
      // 5 retained: c[3]..c[7]; a cursor at c[2] still sees every later event.
      const fromC2 = await bus.readSince(uid, (c[2] as StoredEvent).cursor);
      expect(fromC2.status).toBe('resumed');
      expect(fromC2.events.map((e) => e.cursor)).toEqual(c.slice(3).map((e) => e.cursor));
      expect(fromC2.events[0]).toEqual(c[3]);
      expect(await bus.readSince(uid, (c[1] as StoredEvent).cursor)).toEqual({
        status: 'gap',
        events: [],
        cursor: last.cursor,
      });
      const epoch = parseCursor(last.cursor)?.epoch;
      expect((await bus.readSince(uid, `${epoch}:${offsetOf(last) + 1}`)).status).toBe('gap');
      expect((await bus.readSince(uid, `otherepoch:${offsetOf(last)}`)).status).toBe('gap');
    });

    it('a fresh stream answers resumed from its own head and gap to a cursor of another epoch', async () => {
      const bus = await make();
      const head = await bus.head(uid);
      expect(parseCursor(head)?.offset).toBe(0);
      expect(await bus.readSince(uid, head)).toEqual({ status: 'resumed', events: [], cursor: head });
      const e = await bus.publish(uid, note(1));
      expect(compareCursors(head, e.cursor)).toBe(-1);
      expect(await bus.readSince(uid, head)).toEqual({ status: 'resumed', events: [e], cursor: e.cursor });
    });

    it('drops events older than the retention age', async () => {
      const bus = await make();
      const old = await bus.publish(uid, note('old'));
      await new Promise((r) => setTimeout(r, contractRetention.retentionMs + 300));
      const recent = await bus.publish(uid, note('recent'));
      const fromBefore = await bus.readSince(uid, `${parseCursor(old.cursor)?.epoch}:${offsetOf(old) - 1}`);
      expect(fromBefore.status).toBe('gap');
      expect(await bus.readSince(uid, old.cursor)).toEqual({
        status: 'resumed',
        events: [recent],
        cursor: recent.cursor,
      });
    });

    it('bounds what one user retains in bytes, oldest first', async () => {
      const bus = await make();
      const big = (i: number): AppEvent => ({
        event: 'session.notice',
        data: { level: 'info', message: `${i}${'x'.repeat(1_500)}` },
      });
      const stored = [];
      for (let i = 0; i < 4; i++) stored.push(await bus.publish(uid, big(i)));
      // About 1.6 KB each against a 4 KB bound: only the last two can be retained.
      const before = `${parseCursor((stored[0] as StoredEvent).cursor)?.epoch}:${offsetOf(stored[0] as StoredEvent) - 1}`;
      expect((await bus.readSince(uid, before)).status).toBe('gap');
      const tail = await bus.readSince(uid, (stored[1] as StoredEvent).cursor);
      expect(tail.events.map((e) => e.cursor)).toEqual([stored[2]?.cursor, stored[3]?.cursor]);
    });

    it('refuses an invalid event before it gets a cursor', async () => {
      const bus = await make();
      const head = await bus.head(uid);
      await expect(bus.publish(uid, { event: 'nope', data: {} } as unknown as AppEvent)).rejects.toBeInstanceOf(
        InvalidEventError,
      );
      await expect(
        bus.publish(uid, { event: 'session.notice', data: { level: 'loud', message: 1 } } as unknown as AppEvent),
      ).rejects.toBeInstanceOf(InvalidEventError);
      let deep: unknown = 1;
      for (let i = 0; i < 5_000; i++) deep = [deep];
      await expect(
        bus.publish(uid, { event: 'listener.change', data: { source: 's', path: 'p', change: 'added', data: deep } }),
      ).rejects.toBeInstanceOf(InvalidEventError);
      await expect(bus.publish('x'.repeat(129), note(1))).rejects.toBeInstanceOf(InvalidEventError);
      // publishMany is all or nothing on validation.
      await expect(
        bus.publishMany([
          { userId: uid, event: note(1) },
          { userId: uid, event: { event: 'nope' } as unknown as AppEvent },
        ]),
      ).rejects.toBeInstanceOf(InvalidEventError);
      expect(await bus.head(uid)).toBe(head);
    });

    it('position, where offered: the head once subscribed, then the last event delivered, none when not subscribed', async () => {
      const bus = await make();
      if (!bus.position) return;
      await bus.publish(uid, note(1));
      const seen: string[] = [];
      const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
      expect(bus.position(uid)).toBe(await bus.head(uid));
      const stored = await bus.publish(uid, note(2));
      await waitUntil(() => seen.length === 1, 'the live event');
      expect(bus.position(uid)).toBe(stored.cursor);
      await off();
      expect(bus.position(uid)).toBeUndefined();
      expect(bus.position(`${uid}-other`)).toBeUndefined();
    });

    it('publishMany appends in order across users and returns the cursors', async () => {
      const bus = await make();
      const seen: string[] = [];
      const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
      const out = await bus.publishMany([
        { userId: uid, event: note(1) },
        { userId: `${uid}-b`, event: note(2) },
        { userId: uid, event: note(3) },
      ]);
      expect(out).toHaveLength(3);
      expect(offsetOf(out[2] as StoredEvent)).toBe(offsetOf(out[0] as StoredEvent) + 1);
      await waitUntil(() => seen.length === 2, 'two live events');
      expect(seen).toEqual([out[0]?.cursor, out[2]?.cursor]);
      await off();
    });

    it('concurrent publishers get distinct consecutive offsets and every subscriber sees them in order', async () => {
      const a = await make();
      const b = await make();
      const seen: StoredEvent[] = [];
      const listener = a.sharedAcrossInstances ? b : a;
      const off = await listener.subscribe(uid, (e) => seen.push(frameOf(e)));
      const publishers = a.sharedAcrossInstances ? [a, b] : [a, a];
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (publishers[i % 2] as EventBus).publish(uid, note(i))),
      );
      const offsets = results.map(offsetOf).sort((x, y) => x - y);
      const base = offsets[0] ?? 0;
      expect(offsets).toEqual(offsets.map((_, i) => base + i));
      await waitUntil(() => seen.length === 40, '40 live events');
      expect(seen.map(offsetOf)).toEqual(offsets);
      await off();
    });

    if (fixture.reset) {
      const reset = fixture.reset;
      it('a lost stream gets a new epoch: old cursors answer gap, never a false resume', async () => {
        const bus = await make();
        const before = await bus.publish(uid, note(1));
        await reset();
        const after = await bus.publish(uid, note(2));
        expect(parseCursor(after.cursor)?.epoch).not.toBe(parseCursor(before.cursor)?.epoch);
        expect((await bus.readSince(uid, before.cursor)).status).toBe('gap');
      });
    }
  });
}
