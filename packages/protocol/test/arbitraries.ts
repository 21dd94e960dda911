// fast-check arbitraries of valid frames, shared by the round-trip and the client-checker tests.
import fc from 'fast-check';
import { RPC_ERROR_CODES } from '../src/errors';
import type { ClientFrame, ServerFrame } from '../src/frames';

const id = fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), fc.nat());
const nonEmpty = (max: number) => fc.string({ minLength: 1, maxLength: max });
// "__proto__" keys are dropped by the validator on purpose (see codec.test.ts), so they cannot round-trip.
export const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"'));
const key = fc.string().filter((k) => k !== '__proto__');
const cursor = fc
  .tuple(fc.stringMatching(/^[0-9A-Za-z_-]{1,32}$/), fc.integer({ min: 0, max: 2 ** 48 }))
  .map(([epoch, offset]) => `${epoch}:${offset}`);
const ts = fc.integer({ min: 0, max: 2 ** 48 });
const percent = fc.double({ min: 0, max: 100, noNaN: true });

const hello = fc.record(
  {
    type: fc.constant('hello' as const),
    v: fc.constant(1 as const),
    token: nonEmpty(200),
    user_id: nonEmpty(128),
    session_id: nonEmpty(128),
    route: fc.string({ maxLength: 100 }),
    last_cursor: cursor,
    app_ping: fc.boolean(),
  },
  { requiredKeys: ['type', 'v'] },
);
const auth = fc.record({ type: fc.constant('auth' as const), token: nonEmpty(200) });
const rpc = fc.record({
  type: fc.constant('rpc' as const),
  id,
  method: nonEmpty(128),
  args: fc.array(json, { maxLength: 4 }),
});
const ping = fc.record({ type: fc.constant('ping' as const), ts }, { requiredKeys: ['type'] });
const pong = fc.record({ type: fc.constant('pong' as const), ts }, { requiredKeys: ['type'] });
export const clientFrame = fc.oneof(hello, rpc, auth, ping, pong) as unknown as fc.Arbitrary<ClientFrame>;

const welcome = fc.record({
  type: fc.constant('welcome' as const),
  v: fc.constant(1 as const),
  session_id: nonEmpty(128),
  user_id: nonEmpty(128),
  instance_id: fc.string(),
  heartbeat: fc.record({
    ping_interval_ms: fc.integer({ min: 1, max: 1e6 }),
    ping_timeout_ms: fc.integer({ min: 1, max: 1e6 }),
  }),
  resume: fc.record({
    status: fc.constantFrom('fresh' as const, 'resumed' as const, 'gap' as const),
    cursor,
    replayed: fc.nat(),
  }),
});
const rpcResult = fc.record({ type: fc.constant('rpc_result' as const), id, result: json });
const rpcError = fc.record({
  type: fc.constant('rpc_error' as const),
  id,
  error: fc.record(
    { code: fc.constantFrom(...RPC_ERROR_CODES), message: fc.string(), data: json },
    { requiredKeys: ['code', 'message'] },
  ),
});
const envelope = { type: fc.constant('event' as const), cursor, ts };
const taskEvent = fc.record({
  ...envelope,
  event: fc.constant('task.progress_update' as const),
  data: fc.record(
    {
      task_id: nonEmpty(40),
      status: fc.constantFrom(
        'queued' as const,
        'running' as const,
        'completed' as const,
        'failed' as const,
        'cancelled' as const,
      ),
      progress: percent,
      message: fc.string(),
      result: json,
      error: fc.string(),
    },
    { requiredKeys: ['task_id', 'status', 'progress'] },
  ),
});
const changeEvent = fc.record({
  ...envelope,
  event: fc.constant('listener.change' as const),
  data: fc.record(
    {
      source: nonEmpty(20),
      path: nonEmpty(80),
      change: fc.constantFrom('added' as const, 'modified' as const, 'removed' as const),
      data: json,
    },
    { requiredKeys: ['source', 'path', 'change'] },
  ),
});
const statusEvent = fc.record({
  ...envelope,
  event: fc.constant('listener.status' as const),
  data: fc.record(
    {
      source: nonEmpty(20),
      listener: nonEmpty(20),
      path: nonEmpty(80),
      status: fc.constantFrom('failing' as const, 'recovered' as const),
      kind: nonEmpty(20),
      retrying: fc.boolean(),
    },
    { requiredKeys: ['source', 'listener', 'path', 'status'] },
  ),
});
const registryEvent = fc.record({
  ...envelope,
  event: fc.constant('registry.updated' as const),
  data: fc.record(
    { user_id: nonEmpty(128), reason: nonEmpty(40), registry: fc.dictionary(key, json, { maxKeys: 3 }) },
    { requiredKeys: ['user_id', 'reason'] },
  ),
});
const noticeEvent = fc.record({
  ...envelope,
  event: fc.constant('session.notice' as const),
  data: fc.record(
    {
      level: fc.constantFrom('info' as const, 'warning' as const, 'error' as const),
      message: fc.string(),
      code: fc.string(),
    },
    { requiredKeys: ['level', 'message'] },
  ),
});
const notice = fc.record(
  {
    type: fc.constant('notice' as const),
    kind: fc.constantFrom(
      'shutting_down' as const,
      'reconnect' as const,
      'info' as const,
      'token_expiring' as const,
      'token_refreshed' as const,
    ),
    message: fc.string(),
    reconnect_after_ms: fc.nat(),
    expires_at_ms: fc.nat(),
  },
  { requiredKeys: ['type', 'kind', 'message'] },
);
const errorFrame = fc.record(
  {
    type: fc.constant('error' as const),
    code: fc.constantFrom('bad_frame' as const, 'not_authenticated' as const, 'rate_limited' as const),
    message: fc.string(),
    issues: fc.array(fc.record({ path: fc.string(), message: fc.string() }), { maxLength: 3 }),
  },
  { requiredKeys: ['type', 'code', 'message'] },
);
// fast-check's JsonValue and zod's JSON type are the same values under different names.
export const serverFrame = fc.oneof(
  welcome,
  rpcResult,
  rpcError,
  taskEvent,
  changeEvent,
  statusEvent,
  registryEvent,
  noticeEvent,
  notice,
  errorFrame,
  ping,
  pong,
) as unknown as fc.Arbitrary<ServerFrame>;
