/**
 * Renders docs/protocol.md from the schemas and the documented examples, so the
 * page a Python or Go developer reads is the protocol the code enforces.
 */
import { AUTH_FAILURE_REASONS, CloseCode, classifyDisconnect, reconnectPolicy } from './close-codes';
import { protocolDefaults } from './defaults';
import { RPC_ERROR_CODES } from './errors';
import { EVENT_TYPES } from './events';
import {
  appEventExamples,
  clientFrameExamples,
  type FrameExample,
  methodExamples,
  serverFrameExamples,
} from './examples';
import { methodTable, RPC_METHODS } from './methods';
import {
  FRAME_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX,
  MAX_HELLO_PROTOCOL_CHARS,
  UPGRADE_HELLO_PROTOCOL,
} from './upgrade-hello';
import { PROTOCOL_VERSION } from './version';

const json = (value: unknown) => ['```json', JSON.stringify(value), '```'].join('\n');

function frames(examples: FrameExample<{ type: string }>[]): string {
  return examples.map((e) => `**${e.frame.type}**: ${e.title}\n\n${json(e.frame)}`).join('\n\n');
}

function closeCodeRows(): string {
  return Object.entries(CloseCode)
    .filter(([, code]) => typeof code === 'number')
    .map(([name, code]) => {
      const reason = classifyDisconnect(code as number);
      return `| ${code} | ${name} | \`${reason}\` | ${reconnectPolicy(reason)} |`;
    })
    .join('\n');
}

function authFailureRows(): string {
  return Object.entries(AUTH_FAILURE_REASONS)
    .map(([reason, meaning]) => `| \`${reason}\` | ${meaning} |`)
    .join('\n');
}

function methodSections(): string {
  return RPC_METHODS.map((m) => {
    const ex = methodExamples[m];
    return [
      `### \`${m}\``,
      '',
      methodTable[m].description,
      '',
      `Params: [\`schema/methods/${m}.params.json\`](../packages/protocol/schema/methods/${m}.params.json); result: [\`schema/methods/${m}.result.json\`](../packages/protocol/schema/methods/${m}.result.json).`,
      '',
      json({ type: 'rpc', id: 7, method: m, args: ex.args }),
      '',
      json({ type: 'rpc_result', id: 7, result: ex.result }),
    ].join('\n');
  }).join('\n\n');
}

/** "The hello in the upgrade", under "Handshake" (upgrade-hello.ts). */
/** How `POST /rpc` answers: the HTTP status of each RPC error code, and its body errors. */
function httpRpcSection(): string {
  return `Over HTTP, \`POST /rpc\` answers \`200 {"result": ...}\`, or \`{"error": {code, message, data?}}\` with
the status of its code: \`invalid_params\` 400, \`unauthenticated\` 401, \`forbidden\` 403,
\`unknown_method\` and \`not_found\` 404, \`rate_limited\` 429, \`internal\` 500, \`unavailable\` 503,
\`timeout\` 504. A body that is not \`{"method": ..., "args": [...]}\` answers 400 \`bad_request\`
(\`bad_json\` when it is not JSON, \`too_deep\` when nested deeper than 64 levels), one larger than
the gateway's \`MAX_PAYLOAD_BYTES\` 413 \`too_large\`, and another method than \`POST\` 405 with
an \`Allow\` header. A refused bearer token answers 401 with the reason in \`error.reason\`
(see [Auth failure reasons](#auth-failure-reasons)).`;
}

