import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import fc from 'fast-check';
import { connectAs, startGateway, TestClient, type TestGateway } from './helpers';

let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({ maxPayloadBytes: 8192, rateLimitFramesPerS: 0 });
});
afterAll(() => t.close());

const KNOWN = new Set<number>([CloseCode.BadFrame, CloseCode.MessageTooBig, CloseCode.UnsupportedData]);

/** Frames shaped like the protocol's, with random field values, plus plain garbage. */
const frame = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        type: fc.constantFrom('hello', 'rpc', 'ping', 'pong', 'welcome', 'event', 'nope'),
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
        method: fc.oneof(
          fc.constantFrom('REGISTRY.register_user', 'REGISTRY.get_sessions', 'WORKFLOW.watch'),
          fc.string(),
        ),
        args: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
        ts: fc.oneof(fc.double(), fc.string()),
      },
      { requiredKeys: ['type'] },
    )
    .map((o) => JSON.stringify(o)),
);

describe('random frames after the handshake', () => {
  it('never crash the gateway: each is answered or the socket is closed with a protocol code', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 25 }), async (frames) => {
        const { client } = await connectAs(t.url, 'fuzzed');
        for (const f of frames) {
          if (client.ws.readyState !== client.ws.OPEN) break;
          client.sendRaw(f);
        }
        // A ping after the garbage: either the session still answers, or it was closed for a reason.
        const answered = new Promise<'answered'>((resolve) => {
          const check = setInterval(() => {
            if (client.frames.some((x) => x.type === 'pong' && x.ts === 424242)) {
              clearInterval(check);
              resolve('answered');
            }
          }, 5);
          client.closed.then(() => clearInterval(check));
        });
        if (client.ws.readyState === client.ws.OPEN) client.send({ type: 'ping', ts: 424242 });
        const outcome = await Promise.race([answered, client.closed]);
        if (outcome !== 'answered') expect(KNOWN).toContain(outcome.code);
        await client.close();
      }),
      { numRuns: 40 },
    );
    // And the gateway still serves a well-behaved client.
    const c = new TestClient(t.url);
    expect((await c.hello({ user_id: 'after-fuzz' })).resume.status).toBe('fresh');
    await c.close();
    await waitFor(() => t.gw.stats().sessions === 0, 'every fuzzed session closed');
    expect(t.logs.of('rpc_error').filter((e) => e.level === 'error')).toEqual([]);
  }, 60_000);
});
