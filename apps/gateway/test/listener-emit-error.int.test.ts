import type { AppEvent } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { ListenerSource } from '../src/listeners/listener-source';
import { connectAs, startGateway } from './helpers';

describe('a listener event the bus refuses for good', () => {
  it('is logged as listener_emit_error at warn with reason invalid_event (the source skips it on purpose), not as an error', async () => {
    const refused: string[] = [];
    // A Firestore document near its own size limit: its event exceeds the 1 MiB frame clients accept.
    const huge = {
      event: 'listener.change',
      data: { source: 's', path: 'c/huge', change: 'added', data: 'x'.repeat(1_100_000) },
    };
    const source: ListenerSource = {
      name: 'huge',
      async attach(_uid, emit) {
        void Promise.resolve(emit(huge as AppEvent)).catch((error: unknown) => refused.push(String(error)));
        return async () => {};
      },
    };
    const t = await startGateway({}, { sources: [source] });
    try {
      const { client } = await connectAs(t.url, 'u-huge');
      await waitFor(() => refused[0], 'the event refused');
      expect(refused[0]).toMatch(/InvalidEventError: event too large/);
      expect(t.logs.of('listener_emit_error', 'u-huge').map((e) => [e.level, e.reason])).toEqual([
        ['warn', 'invalid_event'],
      ]);
      await client.close();
    } finally {
      await t.close();
    }
  });
});