function upgradeHelloSection(): string {
  return `### The hello in the upgrade
A client may carry its hello in the upgrade request instead of sending it as the first frame:
the welcome then follows the upgrade at once, and a connect takes one round trip less (as many
as a plain WebSocket whose server speaks first). It offers three subprotocols in
\`Sec-WebSocket-Protocol\`, in this order:
\`\`\`
Sec-WebSocket-Protocol: ${FRAME_HELLO_PROTOCOL}, ${UPGRADE_HELLO_PROTOCOL}, ${HELLO_PROTOCOL_PREFIX}<base64url of the hello frame's JSON, no padding>
\`\`\`
- A gateway that read the hello there answers \`Sec-WebSocket-Protocol: ${UPGRADE_HELLO_PROTOCOL}\`; the client
  sends no hello frame and waits for the welcome (or the close the hello earned). The carried hello
  is checked exactly as a first frame is, with the same close codes (4004, 4010, 4001, ...).
- A gateway that answers \`${FRAME_HELLO_PROTOCOL}\` (one of an older release: WebSocket servers select
  the first protocol offered) expects the hello as the first frame: the client sends it then.
- A carried value longer than ${MAX_HELLO_PROTOCOL_CHARS} characters is not offered (the hello goes as a frame):
  request headers have size limits. Unlike a token in the URL, this header is not in the access
  logs that record URLs (a proxy that logs request headers sees it, as it would an
  \`Authorization\` header).
- A client that offers none of these sends its hello as a frame, as always.
`;
}

