import { readStoredFramePosition } from '@livebus/publisher';
import { LiveFrame, offsetInEpoch, offsetInEpochBytes, ownBytes } from './live-frame';

/** Both readers, the text's and the bytes', must agree on every input. */
const both = (text: string, epoch: string) => {
  const fromBytes = offsetInEpochBytes(Buffer.from(text), epoch);
  expect(fromBytes).toBe(offsetInEpoch(text, epoch));
  return fromBytes;
};

const frame = (cursor: string, event = 'task.progress_update', tail = '"data":{"task_id":"t"}}') =>
  `{"type":"event","cursor":"${cursor}","ts":1700000000000,"event":"${event}",${tail}`;

describe('offsetInEpoch', () => {
  it('reads the offset of a stored frame of the given epoch, as readStoredFramePosition does', () => {
    for (const text of [frame('AbCd_-12:1'), frame('AbCd_-12:987654321'), frame('AbCd_-12:5', 'session.notice')]) {
      const at = readStoredFramePosition(text);
      expect(both(text, 'AbCd_-12')).toBe(at?.offset);
    }
  });

  it('answers -1 for another epoch, so the caller reads the frame in full', () => {
    expect(both(frame('AbCd_-13:4'), 'AbCd_-12')).toBe(-1);
    // A longer epoch that starts with the given one
    expect(both(frame('AbCd_-12x:4'), 'AbCd_-12')).toBe(-1);
    expect(both(frame('AbCd_-12:3:4'), 'AbCd_-12')).toBe(-1);
    expect(readStoredFramePosition(frame('AbCd_-12:3:4'))).toEqual({ epoch: 'AbCd_-12:3', offset: 4 });
  });

  it('answers -1 wherever readStoredFramePosition finds no stored frame', () => {
    const bad = [
      frame('E:'),
      frame('E:12a'),
      frame('E:1234567890123456'),
      frame('E:1', 'no.such_event'),
      frame('E:1', ''),
      frame('E:1').slice(0, -2),
      frame('E:1').replace('"ts":1700000000000', '"ts":'),
      frame('E:1').replace('{"type":"event"', '{"type":"other"'),
      ' '.repeat(10),
      '',
    ];
    for (const text of bad) {
      expect(readStoredFramePosition(text)).toBeUndefined();
      expect(both(text, 'E')).toBe(-1);
    }
    // An epoch readStoredFramePosition would not have read is not compared in place either.
    expect(both(frame('E\\:1'), 'E\\')).toBe(-1);
    expect(both(frame(`${'e'.repeat(65)}:1`), 'e'.repeat(65))).toBe(-1);
    expect(both(frame(':1'), '')).toBe(-1);
    // Bytes of another text that equal the epoch's characters taken one per byte are not it.
    expect(offsetInEpochBytes(Buffer.from(frame('\u00e9:1')), '\u00c3\u00a9')).toBe(-1);
    // A non-ASCII epoch is left to the text reader (the bus then reads the frame as text).
    expect(offsetInEpochBytes(Buffer.from(frame('\u00e9:1')), '\u00e9')).toBe(-1);
    expect(offsetInEpoch(frame('\u00e9:1'), '\u00e9')).toBe(1);
  });

  it('checks the event type of every frame, also after a valid one of another type', () => {
    expect(both(frame('E:1', 'session.notice'), 'E')).toBe(1);
    expect(both(frame('E:2', 'session.noticeX'), 'E')).toBe(-1);
    expect(both(frame('E:3', 'session.notice'), 'E')).toBe(3);
    expect(both(frame('E:4', 'task.progress_update'), 'E')).toBe(4);
  });
});

describe('LiveFrame', () => {
  it('makes its cursor from the epoch and offset', () => {
    const live = new LiveFrame('AbCd_-12', 42, frame('AbCd_-12:42'));
    expect(live.cursor).toBe('AbCd_-12:42');
    expect([live.epoch, live.offset]).toEqual(['AbCd_-12', 42]);
  });

  it('decodes its text from the bytes when first read', () => {
    const text = frame('AbCd_-12:7', 'session.notice', '"data":{"message":"caf\u00e9"}}');
    const live = new LiveFrame('AbCd_-12', 7, undefined, Buffer.from(text));
    expect(live.text).toBe(text);
    expect(live.text).toBe(text);
    expect(live.bytes?.toString()).toBe(text);
  });
});

describe('ownBytes', () => {
  /** `length` bytes at `at` of an allocation of `size` of its own (as a socket read gives them). */
  const viewOf = (size: number, at: number, length: number) => {
    const read = Buffer.allocUnsafeSlow(size).fill(0x20);
    read.write('x'.repeat(length), at);
    return read.subarray(at, at + length);
  };

  it('hands on a view that keeps at most its own size or 1 KiB more', () => {
    for (const [size, at, length] of [
      [200, 0, 200], // a whole read
      [300, 40, 200], // a read of one frame with its RESP framing
      [1_224, 100, 200], // 1 KiB more
      [40_000, 10_000, 20_000], // as much again
    ] as const) {
      const bytes = viewOf(size, at, length);
      expect(ownBytes(bytes)).toBe(bytes);
    }
  });

  it('copies a frame out of a much larger allocation into one of its own size, small frames too', () => {
    for (const [size, at, length] of [
      [65_536, 1_000, 200], // one frame of a read that carried many
      [1_225, 0, 200], // just over 1 KiB more
      [65_536, 0, 20_000], // a big frame, but the allocation is over twice its size
    ] as const) {
      const bytes = viewOf(size, at, length);
      const own = ownBytes(bytes);
      expect(own).not.toBe(bytes);
      expect(own.equals(bytes)).toBe(true);
      // Not in Node's shared pool either: the copy's allocation is the copy.
      expect([own.byteOffset, own.buffer.byteLength]).toEqual([0, length]);
      expect(own.buffer).not.toBe(bytes.buffer);
    }
  });
});
