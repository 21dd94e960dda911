import { Timestamp } from 'firebase-admin/firestore';
import { MemoryLease } from '../fleet/lease/memory-lease';
import { timestampText } from './firestore/firestore-json';
import { MemoryWatermarkStore } from './memory-watermark-store';
import { markOf, markOfText } from './watermark-store';

describe('markOfText', () => {
  it("gives an event's update_time the mark of the timestamp it was written from", () => {
    for (const t of [
      new Timestamp(1_763_800_000, 100_000_000),
      new Timestamp(1_763_800_000, 123_456_000),
      new Timestamp(0, 0),
      new Timestamp(-1, 999_999_000),
    ]) {
      expect(markOfText(timestampText(t))).toBe(markOf(t));
    }
  });

  it('takes any precision up to nanoseconds, and refuses what is not RFC 3339 UTC', () => {
    expect(markOfText('1970-01-01T00:00:01Z')).toBe('1000000000');
    expect(markOfText('1970-01-01T00:00:01.5Z')).toBe('1500000000');
    expect(markOfText('1970-01-01T00:00:01.000000007Z')).toBe('1000000007');
    expect(markOfText('1970-01-01T00:00:01.000+01:00')).toBeUndefined();
    expect(markOfText('2025-13-45T00:00:00.000000Z')).toBeUndefined();
    expect(markOfText('soon')).toBeUndefined();
  });
});

describe('MemoryWatermarkStore cursors', () => {
  it('stores the cursor with the mark, keeps it when a write has none, and forgets it with the listener', async () => {
    const lease = new MemoryLease();
    const { token } = (await lease.acquire('u', 'a', 60_000))!;
    const fence = { owner: 'a', token };
    const store = new MemoryWatermarkStore(lease);
    await store.set('u', 'l', '10', fence, { put: {}, del: [] });
    expect((await store.get('u')).cursors).toEqual({});
    await store.set('u', 'l', '11', fence, { put: {}, del: [] }, 'e:3');
    await store.set('u', 'm', '11', fence, undefined, 'e:4');
    await store.set('u', 'l', '12', fence, { put: {}, del: [] });
    expect(await store.get('u')).toMatchObject({ marks: { l: '12', m: '11' }, cursors: { l: 'e:3', m: 'e:4' } });
    expect(await store.set('u', 'l', '13', { owner: 'b', token }, undefined, 'e:9')).toBe(false);
    await store.forget('u', 'l');
    expect((await store.get('u')).cursors).toEqual({ m: 'e:4' });
    await store.clear('u');
    expect((await store.get('u')).cursors).toEqual({});
  });
});