/** The full text of docs/protocol.md. */
export function renderProtocolDoc(): string {
  return `<!-- Generated from packages/protocol/src by \`pnpm --filter @livebus/protocol gen:docs\`. Do not edit by hand. -->
# livebus wire protocol, version ${PROTOCOL_VERSION}

Everything a client says to a livebus gateway and hears back. Write a client in
any language from this page; validate with the JSON Schemas in
\`packages/protocol/schema/\` (\`client-frame.json\`, \`server-frame.json\`,
\`methods/<method>.params.json\`, \`methods/<method>.result.json\`,
\`events/<event>.json\`).

## Transport
- One WebSocket per client at \`ws(s)://HOST/ws\`. Every frame is one JSON
  object in a text message; binary messages are refused (close 1003).
- A frame may not exceed ${protocolDefaults.maxFrameBytes} bytes (the gateway's \`MAX_PAYLOAD_BYTES\`), nor nest
  arrays and objects deeper than ${protocolDefaults.maxJsonDepth} levels. Deeper frames are refused with an
  \`error\` frame of code \`bad_frame\` before they are parsed (and a 4004 close before
  \`hello\`); HTTP bodies nested too deep answer 400.
- Every frame has a \`type\`. Unknown fields are rejected: the schemas are strict. A malformed
  frame is answered with an \`error\` frame of code \`bad_frame\` (and \`issues\`), except an
  \`rpc\` frame with a usable \`id\`, answered by that id with an \`rpc_error\` \`invalid_params\`
  (\`data.issues\`), so the call fails at once.
- A gateway limits how fast one connection may send (by default 100 frames a second,
  bursts of 200). Frames over the limit are dropped: an \`rpc\` is answered at once with an
  \`rpc_error\` of code \`rate_limited\` carrying its \`id\`, and the first other frame of a
  flood with an \`error\` frame of code \`rate_limited\`. A connection refused a burst's worth
  of frames before its allowance refilled (it kept sending faster than the rate, whatever got
  through meanwhile) is closed with 4005; one that slowed down until it refilled starts afresh.
- A gateway may accept upgrades only from listed origins (\`ALLOWED_ORIGINS\`): another
  \`Origin\` is refused with HTTP 403 before the WebSocket opens.

## Handshake
\`\`\`
client                                   gateway
  |--- WebSocket upgrade (opt. Authorization: Bearer) -->|
  |--- hello { v, token?, session_id?, last_cursor? } -->|  verify token
  |<-- welcome { session_id, resume.status, cursor } ----|  attach listeners
  |<-- event (replayed, cursor > last_cursor) ... -------|  resume
  |<-- event (live) ... / rpc_result / rpc_error --------|
\`\`\`
The first frame must be \`hello\` (or the hello comes in the upgrade, [below](#the-hello-in-the-upgrade)), and the handshake must end within ${protocolDefaults.handshakeTimeoutMs} ms of the connection:
a gateway still waiting for the \`hello\` or its token check then closes with 4002 (auth timeout); one that accepted the token but whose own Redis did not answer in time (presence, the user's stream) closes with 1013 (try again later),
and the client retries. A client gives one attempt ${protocolDefaults.clientHandshakeTimeoutMs} ms from its start (its token and connect included), so that the gateway's answer comes first when those take under 2 s. A bad token closes with 4001 and a reason saying why
(\`token_expired\`, \`bad_signature\`, ...: see [Auth failure reasons](#auth-failure-reasons)), a
\`hello.v\` the gateway does not speak with 4010. Any other frame before \`hello\` is answered with an \`error\` frame and a
4004 close. Frames sent after the hello and before the welcome (an \`rpc\` pipelined behind it)
are held, and handled in the order sent once the welcome is out: nothing is answered before the
welcome, and counted against the rate limit then, once. At most 32 are held; a 33rd closes the
connection with 4004.

${upgradeHelloSection()}
## Token lifetime
A session lives as long as its token. ${protocolDefaults.tokenRefreshLeadMs} ms before the token expires
(\`TOKEN_REFRESH_LEAD_MS\`), the gateway sends \`notice\` \`token_expiring\` with \`expires_at_ms\`,
once per token. A token with less than twice that left is asked for at half its remaining life
instead. The client gets a fresh token and sends it on the open socket, one refresh at a time:
\`\`\`
  |<-- notice { kind: token_expiring, expires_at_ms } ---|
  |--- auth { token } ---------------------------------->|  verify: same user?
  |<-- notice { kind: token_refreshed, expires_at_ms } --|  session extended
\`\`\`
Nothing is interrupted: events and RPCs keep flowing. A token for another user closes the
session with 4003; an invalid one is answered with an \`error\` frame (\`not_authenticated\`)
and the session keeps its current deadline. A token is valid until \`exp\` plus the gateway's
clock tolerance (\`TOKEN_CLOCK_TOLERANCE_MS\`), the same for \`hello\`, \`auth\` and the HTTP API.
With no valid token by then plus the gateway's grace (\`TOKEN_EXPIRY_GRACE_MS\`), the session
is closed with 4011 (\`token_expired\`): get a fresh token and reconnect (the resume loses nothing).

${heartbeatSection()}
## Events and resume
Every event carries a per-user \`cursor\` of the form \`<epoch>:<offset>\`, opaque to
applications: one stream per user across all their sessions and every gateway instance.
The offset counts events; the epoch names one incarnation of the stream. A stream that
was lost or reset (retention expired, Redis flushed, an embedded gateway restarted)
gets a new epoch, so an old cursor is recognised as such rather than mistaken for a new
one. A client remembers the cursor of the last event it handled and sends it as
\`hello.last_cursor\` when it reconnects, to any instance. The \`welcome.resume.status\` says
what follows:
- \`fresh\`: no cursor was sent; live events follow.
- \`resumed\`: the \`replayed\` events after \`last_cursor\` follow, in order, then live ones.
- \`gap\`: some events after \`last_cursor\` are no longer retained (or the stream was
  reset): refetch your state. The stream continues after \`resume.cursor\`, and the
  \`replayed\` events after it follow, in order, then live ones. Within the cursor's epoch
  (retention passed it, or a failover skipped offsets) the events still retained after
  \`last_cursor\` are replayed, holes and all, and \`resume.cursor\` is right before the
  first of them (the stream's head when none is left; the in-memory bus of an embedded
  gateway continues from the head). When the stream was made anew since (another epoch: Redis restarted empty, its
  keys expired, an embedded gateway restarted), every event of the new epoch came after
  \`last_cursor\`: \`resume.cursor\` is the new epoch's start (\`<epoch>:0\`, or right before
  its oldest event still retained) and all its retained events are replayed, so none
  published since the reset is skipped.
A client that drops events at or below a cursor it has already handled (same epoch, lower
or equal offset) gets each event exactly once and in order.

## Client frames
${frames(clientFrameExamples)}

## Server frames
${frames(serverFrameExamples)}

## RPC
\`rpc\` frames carry positional \`args\`, like \`rpc_call("NAMESPACE.method", args=[...])\`.
The \`id\` (string or integer) comes back on the matching \`rpc_result\` or
\`rpc_error\`. A user may act only on their own \`user_id\`; a service token may act
for any user. The same calls are accepted over HTTP: \`POST /rpc\` with
\`{"method": ..., "args": [...]}\` and a bearer token.

Error codes (\`rpc_error.error.code\`): ${RPC_ERROR_CODES.map((c) => `\`${c}\``).join(', ')}.
\`invalid_params\` carries \`data.issues\`: \`[{ path, message }]\`, with paths counted from the first argument.

${httpRpcSection()}

${methodSections()}

${eventsSection()}

## Close codes
\`reason\` is what \`classifyDisconnect(code, reason)\` returns (metric labels and
\`ws_disconnect\` logs use it); \`policy\` is what a client does next:
\`reconnect\` with jittered backoff, \`refresh_token\` (reconnect at once with a fresh token;
stop if that one is refused too), or \`stop\`.
A close 1012 of a shutdown, or of a stream made anew (Redis came back empty), is preceded
by a \`notice\` frame whose \`reconnect_after_ms\` the client waits before reconnecting; a
1012 without one (a session that missed events) reconnects with the client's jittered backoff.

| code | name | reason | policy |
|---|---|---|---|
${closeCodeRows()}

## Auth failure reasons
A 4001 close carries, as its close reason, why the credential was refused; \`POST /rpc\` and
\`POST /publish\` answer HTTP 401 with the same value in \`error.reason\`. The gateway's log
(\`ws_auth_failed\`, \`http_auth_failed\`) has the verifier's own message; the wire never does.
A client should show the reason and treat any other string (older gateways send \`auth failed\`)
as "refused, no reason given". A client reconnects with backoff after \`verifier_unavailable\` and
\`internal_error\` (the gateway's trouble, not the credential's), as after any transient close;
after any other reason it tries once more at once with a fresh token, then stops. Example:
\`close(4001, "token_expired")\`, or

${json({ error: { code: 'unauthenticated', message: 'invalid token', reason: 'token_expired' } })}

| reason | meaning |
|---|---|
${authFailureRows()}
`;
}

