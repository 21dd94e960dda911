import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { sleep } from './wait';

/** A child process a test started: a gateway, a worker, a CLI run or a fixture script. */
export interface ChildHandle {
  /** Names the child in failure output, e.g. `gw-a` or `worker`. */
  readonly name: string;
  readonly child: ChildProcess;
  /** JSON lines the child wrote to stdout (its logs), parsed, in order; other lines are skipped. */
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the exit code (null after a signal). */
  readonly exited: Promise<number | null>;
  /** What the child wrote to stdout so far (the last {@link ChildOptions.keepBytes} bytes). */
  stdout(): string;
  /** What the child wrote to stderr so far (the last {@link ChildOptions.keepBytes} bytes). */
  stderr(): string;
  /**
   * Waits for a JSON log line `match` accepts. Fails early when the child exits first, and
   * either failure carries the child's stderr, so a crash at start-up explains itself.
   */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /**
   * Polls `check` like `waitFor`, but fails early when the child exits and attaches its
   * stderr to the error.
   */
  waitUntil<T>(
    check: () => T | Promise<T>,
    what: string,
    timeoutMs?: number,
    everyMs?: number,
  ): Promise<NonNullable<T>>;
  /** Sends `signal` (an expected exit, not reported as a crash) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The child's name, exit state, stderr and the tail of its stdout, for a failure message. */
  report(): string;
}

/** Options of {@link startChild}. */
export interface ChildOptions {
  /** The child's whole environment (nothing is inherited but what is passed). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Pipe stdin (a fixture that reads commands) instead of ignoring it. @default false */
  stdin?: boolean;
  /**
   * The child is meant to exit on its own (a CLI run, a start-up that must fail): its exit is
   * not reported as a crash. @default false
   */
  exits?: boolean;
  /** How much of each of stdout and stderr to keep, from the end. @default 65536 */
  keepBytes?: number;
}

/**
 * Where children are listed for the failure report of the preset's jest environment
 * (packages/jest-presets/test-environment.js reads the same key). It forgets the ones that exited
 * before the current test.
 */
const registryKey = Symbol.for('livebus.test-support.children');

interface ChildRegistry {
  children: Set<ChildHandle & { exitedAt?: number }>;
}

function registry(): ChildRegistry {
  const g = globalThis as unknown as Record<symbol, ChildRegistry | undefined>;
  g[registryKey] ??= { children: new Set() };
  return g[registryKey];
}

/** A string that keeps only its last `max` characters. */
class Tail {
  private text = '';
  constructor(private readonly max: number) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text.length > this.max ? `…${this.text.slice(-this.max)}` : this.text;
  }
}

/**
 * Starts `command args` as a child process that keeps its stdout and stderr (bounded), parses
 * its JSON log lines, and is listed so that a failing jest test prints its stderr (the preset's
 * environment does that). A child that exits on its own with a non-zero code, or dies of a signal
 * no test sends (SIGABRT, SIGSEGV), prints its stderr at once: a crash never goes unseen.
 */
export function startChild(name: string, command: string, args: string[], options: ChildOptions): ChildHandle {
  const keep = options.keepBytes ?? 65_536;
  const child = spawn(command, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const out = new Tail(keep);
  const err = new Tail(keep);
  const lines: Array<Record<string, unknown>> = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => out.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => err.push(d));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a log line.
    }
  });
  let stopping = false;
  let exitState: string | undefined;
  const exited = new Promise<number | null>((resolve) => {
    // 'close', not 'exit': by then stdout and stderr are drained, so the report is complete.
    child.once('close', (code, signal) => {
      exitState = signal ? `killed by ${signal}` : `exited with code ${code}`;
      handle.exitedAt = Date.now();
      // A test's own kill (SIGKILL, SIGTERM, SIGINT) is no crash, even when sent to `child` directly.
      const crashed = signal ? !['SIGKILL', 'SIGTERM', 'SIGINT'].includes(signal) : code !== 0;
      if (!stopping && !options.exits && crashed) {
        process.stderr.write(`child ${name} died unexpectedly:\n${handle.report()}\n`);
      }
      resolve(code);
    });
    child.once('error', (error) => {
      err.push(`spawn failed: ${error.message}\n`);
      exitState = 'never started';
      resolve(null);
    });
  });
  const failure = (message: string) => new Error(`${message}\n${handle.report()}`);
  const waitUntil = async <T>(
    check: () => T | Promise<T>,
    what: string,
    timeoutMs = 20_000,
    everyMs = 20,
  ): Promise<NonNullable<T>> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await check();
        if (value) return value as NonNullable<T>;
      } catch (error) {
        last = error;
      }
      if (exitState) throw failure(`${name} ${exitState} while waiting for ${what}`);
      if (Date.now() > deadline) {
        throw failure(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
      }
      await sleep(everyMs);
    }
  };
  const handle: ChildHandle & { exitedAt?: number } = {
    name,
    child,
    lines,
    exited,
    stdout: () => out.toString(),
    stderr: () => err.toString(),
    waitForLine: (match, what, timeoutMs) => waitUntil(() => lines.find(match), what, timeoutMs),
    waitUntil,
    stop: async (signal = 'SIGTERM') => {
      stopping = true;
      if (exitState === undefined) child.kill(signal);
      return exited;
    },
    report: () => {
      const stdoutTail = out.toString().split('\n').slice(-20).join('\n');
      return [
        `--- child ${name} (pid ${child.pid ?? '?'}, ${exitState ?? 'running'})`,
        `--- stderr:\n${err.toString() || '(empty)'}`,
        `--- last stdout lines:\n${stdoutTail || '(empty)'}`,
      ].join('\n');
    },
  };
  registry().children.add(handle);
  return handle;
}

/** What {@link runCli} returns: the exit code (null after a signal) and the output. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command-line program to its end through {@link startChild} (so a failing test that ran
 * it shows its output) and returns its exit code, stdout and stderr.
 */
export async function runCli(
  name: string,
  command: string,
  args: string[],
  options: Omit<ChildOptions, 'exits'>,
): Promise<CliRun> {
  const run = startChild(name, command, args, { ...options, exits: true });
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
