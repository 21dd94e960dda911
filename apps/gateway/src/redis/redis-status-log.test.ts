import { EventEmitter } from 'node:events';
import type { LogEvent, LogFields, Logger } from '../logger';
import { outboxLogger, RedisStatusLog } from './redis-status-log';

function recorder() {
  const lines: Array<{ level: string; event: LogEvent; fields: LogFields }> = [];
  const at =
    (level: string) =>
    (event: LogEvent, fields: LogFields = {}) =>
      lines.push({ level, event, fields });
  const logger: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
  return { logger, lines };
}

describe('RedisStatusLog', () => {
  it('logs down once, repeats while down with a doubling interval, and logs up with how long it was away', () => {
    const { logger, lines } = recorder();
    const client = new EventEmitter();
    let now = 0;
    new RedisStatusLog(logger, client, { now: () => now });
    client.emit('ready');
    client.emit('close');
    // ioredis reports an attempt every 200 ms: 60 s of them.
    for (let t = 0; t < 60_000; t += 200) {
      now = t;
      client.emit('reconnecting');
      client.emit('close');
    }
    client.emit('ready');
    client.emit('ready');
    const statuses = lines.map((l) => l.fields.status);
    expect(statuses[0]).toBe('up');
    expect(statuses[1]).toBe('down');
    expect(statuses.at(-1)).toBe('up');
    // After 1, 2, 4, 8, 16 s: five repeats in a minute, not three hundred.
    const repeats = lines.filter((l) => l.fields.status === 'down' && l.fields.down_ms !== undefined);
    expect(repeats.map((l) => l.fields.down_ms)).toEqual([1_000, 3_000, 7_000, 15_000, 31_000]);
    expect(lines.at(-1)).toMatchObject({ level: 'info', fields: { status: 'up', down_ms: 59_800, attempts: 300 } });
  });
});

describe('RedisStatusLog says why', () => {
  it('down lines carry the last error as "cannot reach Redis at HOST:PORT (CODE)", without the password', () => {
    const { logger, lines } = recorder();
    const client = new EventEmitter();
    let now = 0;
    new RedisStatusLog(logger, client, { now: () => now, redisUrl: 'redis://app:hunter2@cache.internal:6380' });
    client.emit('ready');
    // A crash: the socket closes without an error, then every reconnect is refused.
    client.emit('close');
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6380'), { code: 'ECONNREFUSED' });
    for (let t = 200; t <= 1_200; t += 200) {
      now = t;
      client.emit('error', refused);
      client.emit('reconnecting');
      client.emit('close');
    }
    client.emit('ready');
    const down = lines.filter((l) => l.fields.status === 'down');
    expect(down.map((l) => l.fields.error)).toEqual([
      undefined,
      'cannot reach Redis at cache.internal:6380 (ECONNREFUSED)',
    ]);
    expect(JSON.stringify(lines)).not.toContain('hunter2');
    expect(lines.at(-1)?.fields).not.toHaveProperty('error');
  });
});

describe('RedisStatusLog on a connection that stays up but answers nothing (the probe)', () => {
  it('logs down at the first unanswered PING and repeats on the same doubling schedule until one is answered', () => {
    const { logger, lines } = recorder();
    const client = new EventEmitter();
    let now = 0;
    const log = new RedisStatusLog(logger, client, { now: () => now });
    client.emit('ready');
    // A round every 3 s (a 2 s timeout, then 1 s), for 30 s.
    for (let t = 0; t <= 30_000; t += 3_000) {
      now = t;
      log.unanswered('no answer to a PING within 2000 ms');
    }
    log.answering();
    const down = lines.filter((l) => l.fields.status === 'down');
    expect(down.map((l) => l.fields.down_ms)).toEqual([undefined, 3_000, 6_000, 12_000, 21_000]);
    expect(down.every((l) => l.fields.error === 'no answer to a PING within 2000 ms')).toBe(true);
    expect(lines.at(-1)).toMatchObject({ fields: { status: 'up', down_ms: 30_000 } });
  });
});

describe('outboxLogger', () => {
  it('logs queued once per outage, drained with the count, and dropped at most every 5 s', () => {
    const { logger, lines } = recorder();
    let now = 0;
    const log = outboxLogger(logger, () => now);
    for (let i = 0; i < 100; i++) log({ kind: 'queued', events: 1, waiting: i });
    log({ kind: 'drained', events: 100, downMs: 9_000 });
    for (let i = 0; i < 10; i++) {
      now = i * 1_000;
      log({ kind: 'dropped', reason: 'outbox_full', events: 2, waiting: 10 });
    }
    expect(lines.map((l) => [l.level, l.fields.status])).toEqual([
      ['warn', 'queued'],
      ['info', 'drained'],
      ['error', 'dropped'],
      ['error', 'dropped'],
    ]);
    expect(lines[1]?.fields).toMatchObject({ queued: 100, down_ms: 9_000 });
    expect(lines[3]?.fields).toMatchObject({ dropped: 10 });
  });

  it('logs every dropped event in some line: the count still unlogged before drained, and at close', () => {
    const { logger, lines } = recorder();
    let now = 0;
    const log = outboxLogger(logger, () => now);
    log({ kind: 'dropped', reason: 'outbox_full', events: 1, waiting: 10 });
    now = 1_000;
    log({ kind: 'dropped', reason: 'outbox_full', events: 9, waiting: 10 });
    now = 10_000;
    log({ kind: 'drained', events: 10, downMs: 10_000 });
    log({ kind: 'dropped', reason: 'outbox_full', events: 2, waiting: 10 });
    now = 11_000;
    log({ kind: 'dropped', reason: 'outbox_full', events: 3, waiting: 10 });
    log({ kind: 'dropped', reason: 'closed', events: 4, waiting: 0 });
    const dropped = lines.filter((l) => l.fields.status === 'dropped').map((l) => [l.fields.reason, l.fields.dropped]);
    expect(dropped).toEqual([
      ['outbox_full', 1],
      ['outbox_full', 9],
      ['outbox_full', 5],
      ['closed', 4],
    ]);
  });

  it('leaves Redis unreachable / reachable to redis_status (not counted as dropped)', () => {
    const { logger, lines } = recorder();
    const log = outboxLogger(logger);
    const failure = { code: 'ECONNREFUSED', message: 'cannot reach Redis at 10.0.0.5:6379 (ECONNREFUSED)', sinceMs: 0 };
    log({ kind: 'unreachable', failure, waiting: 3 });
    log({ kind: 'reachable', downMs: 1_000 });
    expect(lines).toEqual([]);
  });
});
