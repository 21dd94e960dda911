import { readStoredFramePosition } from './stored-frame';

const frame = (
  cursor: string,
  rest = ',"ts":1700000000000,"event":"session.notice","data":{"level":"info","message":"hi"}}',
) => `{"type":"event","cursor":"${cursor}"${rest}`;

describe('readStoredFramePosition', () => {
  it('reads the epoch and offset of a frame in the form append_and_notify writes', () => {
    expect(readStoredFramePosition(frame('AbC-_x12:1'))).toEqual({ epoch: 'AbC-_x12', offset: 1 });
    expect(readStoredFramePosition(frame('e:0'))).toEqual({ epoch: 'e', offset: 0 });
    expect(readStoredFramePosition(frame('e:123456789012345'))).toEqual({ epoch: 'e', offset: 123456789012345 });
    // Data that mentions a cursor of its own changes nothing: only the prefix is read.
    const tricky = frame(
      'ep:7',
      ',"ts":5,"event":"session.notice","data":{"level":"info","message":"\\"cursor\\":\\"x:9\\""}}',
    );
    expect(readStoredFramePosition(tricky)).toEqual({ epoch: 'ep', offset: 7 });
  });

  it('agrees with JSON.parse on what it accepts', () => {
    const text = frame('Qw3rTy12:42');
    const parsed = JSON.parse(text) as { cursor: string };
    const at = readStoredFramePosition(text);
    expect(`${at?.epoch}:${at?.offset}`).toBe(parsed.cursor);
  });

  it.each([
    ['another first field', '{"cursor":"e:1","type":"event","ts":1,"event":"session.notice","data":{}}'],
    ['whitespace', '{"type": "event","cursor":"e:1","ts":1,"event":"session.notice","data":{}}'],
    ['no offset', frame('e:')],
    ['no epoch', frame(':5')],
    ['no separator', frame('e5')],
    ['a negative offset', frame('e:-5')],
    ['a fractional offset', frame('e:1.5')],
    ['an offset past 15 digits', frame('e:1234567890123456')],
    ['an escaped epoch', frame('e\\u0041:1')],
    ['an epoch too long', frame(`${'x'.repeat(65)}:1`)],
    ['an unterminated cursor', '{"type":"event","cursor":"e:1'],
    ['no ts', frame('e:1', ',"event":"session.notice","data":{}}')],
    ['a ts that is not a number', frame('e:1', ',"ts":"1","event":"session.notice","data":{}}')],
    ['another field before event', frame('e:1', ',"ts":1,"x":1,"event":"session.notice","data":{}}')],
    ['an unknown event type', frame('e:1', ',"ts":1,"event":"nope","data":{}}')],
    ['an inherited property name as type', frame('e:1', ',"ts":1,"event":"constructor","data":{}}')],
    ['a truncated frame', frame('e:1', ',"ts":1,"event":"session.notice","data":{"lev')],
    ['an empty text', ''],
  ])('refuses %s', (_why, text) => {
    expect(readStoredFramePosition(text)).toBeUndefined();
  });
});
