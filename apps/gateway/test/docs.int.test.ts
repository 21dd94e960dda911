import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { outboxDefaults, retentionDefaults } from '@livebus/publisher';
import { judgeListenerLatency, judgeReconnects, judgeRpcErrors } from '../src/cli/check';
import { EnvSchema } from '../src/config';
import type { LogEvent, LogFields, Logger } from '../src/logger';
import { DELIVERY_BUCKETS_S, DELIVERY_SOURCES } from '../src/metrics/delivery-latency';
import { SERVER_RPC_ERRORS } from '../src/metrics/prometheus';
import { RedisStatusLog } from '../src/redis/redis-status-log';

// docs/ is what operators paste into a deploy: its commands, ports, timeouts and log values
// must be the ones of the image, the examples in docker/ and the code. (Variables and log
// event names have their own tests: config.test.ts, logger.test.ts.)
const root = join(__dirname, '..', '..', '..');
const docsDir = join(root, 'docs');
const docs = Object.fromEntries(
  readdirSync(docsDir)
    .filter((f) => f.endsWith('.md'))
    .map((f) => [f, readFileSync(join(docsDir, f), 'utf8')]),
) as Record<string, string>;
const doc = (name: string) => docs[name] ?? '';
/** A doc without its code blocks, line breaks folded to spaces (sentences wrap anywhere). */
const prose = (text: string) => text.replace(/```[\s\S]*?```/g, '').replace(/\s+/g, ' ');
const dockerfile = readFileSync(join(root, 'docker', 'Dockerfile'), 'utf8');
const ecsFile = <T>(name: string): T => JSON.parse(readFileSync(join(root, 'docker', 'ecs', name), 'utf8')) as T;

interface Container {
  command: string[];
  environment: Array<{ name: string; value: string }>;
  stopTimeout: number;
}
const container = (file: string) =>
  (ecsFile<{ containerDefinitions: Container[] }>(file).containerDefinitions[0] as Container) ?? {};
const gatewayTask = container('gateway-task-definition.json');
const workerTask = container('worker-task-definition.json');
const envOf = (c: Container, name: string) => c.environment.find((e) => e.name === name)?.value;

const defaults = EnvSchema.parse({});
/** The port each variable has in the docs: the code's default, or (HEALTH_PORT has none) the example task definition's. */
const ports: Record<string, number> = {
  PORT: defaults.PORT,
  HEALTH_PORT: Number(envOf(gatewayTask, 'HEALTH_PORT')),
  WORKER_HTTP_PORT: defaults.WORKER_HTTP_PORT,
};

/** The table rows of the `### Logs` table of operations.md, by event. */
function logRows(): Array<{ event: string; cells: string[] }> {
  const section =
    doc('operations.md')
      .split(/^## Logs$/m)[1]
      ?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/^\|\s*`([A-Za-z_]+)`\s*\|(.*)$/gm)].map((m) => ({
    event: m[1] as string,
    cells: (m[2] as string).split('|').map((c) => c.trim()),
  }));
}

