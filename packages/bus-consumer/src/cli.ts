#!/usr/bin/env node
// `livebus`: tail a user's events or call an RPC method from a terminal.
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { CursorSchema, isRpcMethod, type RpcMethod, type RpcParams } from '@livebus/protocol';
import { ConnectError, FatalCloseError, RpcError } from './errors';
import { groupedListener } from './grouped-handlers';
import { BusConsumer, type ConsumerEvents, type ConsumerOptions } from './index';

/** Replaced at build time by tsup (package.json's version). */
declare const __LIVEBUS_VERSION__: string | undefined;
const VERSION: string = typeof __LIVEBUS_VERSION__ === 'string' ? __LIVEBUS_VERSION__ : '0.0.0-dev';

const HELP = `livebus: a terminal client for a livebus gateway

Usage:
  livebus tail --url URL [--token TOKEN | --user USER_ID] [--cursor C] [--group-window MS [--group-by FIELD]]
      Prints every event as one JSON line; reconnects and resumes forever (Ctrl-C or
      SIGTERM stops, exit 0); exits 1 saying why when the gateway refuses it for good.
      With --group-window, prints batches instead: { key, events } per FIELD value, each
      collected for MS from its first event.
  livebus rpc --url URL [--token TOKEN | --user USER_ID] METHOD [JSON_ARG ...]
      Calls METHOD with positional JSON arguments; prints the result as JSON and exits 0,
      or prints the error ({ code, message, data }) on stderr and exits 1.

  Publishing an event moved to the publisher's own command, livebus-publish
  (npm install @livebus/publisher; npx livebus-publish --help).

Options:
  --url URL        the gateway's WebSocket URL, e.g. wss://rt.example.com/ws
  --token TOKEN    a Firebase ID token or JWT (default: $LIVEBUS_TOKEN)
  --user USER_ID   user id, for gateways running with AUTH_MODE=none
  --cursor C       (tail) resume after this cursor
  --timeout MS     (rpc) call timeout, default 10000
  --group-window MS  (tail) print events in batches collected over MS milliseconds
  --group-by FIELD (tail) one batch per value of FIELD: a field of the event's data
                   (task_id) or of the frame (event); default: one batch for everything
  -h, --help       this help
  -v, --version    the version

Examples:
  livebus tail --url ws://localhost:8080/ws --user alice
  livebus tail --url ws://localhost:8080/ws --user alice --group-window 2000 --group-by task_id
  livebus rpc --url ws://localhost:8080/ws --user alice REGISTRY.register_user '"alice"' '"tab-1"' '"/inbox"'
`;

function fail(message: string): never {
  process.stderr.write(`livebus: ${message}\n\n${HELP}`);
  process.exit(2);
}

/** The longest delay a Node timer keeps (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A flag's milliseconds: a whole number from 1 to {@link MAX_TIMER_MS}, else exit 2 naming the flag. */
function milliseconds(flag: string, value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(ms >= 1 && ms <= MAX_TIMER_MS)) {
    fail(`${flag} must be a whole number of milliseconds, 1 to ${MAX_TIMER_MS} (got ${JSON.stringify(value)})`);
  }
  return ms;
}

