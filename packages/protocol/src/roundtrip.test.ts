import fc from 'fast-check';
import { clientFrame, serverFrame } from '../test/arbitraries';
import { parseClientFrame, parseServerFrame, serializeFrame } from './codec';

// JSON itself normalises a few values (-0 becomes 0); the round trip must equal what JSON keeps.
const viaJson = (value: unknown) => JSON.parse(JSON.stringify(value));

describe('serialize/parse round trip', () => {
  it('holds for every client frame', () => {
    fc.assert(
      fc.property(clientFrame, (frame) => {
        const text = serializeFrame(frame);
        expect(parseClientFrame(text)).toEqual({ ok: true, value: viaJson(frame) });
      }),
      { numRuns: 500 },
    );
  });

  it('holds for every server frame', () => {
    fc.assert(
      fc.property(serverFrame, (frame) => {
        const text = serializeFrame(frame);
        expect(parseServerFrame(text)).toEqual({ ok: true, value: viaJson(frame) });
      }),
      { numRuns: 1000 },
    );
  });
});