describe('docs/ agree with the image and docker/ecs', () => {
  it('every container command in the docs is one the image runs (`dist/main.js` in /app)', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    const known = new Set([gatewayTask.command, workerTask.command, cmd].map((c) => JSON.stringify(c)));
    const commands = Object.entries(docs).flatMap(([name, text]) =>
      [...text.matchAll(/\[\s*"node"[^\]]*\]/g)].map((m) => ({ name, command: JSON.stringify(JSON.parse(m[0])) })),
    );
    expect(commands.filter((c) => !known.has(c.command))).toEqual([]);
    // The worker's command, named where the docs explain how to run workers on ECS.
    const onEcs =
      doc('tasks.md')
        .split(/^### On ECS$/m)[1]
        ?.split(/^### /m)[0] ?? '';
    expect([...onEcs.matchAll(/\[\s*"node"[^\]]*\]/g)].map((m) => JSON.parse(m[0]))).toEqual([workerTask.command]);
    expect(workerTask.command).toEqual([...cmd, 'worker']);
  });

  it('every stopTimeout the docs give is the task definitions’', () => {
    expect(gatewayTask.stopTimeout).toBe(workerTask.stopTimeout);
    const stated = Object.entries(docs).flatMap(([name, text]) =>
      [...prose(text).matchAll(/(\d+) s `stopTimeout`|`stopTimeout` \(?(\d+) s/g)].map((m) => ({
        name,
        seconds: Number(m[1] ?? m[2]),
      })),
    );
    expect(stated.map((s) => s.name)).toEqual(expect.arrayContaining(['tasks.md', 'operations.md', 'runbook.md']));
    expect(stated.filter((s) => s.seconds !== gatewayTask.stopTimeout)).toEqual([]);
  });

  it('every port the docs give a variable is its default in the code (HEALTH_PORT: the example task definition’s)', () => {
    const stated = Object.entries(docs).flatMap(([name, text]) =>
      [...prose(text).matchAll(/`(PORT|HEALTH_PORT|WORKER_HTTP_PORT)`[ ,(]*(?:e\.g\. )?(\d{2,5})\b/g)].map((m) => ({
        name,
        variable: m[1] as string,
        port: Number(m[2]),
      })),
    );
    expect(new Set(stated.map((s) => s.variable))).toEqual(new Set(Object.keys(ports)));
    expect(stated.filter((s) => s.port !== ports[s.variable])).toEqual([]);
    // The worker's container health check in tasks.md probes the worker's port.
    const onEcs = prose(
      doc('tasks.md')
        .split(/^### On ECS$/m)[1]
        ?.split(/^### /m)[0] ?? '',
    );
    const probed = [...onEcs.matchAll(/http:\/\/(?:localhost|127\.0\.0\.1):(\d+)\/healthz/g)].map((m) => Number(m[1]));
    expect(probed).toEqual([ports.WORKER_HTTP_PORT]);
  });

  it('the default ports differ: a gateway (with its health port) and a worker run on one host', () => {
    const all = Object.values(ports);
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('docs/configuration.md', () => {
  it('gives every variable the default the code has', () => {
    const rows = [...doc('configuration.md').matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*([^|]*?)\s*\|/gm)];
    const code = defaults as Record<string, unknown>;
    const agrees = (name: string, cell: string): boolean => {
      const documented = /^`([^`]*)`/.exec(cell)?.[1];
      if (code[name] === undefined) return documented === undefined || name === 'INSTANCE_ID'; // unset, or generated
      return documented === String(code[name]);
    };
    const wrong = rows
      .map((m) => ({ name: m[1] as string, cell: m[2] as string }))
      .filter(({ name, cell }) => !agrees(name, cell))
      .map(({ name, cell }) => ({ name, cell, code: code[name] }));
    expect(wrong).toEqual([]);
  });
});

describe('packages/publisher/README.md', () => {
  // The publisher's defaults are the gateway's STREAM_RETENTION_* and PUBLISH_* defaults
  // (one module, packages/publisher/src/defaults.ts): its README must quote the same values.
  const readme = prose(readFileSync(join(root, 'packages', 'publisher', 'README.md'), 'utf8'));

  it('gives the retention options the defaults the code has', () => {
    const documented = Object.fromEntries(
      [...readme.matchAll(/`(retentionEvents|retentionMs|retentionBytes|epochTtlMs)` (\d+)/g)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    expect(documented).toEqual(retentionDefaults);
  });

  it('gives the outbox the retry delays and capacity the code has', () => {
    const delays = outboxDefaults.retryDelaysMs.map((ms) => `${ms / 1000} s`);
    expect(readme).toContain(`retries after ${delays.slice(0, -1).join(', ')} and ${delays.at(-1)}`);
    expect(readme).toContain(
      `\`outboxMaxEvents\` (${outboxDefaults.maxEvents.toLocaleString('en').replace(',', ' ')})`,
    );
  });
});

describe('docs/operations.md', () => {
  it('lists each log event once', () => {
    const events = logRows().map((r) => r.event);
    expect(events.filter((e, i) => events.indexOf(e) !== i)).toEqual([]);
  });

  it('gives only the redis_status values and fields that RedisStatusLog logs', () => {
    const logged: LogFields[] = [];
    const record = (_event: LogEvent, fields: LogFields = {}) => logged.push(fields);
    const logger: Logger = { error: record, warn: record, info: record, debug: record };
    const client = new EventEmitter();
    let now = 0;
    new RedisStatusLog(logger, client, { now: () => now });
    // Every event ioredis emits, in every order an outage produces.
    for (const event of [
      'ready',
      'error',
      'close',
      'reconnecting',
      'end',
      'reconnecting',
      'ready',
      'end',
      'close',
      'ready',
    ]) {
      now += 5_000;
      if (event === 'error')
        client.emit(event, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      else client.emit(event);
    }
    const statuses = new Set(logged.map((f) => f.status));
    // start_wait_ms: the one line main.ts and the worker log while they wait for Redis at start.
    const fields = new Set([...logged.flatMap((f) => Object.keys(f)), 'start_wait_ms']);

    const rows = logRows().filter((r) => r.event === 'redis_status');
    expect(rows).toHaveLength(1);
    const [, fieldsCell = ''] = rows[0]?.cells ?? [];
    const documentedValues = [...fieldsCell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    const documentedFields = fieldsCell
      .replace(/\([^)]*\)/g, '')
      .split(',')
      .map((f) => f.trim());
    expect(new Set(documentedValues)).toEqual(statuses);
    expect(new Set(documentedFields)).toEqual(fields);
  });
});

describe('delivery latency and the checks that judge it', () => {
  it("runbook.md's sample of `check` gives the thresholds the code judges by", () => {
    const runbook = doc('runbook.md');
    for (const judge of [judgeListenerLatency, judgeRpcErrors, judgeReconnects]) {
      expect(runbook).toContain(`threshold: ${judge({}).threshold}`);
    }
  });

  it('operations.md names every source, every bucket bound and the server-side RPC errors', () => {
    const section =
      doc('operations.md')
        .split(/^### Delivery latency$/m)[1]
        ?.split(/^## /m)[0] ?? '';
    const sources = [...section.matchAll(/^\| `([a-z]+)` +\|/gm)].map((m) => m[1]);
    expect([...sources].sort()).toEqual([...DELIVERY_SOURCES].sort());
    expect(prose(section)).toContain(`Buckets (seconds): ${DELIVERY_BUCKETS_S.join(', ')};`);
    const metricsText = prose(doc('operations.md'));
    expect(metricsText).toContain(
      `(\`server_errors\`: outcomes ${SERVER_RPC_ERRORS.map((e) => `\`${e}\``).join(', ')};`,
    );
  });
});

describe('docs/*.md', () => {
  it.each(Object.keys(docs))('%s repeats no heading and no paragraph line', (name) => {
    const text = doc(name).replace(/```[\s\S]*?```/g, '');
    const lines = text.split('\n').map((l) => l.trim());
    const headings = lines.filter((l) => /^#{1,6} /.test(l));
    expect(headings.filter((h, i) => headings.indexOf(h) !== i)).toEqual([]);
    // Long prose lines (table rows aside) appear once: a repeated one is a pasted-twice section.
    const prosaic = lines.filter((l) => l.length > 50 && !l.startsWith('|'));
    expect(prosaic.filter((l, i) => prosaic.indexOf(l) !== i)).toEqual([]);
  });
});
