import { waitFor } from '@livebus/test-support';
import fc from 'fast-check';
import type { ListenerSource } from '../src/listeners/listener-source';
import { connectAs, startGateway, type TestClient } from './helpers';

/** A listener source that counts live attachments per user. */
function countingSource() {
  const live = new Map<string, number>();
  let attaches = 0;
  const source: ListenerSource = {
    name: 'counting',
    async attach(uid) {
      attaches++;
      live.set(uid, (live.get(uid) ?? 0) + 1);
      return async () => {
        live.set(uid, (live.get(uid) ?? 0) - 1);
      };
    },
  };
  return {
    source,
    live,
    get attaches() {
      return attaches;
    },
  };
}

describe('connect/disconnect storms over real sockets', () => {
  it('end with exactly one attached listener set while sessions remain, none after the delay, no orphan timers', async () => {
    const ops = fc.array(
      fc.record({ open: fc.boolean(), tab: fc.integer({ min: 0, max: 3 }), pauseMs: fc.integer({ min: 0, max: 40 }) }),
      { minLength: 4, maxLength: 16 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (script) => {
        const counting = countingSource();
        const t = await startGateway({ detachDelayMs: 30 }, { sources: [counting.source] });
        const tabs = new Map<number, TestClient>();
        try {
          for (const op of script) {
            const current = tabs.get(op.tab);
            if (op.open && !current) {
              tabs.set(op.tab, (await connectAs(t.url, 'stormy', { session_id: `tab-${op.tab}` })).client);
            } else if (!op.open && current) {
              tabs.delete(op.tab);
              await current.close();
            }
            await new Promise((r) => setTimeout(r, op.pauseMs));
          }
          await waitFor(() => t.gw.stats().sessions === tabs.size, 'sessions settled');
          await new Promise((r) => setTimeout(r, 60)); // past the detach delay
          await t.gw.idle();
          const expected = tabs.size > 0 ? 1 : 0;
          expect(counting.live.get('stormy') ?? 0).toBe(expected);
          expect(t.gw.stats()).toMatchObject({ listeners: expected, pendingDetaches: 0 });

          // Everyone leaves: after the delay nothing is attached and nothing is pending.
          await Promise.all([...tabs.values()].map((c) => c.close()));
          await waitFor(() => t.gw.stats().sessions === 0, 'all closed');
          await new Promise((r) => setTimeout(r, 60));
          await t.gw.idle();
          expect(counting.live.get('stormy') ?? 0).toBe(0);
          expect(t.gw.stats()).toMatchObject({ listeners: 0, pendingDetaches: 0 });
          const executed = t.hooks.of('detach.executing', 'stormy').length;
          expect(t.hooks.of('detach.complete', 'stormy')).toHaveLength(executed);
        } finally {
          await t.close();
        }
      }),
      { numRuns: 8 },
    );
  }, 60_000);
});
