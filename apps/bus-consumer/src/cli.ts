// `livebus`: tail a user's events or call an RPC method from a terminal.
import { parseArgs } from 'node:util';
import { CursorSchema, isRpcMethod, type RpcMethod, type RpcParams } from '@livebus/protocol';
import { RpcError } from './errors';
import { BusConsumer } from './index';

const HELP = `livebus: a terminal client for a livebus gateway

Usage:
  livebus tail --url URL [--token TOKEN | --user USER_ID] [--cursor C]
      Prints every event as one JSON line; reconnects and resumes forever (Ctrl-C stops).
  livebus rpc --url URL [--token TOKEN | --user USER_ID] METHOD [JSON_ARG ...]
      Calls METHOD with positional JSON arguments; prints the result as JSON and exits 0,
      or prints the error ({ code, message, data }) on stderr and exits 1.

Options:
  --url URL        the gateway's WebSocket URL, e.g. wss://rt.example.com/ws
  --token TOKEN    a Firebase ID token or JWT (default: $LIVEBUS_TOKEN)
  --user USER_ID   user id, for gateways running with AUTH_MODE=none
  --cursor C       (tail) resume after this cursor
  --timeout MS     (rpc) call timeout, default 10000
  -h, --help       this help

Examples:
  livebus tail --url ws://localhost:8080/ws --user alice
  livebus rpc --url ws://localhost:8080/ws --user alice REGISTRY.register_user '"alice"' '"tab-1"' '"/inbox"'
`;

function fail(message: string): never {
  process.stderr.write(`livebus: ${message}\n\n${HELP}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  const options = {
    url: { type: 'string' },
    token: { type: 'string' },
    user: { type: 'string' },
    cursor: { type: 'string' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  try {
    parsed = parseArgs({ options, allowPositionals: true });
  } catch (error) {
    fail((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    process.exit(values.help ? 0 : 2);
  }
  if (!values.url) fail('--url is required');
  const token = values.token ?? process.env.LIVEBUS_TOKEN;
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
    const client = new BusConsumer({ ...common, ...(cursor !== undefined ? { lastCursor: cursor } : {}) });
    client.onAny((frame) => process.stdout.write(`${JSON.stringify(frame)}\n`));
    client.onClient('gap', (gap) => process.stderr.write(`livebus: gap: events after ${gap.lastCursor} are gone\n`));
    client.onClient('close', (c) =>
      process.stderr.write(
        `livebus: closed ${c.code} (${c.reason})${c.willReconnect ? `, reconnecting in ${c.delayMs} ms` : ''}\n`,
      ),
    );
    client.onClient('error', (e) => process.stderr.write(`livebus: ${e.message}\n`));
    client.onClient('state', ({ newState }) => {
      if (newState === 'closed') process.exit(1);
    });
    process.on('SIGINT', () => {
      client.close();
      process.exit(0);
    });
    await client.connect().catch(() => {});
    return;
  }

  if (command === 'rpc') {
    const [method, ...jsonArgs] = rest;
    if (!method) fail('rpc needs a METHOD');
    if (!isRpcMethod(method)) fail(`unknown method ${method}`);
    let args: unknown[];
    try {
      args = jsonArgs.map((a) => JSON.parse(a));
    } catch {
      fail('every argument after METHOD must be JSON (strings in quotes: \'"alice"\')');
    }
    const timeout = values.timeout === undefined ? 10_000 : Number(values.timeout);
    const client = new BusConsumer({ ...common, rpcTimeoutMs: timeout, whileDisconnected: 'queue' });
    client.onClient('error', () => {});
    try {
      const stop = new Promise<never>((_, reject) =>
        client.onClient('state', ({ newState }) => {
          if (newState === 'closed')
            reject(new RpcError('unavailable', `connection refused (${client.counters.lastCloseReason})`));
        }),
      );
      void client.connect().catch(() => {});
      const call = client.rpc(method as RpcMethod, ...(args as RpcParams<RpcMethod>));
      const result = await Promise.race([call, stop]);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      client.close();
      process.exit(0);
    } catch (error) {
      const e = error instanceof RpcError ? error : new RpcError('internal', String(error));
      process.stderr.write(`${JSON.stringify({ code: e.code, message: e.message, data: e.data })}\n`);
      client.close();
      process.exit(1);
    }
  }
  fail(`unknown command ${command}`);
}

void main();