async function main(): Promise<void> {
  // The reader of stdout is gone (`livebus tail ... | head -1`): nothing more can be printed; end
  // quietly with 0, as `yes | head -1` does, rather than with an unhandled EPIPE's stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  const options = {
    url: { type: 'string' },
    token: { type: 'string' },
    user: { type: 'string' },
    cursor: { type: 'string' },
    timeout: { type: 'string' },
    // Recognised only so that an old `livebus publish` command line reaches movedPublish().
    'redis-url': { type: 'string' },
    cluster: { type: 'boolean' },
    retries: { type: 'string' },
    'group-window': { type: 'string' },
    'group-by': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  } as const;
  try {
    parsed = parseArgs({ options, allowPositionals: true });
  } catch (error) {
    fail((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
  }
  if (values.help || !command) {
    process.stdout.write(HELP);
    process.exit(values.help ? 0 : 2);
  }
  if (command === 'publish') movedPublish();
  // Before the flags: a misspelt command (`livebus tial`) is named, not reported as a missing --url.
  if (command !== 'tail' && command !== 'rpc') fail(`unknown command ${command}`);
  refuseOtherFlags(command, values);
  if (!values.url) fail('--url is required');
  const token = values.token ?? process.env.LIVEBUS_TOKEN;
  const url = values.url;
  // After the command's own arguments are checked: a wrong command line is named first.
  const preflight = async () => {
    if (!token && !values.user) {
      fail('no token: pass --token TOKEN or set LIVEBUS_TOKEN (or --user USER_ID for a gateway with AUTH_MODE=none)');
    }
    return reachability(url);
  };
  const common = {
    url: values.url,
    ...(token ? { token } : {}),
    ...(values.user ? { userId: values.user } : {}),
  };

  if (command === 'tail') {
    const cursor = values.cursor;
    if (cursor !== undefined && !CursorSchema.safeParse(cursor).success) {
      fail('--cursor must be a cursor as printed by livebus tail, like k3x9q2:41');
    }
    const print = tailPrinter(values['group-window'], values['group-by']);
    const client = consumer({ ...common, ...(cursor !== undefined ? { lastCursor: cursor } : {}) });
    // Ctrl-C, or SIGTERM (`timeout`, a supervisor): the batches still collecting are printed, not lost; exit 0.
    let stopping = false;
    const stop = () => {
      stopping = true;
      print.flushAll();
      client.close();
      exitWhenWritten(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const unreachable = await preflight();
    // tail keeps trying by design; say once why nothing arrives yet.
    if (unreachable) process.stderr.write(`livebus: ${unreachable}; retrying\n`);
    client.onAny(print.listener);
    client.onClient('gap', (gap) => process.stderr.write(`livebus: gap: events after ${gap.lastCursor} are gone\n`));
    client.onClient('close', (c) => {
      const why = c.authReason ? `${c.reason}: ${c.authReason}` : c.reason;
      process.stderr.write(
        `livebus: closed ${c.code} (${why})${c.willReconnect ? `, reconnecting in ${c.delayMs} ms` : ''}\n`,
      );
    });
    // The error a stop comes with says why, as rpc does: `not_livebus_endpoint: ...`, `token_expired: ...`.
    client.onClient('error', (e) => {
      const stopped = stopReason(e, url);
      process.stderr.write(`livebus: ${stopped ? `${stopped.code}: ${stopped.message}` : e.message}\n`);
    });
    client.onClient('state', ({ newState }) => {
      // Stopped by the gateway's word; not by stop(), whose close() comes here too.
      if (newState === 'closed' && !stopping) {
        print.flushAll();
        // The client emits that error just after this change: exit once it is written.
        setImmediate(() => exitWhenWritten(1));
      }
    });
    // A stop before the first session rejects connect() too; the `error` listener has said why.
    await client.connect().catch(() => {});
    return;
  }

  if (command === 'rpc') {
    const { method, args } = rpcArguments(rest);
    const timeout = values.timeout === undefined ? 10_000 : milliseconds('--timeout', values.timeout);
    const client = consumer({ ...common, rpcTimeoutMs: timeout, whileDisconnected: 'queue' });
    const unreachable = await preflight();
    if (unreachable) {
      process.stderr.write(`${JSON.stringify({ code: 'unavailable', message: unreachable })}\n`);
      exitWhenWritten(1);
      return;
    }
    client.onClient('error', () => {});
    let lastClose: ConsumerEvents['close'] | undefined;
    client.onClient('close', (close) => {
      lastClose = close;
    });
    try {
      // A client that stops before it opens (refused token, wrong path) rejects connect() with the reason;
      // one that keeps trying (a gateway that cannot check the token now) fails at the timeout, and the
      // output then says how its last attempt ended.
      const connected = client.connect();
      const call = client.rpc(method, ...(args as RpcParams<RpcMethod>));
      const result = await Promise.race([call, connected.then(() => call)]);
      // A result larger than a pipe's buffer (64 KB) is still being written: exit once it is out.
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      client.close();
      exitWhenWritten(0);
    } catch (error) {
      const failure = rpcFailure(error);
      // Still trying (a stop already says why): how its last attempt ended.
      const last = client.state !== 'closed' && client.counters.connects === 0 ? lastClose : undefined;
      const output = last
        ? { ...failure, last_close: { code: last.code, reason: last.authReason ?? last.reason } }
        : failure;
      process.stderr.write(`${JSON.stringify(output)}\n`);
      client.close();
      exitWhenWritten(1);
    }
  }
}

/**
 * What `rpc` prints on stderr: the gateway's error ({ code, message, data }), or, when the
 * client stopped before it could call (refused token, wrong path), why: `token_expired`,
 * `not_livebus_endpoint`, ... rather than a generic `unavailable`.
 */
function rpcFailure(error: unknown): { code: string; message: string; data?: unknown } {
  const stopped = error instanceof ConnectError ? error : error instanceof RpcError ? error.cause : undefined;
  if (stopped instanceof ConnectError) return { code: stopped.code, message: stopped.message };
  const e = error instanceof RpcError ? error : new RpcError('internal', String(error));
  return { code: e.code, message: e.message, data: e.data };
}

/**
 * Exits once what was written to stdout and stderr is out: writes to a pipe are asynchronous,
 * and `process.exit` would drop the batches just flushed. A reader that takes nothing more
 * (a stuck pipe) holds the exit for 2 s at most.
 */
function exitWhenWritten(code: number): void {
  const written = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
  // A reader that takes no more within 2 s: exit anyway, but not 0 with output left unwritten
  // (a pipe to `less` left open, a stalled `ssh`): the caller must not take a cut result as whole.
  setTimeout(() => process.exit(process.stdout.writableLength > 0 ? code || 1 : code), 2_000).unref();
  void Promise.all([written(process.stdout), written(process.stderr)]).then(() => process.exit(code));
}

/** `rpc`'s METHOD and its JSON arguments, from the command line; exit 2 when they are not. */
function rpcArguments(rest: readonly string[]): { method: RpcMethod; args: unknown[] } {
  const [method, ...jsonArgs] = rest;
  if (!method) fail('rpc needs a METHOD');
  if (!isRpcMethod(method)) fail(`unknown method ${method}`);
  try {
    return { method, args: jsonArgs.map((a) => JSON.parse(a)) };
  } catch {
    fail('every argument after METHOD must be JSON (strings in quotes: \'"alice"\')');
  }
}

/** Why the client stopped, when `error` is the one it stops with (see `#stop` in consumer.ts). */
function stopReason(error: Error, url: string): ConnectError | undefined {
  if (error instanceof ConnectError) return error;
  return error instanceof FatalCloseError ? ConnectError.fromClose(error, url) : undefined;
}

/** A client, or exit 2 when the options are refused (a URL without a scheme). */
function consumer(options: ConsumerOptions): BusConsumer {
  try {
    return new BusConsumer(options);
  } catch (error) {
    fail((error as Error).message);
  }
}

/**
 * How `tail` prints: one JSON line per event, or with `--group-window MS` one line
 * `{ key, events }` per batch, grouped by `--group-by FIELD` (a field of the event's
 * data, else of the frame). `flushAll` prints the batches still collecting.
 */
function tailPrinter(windowArg: string | undefined, field: string | undefined) {
  const line = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
  if (windowArg === undefined) {
    if (field !== undefined) fail('--group-by needs --group-window MS');
    return { listener: line, flushAll: () => {} };
  }
  const windowMs = milliseconds('--group-window', windowArg);
  const keyOf = (frame: Record<string, unknown>) => {
    if (field === undefined) return '';
    const data = frame.data as Record<string, unknown> | undefined;
    const value = data !== null && typeof data === 'object' && field in data ? data[field] : frame[field];
    return value === undefined ? '' : String(value);
  };
  const grouped = groupedListener(
    (batch) => line({ key: keyOf(batch[0] as unknown as Record<string, unknown>), events: batch }),
    { groupWindowMs: windowMs, groupBy: (frame) => keyOf(frame as unknown as Record<string, unknown>) },
    (fn) => fn(),
  );
  return grouped;
}

/**
 * Why the gateway behind a WebSocket URL cannot be reached at all (refused,
 * unknown host, no answer), or undefined when something answers HTTP on its
 * host — whatever the status, the WebSocket handshake then says more (on a port
 * fetch() refuses: when it accepts a TCP connection). Without this, a gateway that
 * is not running shows up as an RPC timeout.
 */
async function reachability(url: string): Promise<string | undefined> {
  let probe: URL;
  try {
    probe = new URL(url);
  } catch {
    fail(`--url is not a URL: ${url}`);
  }
  // TLS for wss: and https: (an accepted --url), on the URL's port or that scheme's default (443).
  probe.protocol = probe.protocol === 'wss:' || probe.protocol === 'https:' ? 'https:' : 'http:';
  probe.pathname = '/healthz';
  try {
    await fetch(probe, { signal: AbortSignal.timeout(5_000) });
    return undefined;
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    // fetch() refuses the WHATWG "bad ports" (6000, 6666, 10080, ...) without trying them; the
    // WebSocket (node:http) does not: there, whether a TCP connection opens says it.
    if (cause?.message === 'bad port') return tcpReachability(url, probe);
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    return unreachable(url, why);
  }
}

/** {@link reachability} by a TCP connection to the gateway's host and port, for the ports fetch() refuses. */
function tcpReachability(url: string, probe: URL): Promise<string | undefined> {
  const host = probe.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 address without its brackets
  const port = Number(probe.port) || (probe.protocol === 'https:' ? 443 : 80);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5_000 });
    const done = (why: string | undefined) => {
      socket.destroy();
      resolve(why === undefined ? undefined : unreachable(url, why));
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done('ETIMEDOUT'));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

function unreachable(url: string, why: string): string {
  return `cannot reach the gateway at ${url} (${why}): is it running, and is the URL right?`;
}

/** A flag of the other command (or of the old `publish`) would be ignored without a word: exit 2 naming it. */
function refuseOtherFlags(command: 'tail' | 'rpc', values: Record<string, unknown>): void {
  const notHere =
    command === 'tail'
      ? ['timeout', 'redis-url', 'cluster', 'retries']
      : ['cursor', 'group-window', 'group-by', 'redis-url', 'cluster', 'retries'];
  for (const flag of notHere) if (values[flag] !== undefined) fail(`--${flag} is not an option of ${command}`);
}

/**
 * `livebus publish` moved to @livebus/publisher's `livebus-publish`, so that installing
 * the client (in every frontend) no longer installs a Redis client. Says where, exit 2.
 * The arguments are not echoed: the Redis URL may hold a password.
 */
function movedPublish(): never {
  process.stderr.write(
    "livebus: publish moved to the publisher's own command, livebus-publish, with the same arguments:\n" +
      '  npm install @livebus/publisher\n' +
      '  npx livebus-publish --redis-url URL [--cluster] [--retries N] USER_ID EVENT_TYPE JSON_DATA\n',
  );
  process.exit(2);
}

void main();
