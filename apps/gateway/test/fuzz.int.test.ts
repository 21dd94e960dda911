import { CloseCode, parseClientFrame } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import fc from 'fast-check';
import { connectAs, startGateway, TestClient, type TestGateway } from './helpers';

const MAX_PAYLOAD_BYTES = 8192;
let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({ maxPayloadBytes: MAX_PAYLOAD_BYTES, rateLimitFramesPerS: 0 });
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
  // Well-formed RPCs with random arguments: the path where an answer could go missing.
  fc
    .record({
      type: fc.constant('rpc'),
      id: fc.nat(),
      method: fc.oneof(
        fc.constantFrom('REGISTRY.register_user', 'REGISTRY.get_sessions', 'WORKFLOW.watch', 'TASK.get_status'),
        fc.string({ maxLength: 30 }),
      ),
      args: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
    })
    .map((o) => JSON.stringify(o)),
);

describe('random frames after the handshake', () => {
  it('never crash the gateway: each is answered or the socket is closed with a protocol code', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 25 }), async (frames) => {
        const { client } = await connectAs(t.url, 'fuzzed');
        const before = client.frames.length;
        let sent = 0;
        for (const f of frames) {
          if (client.ws.readyState !== client.ws.OPEN) break;
          client.sendRaw(f);
          // A well-formed pong is the reply to the gateway's ping: the one frame nothing answers.
          const parsed = parseClientFrame(f, { maxBytes: MAX_PAYLOAD_BYTES });
          if (!(parsed.ok && parsed.value.type === 'pong')) sent++;
        }
        // A ping after the garbage, as the marker: once it is answered every frame before it was
        // read. Then each frame has its own answer (an RPC's may come after the pong), or the
        // session was closed for a reason.
        const SENTINEL = 424242;
        const isSentinel = (x: (typeof client.frames)[number]) => x.type === 'pong' && x.ts === SENTINEL;
        const answers = () => client.frames.slice(before).filter((x) => !isSentinel(x)).length;
        if (client.ws.readyState === client.ws.OPEN) client.send({ type: 'ping', ts: SENTINEL });
        const answered = waitFor(
          () => client.frames.some(isSentinel) && answers() >= sent,
          'an answer to each frame',
          5_000,
        ).then(
          () => 'answered' as const,
          () => 'unanswered' as const,
        );
        const outcome = await Promise.race([answered, client.closed]);
        if (typeof outcome !== 'string') expect(KNOWN).toContain(outcome.code);
        else expect({ outcome, answers: answers() }).toEqual({ outcome: 'answered', answers: sent });
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
