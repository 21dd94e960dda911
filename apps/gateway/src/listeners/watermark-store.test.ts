import { Timestamp } from 'firebase-admin/firestore';
import { timestampText } from './firestore/firestore-json';
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