/** The "Events" section: the event types, a backend's publish, and what the gateway's listeners send. */
function eventsSection(): string {
  return `## Events
Event types: ${EVENT_TYPES.map((e) => `\`${e}\``).join(', ')}. A backend publishes
one with \`POST /publish\` \`{ "user_id": ..., "event": ... }\`, for example:

${appEventExamples.map((e) => json(e)).join('\n\n')}

The gateway's own Firestore listeners send \`listener.change\` for each change and
\`listener.status\` when one of them starts failing (\`status: "failing"\`, with its \`kind\` and
whether the gateway keeps \`retrying\` it) and when it delivers again (\`"recovered"\`): on each
change of state only, in the user's stream like the changes, so every tab gets it and a resume
replays it. A session that connects without a cursor learns nothing of a failure that began
before it: see [listeners](listeners.md#failures-told-to-the-user).`;
}

/** The "Heartbeat" section: the defaults' ping interval and timeout, and what each side does. */
function heartbeatSection(): string {
  return `## Heartbeat
The gateway sends WebSocket pings every ${protocolDefaults.pingIntervalMs} ms and drops a peer silent for
${protocolDefaults.pingTimeoutMs} ms. Clients that can see protocol pings (Node) ping a gateway they have
not heard from (a pong to their own ping does not count) for an interval, and treat a gateway silent
for ${protocolDefaults.pingTimeoutMs} ms as dead: against a live gateway, whose pings come every interval,
they send none.

Browsers cannot see protocol pings, and hidden tabs run timers about once a minute, so a
browser's own ping timer cannot be trusted. A browser client sends \`hello.app_ping: true\`:
the gateway then also sends it \`{"type":"ping","ts":...}\` frames every interval, which it
answers with \`{"type":"pong"}\`. Any frame counts as a sign of life. A client whose watchdog
wakes up late (throttled) does not give up at once: it sends a ping and waits a short grace
for any frame before declaring the gateway dead. Clients may still send \`ping\` frames; the
gateway answers \`pong\` echoing \`ts\`.
`;
}

export {
  type JsonSchema,
  type ProtocolJsonSchemas,
  protocolJsonSchemas,
  type WireSchemas,
  wireSchemas,
} from './json-schema';
