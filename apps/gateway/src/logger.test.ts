import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import TransportStream from 'winston-transport';
import { createLogger, LOG_EVENTS } from './logger';

class Capture extends TransportStream {
  readonly lines: string[] = [];
  override log(info: Record<symbol, string>, next: () => void): void {
    this.lines.push(info[Symbol.for('message')] ?? '');
    next();
  }
}

describe('createLogger', () => {
  it('writes one JSON object per line with event, instance_id, timestamp and the fields', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'info', format: 'json', instanceId: 'gw-1', transport: capture });
    log.info('ws_disconnect', { uid: 'u1', session_id: 's1', code: 1006, reason: '', type: 'abnormal_closure' });
    expect(capture.lines).toHaveLength(1);
    const line = JSON.parse(capture.lines[0] ?? '');
    expect(line).toMatchObject({
      event: 'ws_disconnect',
      level: 'info',
      instance_id: 'gw-1',
      uid: 'u1',
      session_id: 's1',
      code: 1006,
      type: 'abnormal_closure',
    });
    expect(new Date(line.timestamp).getTime()).not.toBeNaN();
  });

  it('drops lines below the level', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'warn', format: 'json', instanceId: 'gw-1', transport: capture });
    log.info('ws_connect', { uid: 'u1' });
    log.debug('registry_op', {});
    log.warn('ws_bad_frame', { uid: 'u1' });
    expect(capture.lines.map((l) => JSON.parse(l).event)).toEqual(['ws_bad_frame']);
  });

  it('prints a readable line with LOG_FORMAT=pretty', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'info', format: 'pretty', instanceId: 'gw-1', transport: capture });
    log.info('user_detach_executing', { uid: 'u1', listeners: 2 });
    const line = capture.lines[0] ?? '';
    expect(line).toContain('user_detach_executing');
    expect(line).toContain('uid=u1');
    expect(line).toContain('listeners=2');
    expect(() => JSON.parse(line)).toThrow();
  });
});

describe('LOG_EVENTS', () => {
  it('are all documented in the log table of docs/operations.md', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'operations.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/^\|\s*`([A-Za-z_]+)`\s*\|/gm)].map((m) => m[1]));
    expect(LOG_EVENTS.filter((e) => !documented.has(e))).toEqual([]);
  });
});
