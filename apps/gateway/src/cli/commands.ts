import { parseArgs } from 'node:util';
import { MAX_TIMER_MS } from '../core/small-times';
import { VERSION } from '../version';
import { formatReport, runChecks } from './check';

/** The text of `livebus-gateway --help`. */
export const HELP = `livebus-gateway: the livebus WebSocket gateway

Usage:
  livebus-gateway
      Starts the gateway, configured by environment variables (docs/configuration.md).
  livebus-gateway worker
      Runs the task worker (TASK.* jobs from Redis), configured by the same variables (docs/tasks.md).
  livebus-gateway check --url URL [--admin-token TOKEN]
      Runs the post-deploy checks of docs/runbook.md against a running deployment and
      prints each with its threshold and verdict; exits 1 if any check failed.
  livebus-gateway [worker | check] --help | --version

Options:
  --url URL            where the deployment's admin endpoints answer: a task's address or an internal
                       listener, e.g. http://10.0.1.23:8080 (a ws:// or wss:// URL works too)
  --admin-token TOKEN  its ADMIN_TOKEN (default: $LIVEBUS_ADMIN_TOKEN)
  --timeout MS         (check) per request, default 5000
  --worker-wait MS     (check) with tasks on and no worker seen, how long to wait for one
                       before failing, default 30000
  -h, --help           this help
  -v, --version        the version
`;

/** What main.ts does after {@link runCommand}: start the server, or exit with the code. */
export type CommandOutcome =
  | { kind: 'serve' }
  | { kind: 'worker' }
  | { kind: 'exit'; code: number }
  | { kind: 'other'; command: string };

/** Where the commands write; the process streams unless a test passes its own. */
export interface CommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string | undefined>;
}

const processIo: CommandIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

/**
 * Handles the command line of `livebus-gateway`. No arguments: serve (the
 * container's command). `--help`, `--version` and `check` run here and never
 * start a server, and so do `worker --help` and `worker --version`: only a bare
 * `worker` starts the worker. Any other first word is returned as `other` for
 * main.ts to dispatch (e.g. a subcommand it owns) or refuse.
 */
export async function runCommand(argv: readonly string[], io: CommandIo = processIo): Promise<CommandOutcome> {
  const [first] = argv;
  if (first === undefined) return { kind: 'serve' };
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(HELP);
    return { kind: 'exit', code: 0 };
  }
  if (first === '--version' || first === '-v') {
    io.out(`${VERSION}\n`);
    return { kind: 'exit', code: 0 };
  }
  if (first === 'worker') return worker(argv.slice(1), io);
  if (first === 'check') return { kind: 'exit', code: await check(argv.slice(1), io) };
  if (first.startsWith('-')) {
    io.err(`livebus-gateway: unknown option ${first}\n\n${HELP}`);
    return { kind: 'exit', code: 64 }; // EX_USAGE
  }
  return { kind: 'other', command: first };
}

/** The options every command takes. */
const commonOptions = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** `--help` or `--version` after a command: print and exit 0 rather than run it. */
function helpOrVersion(values: { help?: boolean; version?: boolean }, io: CommandIo): number | undefined {
  if (values.help) io.out(HELP);
  else if (values.version) io.out(`${VERSION}\n`);
  else return undefined;
  return 0;
}

/** `worker` takes no arguments of its own: anything else would be silently ignored by a running worker. */
function worker(args: readonly string[], io: CommandIo): CommandOutcome {
  if (args.length === 0) return { kind: 'worker' };
  try {
    const { values } = parseArgs({ args: [...args], options: commonOptions });
    const code = helpOrVersion(values, io);
    if (code !== undefined) return { kind: 'exit', code };
  } catch (error) {
    io.err(`livebus-gateway worker: ${(error as Error).message}\n\n${HELP}`);
  }
  return { kind: 'exit', code: 64 };
}

async function check(args: readonly string[], io: CommandIo): Promise<number> {
  let values: {
    url?: string;
    'admin-token'?: string;
    timeout?: string;
    'worker-wait'?: string;
    help?: boolean;
    version?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        url: { type: 'string' },
        'admin-token': { type: 'string' },
        timeout: { type: 'string' },
        'worker-wait': { type: 'string' },
        ...commonOptions,
      },
    }));
  } catch (error) {
    io.err(`livebus-gateway check: ${(error as Error).message}\n\n${HELP}`);
    return 64;
  }
  const early = helpOrVersion(values, io);
  if (early !== undefined) return early;
  if (!values.url) {
    io.err(`livebus-gateway check: --url is required\n\n${HELP}`);
    return 64;
  }
  const adminToken = values['admin-token'] ?? io.env.LIVEBUS_ADMIN_TOKEN;
  const timeoutMs = values.timeout === undefined ? 5_000 : Number(values.timeout);
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    io.err(`livebus-gateway check: --timeout must be a positive number of milliseconds, got ${values.timeout}\n`);
    return 64;
  }
  const wait = values['worker-wait'];
  const workerWaitMs = wait === undefined ? undefined : Number(wait);
  if (workerWaitMs !== undefined && !(Number.isFinite(workerWaitMs) && workerWaitMs >= 0)) {
    io.err(`livebus-gateway check: --worker-wait must be a number of milliseconds, got ${wait}\n`);
    return 64;
  }
  let results: Awaited<ReturnType<typeof runChecks>>;
  try {
    results = await runChecks({
      url: values.url,
      ...(adminToken ? { adminToken } : {}),
      timeoutMs,
      ...(workerWaitMs === undefined ? {} : { workerWaitMs }),
    });
  } catch (error) {
    io.err(`livebus-gateway check: ${(error as Error).message}\n`);
    return 64;
  }
  io.out(formatReport(results));
  // Only when the gateway answered and refused it: not when it could not be reached at all.
  if (!adminToken && results.some((r) => r.name === '/ws-metrics' && r.value.startsWith('HTTP 401'))) {
    io.err('hint: /ws-metrics needs the admin token: --admin-token TOKEN or $LIVEBUS_ADMIN_TOKEN\n');
  }
  return results.some((r) => r.verdict === 'fail') ? 1 : 0;
}
