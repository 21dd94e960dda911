import { parseServerFrame as parseOnClient } from './client';
import { parseServerFrame } from './codec';
import { AppEventSchema, EVENT_TYPES } from './events';
import { serverFrameExamples } from './examples';

const frame = (data: unknown) =>
  JSON.stringify({ type: 'event', cursor: 'k3x9q2:46', ts: 1, event: 'listener.status', data });

/** The documented example of a failing listener (docs/protocol.md). */
const failing = (() => {
  const example = serverFrameExamples.find(
    ({ frame }) => frame.type === 'event' && frame.event === 'listener.status' && frame.data.status === 'failing',
  );
  if (example?.frame.type !== 'event') throw new Error('no listener.status example');
  return example.frame.data;
})();
const recovered = { source: 'workflow', listener: 'workflow', path: 'jobs/job-9', status: 'recovered' };

describe('listener.status', () => {
  it('is an event type', () => {
    expect(EVENT_TYPES).toContain('listener.status');
  });

  it.each([
    ['failing', failing],
    ['recovered', recovered],
    ['given up', { ...failing, retrying: false }],
  ])('a %s status is a valid server frame, for the zod schemas and the client checker', (_name, data) => {
    expect(parseServerFrame(frame(data))).toMatchObject({ ok: true, value: { event: 'listener.status', data } });
    expect(parseOnClient(frame(data))).toMatchObject({ ok: true, value: { event: 'listener.status', data } });
  });

  it.each([
    ['an unknown status', { ...recovered, status: 'broken' }],
    ['no listener', { source: 'firestore', path: 'p', status: 'recovered' }],
    ['an unknown field', { ...recovered, message: 'x' }],
    ['a retrying that is not a boolean', { ...failing, retrying: 'yes' }],
  ])('%s is refused', (_name, data) => {
    expect(parseServerFrame(frame(data)).ok).toBe(false);
    expect(parseOnClient(frame(data)).ok).toBe(false);
    expect(AppEventSchema.safeParse({ event: 'listener.status', data }).success).toBe(false);
  });
});
