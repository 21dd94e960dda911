#!/usr/bin/env node
// `livebus-publish`: publish one event from a terminal or a shell script. It lives here, not in
// the client's `livebus` CLI, so that installing the browser client never installs a Redis client.
import { parseArgs } from 'node:util';
import { type AppEvent, isEventType } from '@livebus/protocol';
import { MAX_TIMER_MS } from './check-option';
import { createPublisher } from './create-publisher';
import { InvalidEventError } from './invalid-event-error';
import { PublishError } from './publish-error';

/** Replaced at build time by tsup (package.json's version). */
declare const __LIVEBUS_VERSION__: string | undefined;
const VERSION: string = typeof __LIVEBUS_VERSION__ === 'string' ? __LIVEBUS_VERSION__ : '0.0.0-dev';

const HELP = `livebus-publish: publish one livebus event through Redis

Usage:
  livebus-publish --redis-url URL [--cluster] [--retries N] USER_ID EVENT_TYPE JSON_DATA
      Publishes one event through Redis to every gateway of the fleet (no gateway URL
      needed); prints the event's cursor and exits 0, or explains why not and exits 1.
      Exit 1 with "(the event may be stored)" at the end: an attempt got no answer (a
      timeout, a connection lost once sent), and Redis may have stored it after all:
      look before publishing it again.
      A wrong command line (a missing or unknown option, a bad --retries or
      --redis-url) exits 2, with this usage.

Options:
  --redis-url URL  the fleet's Redis, e.g. redis://localhost:6379
  --cluster        the URL is one node of a Redis Cluster
  --retries N      retries while Redis is unreachable (1 s, 2 s, 4 s, ...), 0 to 30, default 3
  -h, --help       this help
  -v, --version    the version

Example:
  livebus-publish --redis-url redis://localhost:6379 alice task.progress_update '{"task_id":"t1","status":"running","progress":40}'
`;

/** Most `--retries`: the waits double from 1 s, so 30 add up to months already. */
const MAX_RETRIES = 30;

/** A wrong command line: exit 2, with the usage. */
function fail(message: string): never {
  process.stderr.write(`livebus-publish: ${message}\n\n${HELP}`);
  process.exit(2);
}

/** An event or a Redis that said no: exit 1. */
function exit(message: string): never {
  process.stderr.write(`livebus-publish: ${message}\n`);
  process.exit(1);
}

const options = {
  'redis-url': { type: 'string' },
  cluster: { type: 'boolean' },
  retries: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** The command line, checked: what to publish, where, with how many retries. */
function readCommandLine() {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ options, allowPositionals: true });
  } catch (error) {
    fail((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const redisUrl = values['redis-url'];
  if (!redisUrl) fail('publish needs --redis-url');
  const [userId, type, json, ...extra] = positionals;
  if (!userId || !type || json === undefined || extra.length > 0) fail('publish needs USER_ID EVENT_TYPE JSON_DATA');
  const retries = values.retries ?? '3';
  // Digits only: Number('') is 0 and Number('1e3') 1000. Bounded: each retry is a delay made up
  // front, and the waits double from 1 s (30 already wait months).
  if (!/^\d+$/.test(retries) || Number(retries) > MAX_RETRIES) {
    fail(`--retries must be a whole number from 0 to ${MAX_RETRIES}, got ${JSON.stringify(retries)}`);
  }
  const count = Number(retries);
  return { redisUrl, cluster: values.cluster === true, retries: count, userId, type, json };
}

async function main(): Promise<void> {
  const { redisUrl, cluster, retries, userId, type, json } = readCommandLine();
  if (!isEventType(type)) exit(`unknown event type ${type}`);
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    exit(`JSON_DATA is not JSON: ${(error as Error).message}`);
  }
  // Doubling from 1 s, each at most what a Node timer keeps (about 24.8 days).
  const retryDelaysMs = Array.from({ length: retries }, (_, i) => Math.min(1_000 * 2 ** i, MAX_TIMER_MS));
  let publisher: ReturnType<typeof createPublisher>;
  try {
    // One event, then exit: no outbox to wait in, the exit code must say whether it was stored.
    publisher = createPublisher({ redisUrl, cluster }, { retryDelaysMs, outboxMaxEvents: 0 });
  } catch {
    // Not quoted: the URL may hold a password.
    fail('--redis-url must be a redis:// or rediss:// URL, like redis://localhost:6379');
  }
  try {
    // The event is checked by the publisher (InvalidEventError), not by this cast.
    const stored = await publisher.publish(userId, { event: type, data } as AppEvent);
    process.stdout.write(`${stored.cursor}\n`);
    await publisher.close();
    process.exit(0);
  } catch (error) {
    await publisher.close();
    if (error instanceof InvalidEventError) exit(error.message);
    // "cannot reach Redis at HOST:PORT (CODE) after N attempt(s)": say which setting to fix. On a
    // Cluster, a message naming one node ("cannot reach Redis Cluster node HOST:PORT (seed ...)")
    // is about that shard: the URL, its seed, answered.
    if (error instanceof PublishError && error.code === 'redis_unavailable') {
      const node = error.message.startsWith('cannot reach Redis Cluster node ');
      exit(
        `${error.code}: ${error.message}; ${node ? 'check that node (--redis-url names the seed only)' : 'check --redis-url'}`,
      );
    }
    if (error instanceof PublishError) exit(`${error.code}: ${error.message}`);
    exit(String(error));
  }
}

void main();
