import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import TransportStream from 'winston-transport';
import { type GatewayHookEvents, Hooks } from './hooks';
import { createLogger, LOG_EVENTS, logHooks } from './logger';

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

  it('writes a `message` field as given (the line of an event without one says its event)', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'info', format: 'json', instanceId: 'gw-1', transport: capture });
    log.warn('ws_bad_frame', { uid: 'u1', message: 'frame is not JSON' });
    log.info('ws_connect', { uid: 'u1' });
    // A line about another instance names it: its own `instance_id` is kept.
    log.warn('presence_error', { instance_id: 'gw-2' });
    expect(capture.lines.map((l) => JSON.parse(l))).toMatchObject([
      { event: 'ws_bad_frame', message: 'frame is not JSON', instance_id: 'gw-1', level: 'warn' },
      { event: 'ws_connect', message: 'ws_connect', instance_id: 'gw-1', level: 'info' },
      { event: 'presence_error', instance_id: 'gw-2' },
    ]);
  });

  it('drops lines below the level', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'warn', format: 'json', instanceId: 'gw-1', transport: capture });
    log.info('ws_connect', { uid: 'u1' });
    log.debug('registry_op', {});
    log.warn('ws_bad_frame', { uid: 'u1' });
    expect(capture.lines.map((l) => JSON.parse(l).event)).toEqual(['ws_bad_frame']);
  });

  it('tells which levels it writes, and follows a change of its transport level', () => {
    const capture = new Capture();
    const log = createLogger({ level: 'info', format: 'json', instanceId: 'gw-1', transport: capture });
    const levels = ['error', 'warn', 'info', 'debug'] as const;
    expect(levels.map((l) => log.enabled?.(l))).toEqual([true, true, true, false]);
    log.info('ws_connect', { uid: 'u1' });
    capture.level = 'warn';
    expect(levels.map((l) => log.enabled?.(l))).toEqual([true, true, false, false]);
    log.info('ws_connect', { uid: 'u2' });
    log.warn('ws_bad_frame', { uid: 'u2' });
    capture.level = 'debug';
    log.debug('registry_op', { uid: 'u3' });
    expect(capture.lines.map((l) => [JSON.parse(l).event, JSON.parse(l).uid])).toEqual([
      ['ws_connect', 'u1'],
      ['ws_bad_frame', 'u2'],
      ['registry_op', 'u3'],
    ]);
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

describe('logHooks', () => {
  it('writes the log lines operators query for each lifecycle moment: same event names, levels and fields', () => {
    const capture = new Capture();
    const logger = createLogger({ level: 'debug', format: 'json', instanceId: 'gw-1', transport: capture });
    const hooks = new Hooks<GatewayHookEvents>();
    const off = logHooks(hooks, logger);
    hooks.emit('detach.delay_start', { uid: 'u', sessionId: 's1', delayMs: 5_000 });
    hooks.emit('detach.cancelled', { uid: 'u', sessionId: 's2' });
    hooks.emit('detach.cancelled', { uid: 'u', late: true });
    hooks.emit('detach.cancelled', { uid: 'u', elsewhere: true });
    hooks.emit('detach.executing', { uid: 'u', listeners: 2 });
    hooks.emit('registry.cleanup', { uid: 'u', phase: 'skipped', reason: 'present' });
    hooks.emit('registry.cleanup', { uid: 'u', phase: 'start', attempt: 1 });
    hooks.emit('registry.cleanup', { uid: 'u', phase: 'error', attempt: 1, error: 'Error: down' });
    hooks.emit('registry.cleanup', { uid: 'u', phase: 'success', attempt: 2, outcome: 'cleaned' });
    hooks.emit('detach.complete', { uid: 'u' });
    hooks.emit('lease.acquired', { uid: 'u', token: 7, listeners: 2 });
    hooks.emit('lease.lost', { uid: 'u', reason: 'fenced' });
    hooks.emit('lease.lost', { uid: 'u', token: 7, reason: 'fenced' });
    hooks.emit('lease.released', { uid: 'u', token: 7, handover: false });
    // Moments without a log line of their own stay out of the logs.
    hooks.emit('listener.attached', { uid: 'u', listeners: 2, token: 7 });
    hooks.emit('listener.detached', { uid: 'u', listeners: 2, handover: false });
    const lines = capture.lines.map((l) => {
      const { timestamp, instance_id, ...rest } = JSON.parse(l);
      expect(instance_id).toBe('gw-1');
      return rest;
    });
    expect(lines).toEqual([
      {
        event: 'user_detach_delay_start',
        level: 'info',
        message: 'user_detach_delay_start',
        uid: 'u',
        session_id: 's1',
        delay_ms: 5_000,
      },
      { event: 'user_detach_cancelled', level: 'info', message: 'user_detach_cancelled', uid: 'u', session_id: 's2' },
      { event: 'user_detach_cancelled', level: 'info', message: 'user_detach_cancelled', uid: 'u', late: true },
      { event: 'user_detach_cancelled', level: 'info', message: 'user_detach_cancelled', uid: 'u', elsewhere: true },
      { event: 'user_detach_executing', level: 'info', message: 'user_detach_executing', uid: 'u', listeners: 2 },
      {
        event: 'REGISTRY_CLEANUP_SKIPPED',
        level: 'info',
        message: 'REGISTRY_CLEANUP_SKIPPED',
        uid: 'u',
        reason: 'present',
      },
      { event: 'REGISTRY_CLEANUP_START', level: 'info', message: 'REGISTRY_CLEANUP_START', uid: 'u', attempt: 1 },
      {
        event: 'REGISTRY_CLEANUP_ERROR',
        level: 'error',
        message: 'REGISTRY_CLEANUP_ERROR',
        uid: 'u',
        attempt: 1,
        error: 'Error: down',
      },
      {
        event: 'REGISTRY_CLEANUP_SUCCESS',
        level: 'info',
        message: 'REGISTRY_CLEANUP_SUCCESS',
        uid: 'u',
        attempt: 2,
        outcome: 'cleaned',
      },
      { event: 'ws_cleanup_complete', level: 'info', message: 'ws_cleanup_complete', uid: 'u' },
      {
        event: 'listener_lease_acquired',
        level: 'info',
        message: 'listener_lease_acquired',
        uid: 'u',
        token: 7,
        listeners: 2,
      },
      { event: 'listener_lease_lost', level: 'warn', message: 'listener_lease_lost', uid: 'u', reason: 'fenced' },
      {
        event: 'listener_lease_lost',
        level: 'warn',
        message: 'listener_lease_lost',
        uid: 'u',
        token: 7,
        reason: 'fenced',
      },
      {
        event: 'listener_lease_released',
        level: 'info',
        message: 'listener_lease_released',
        uid: 'u',
        token: 7,
        handover: false,
      },
    ]);
    off();
    hooks.emit('detach.complete', { uid: 'u' });
    expect(capture.lines).toHaveLength(lines.length);
  });

  it('does not call a logger that says it does not write info for the session open and close lines', () => {
    const calls: string[] = [];
    const at = (level: string) => (event: string) => {
      calls.push(`${level} ${event}`);
    };
    const hooks = new Hooks<GatewayHookEvents>();
    const logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
    const stop = logHooks(hooks, { ...logger, enabled: (level) => level === 'error' || level === 'warn' });
    hooks.emit('session.open', { uid: 'u', sessionId: 's', service: false });
    hooks.emit('session.close', { code: 1000, reason: '', type: 'normal_closure', authenticated: false });
    hooks.emit('session.auth_failed', { reason: 'invalid', code: 'bad_signature', error: 'nope' });
    stop();
    expect(calls).toEqual(['warn ws_auth_failed']);
  });

  it('writes the session, token and admission moments as the log lines operators query', () => {
    const lines: [string, string, Record<string, unknown> | undefined][] = [];
    const at =
      (level: string) =>
      (event: string, fields?: Record<string, unknown>): void => {
        lines.push([level, event, fields]);
      };
    const hooks = new Hooks<GatewayHookEvents>();
    const stop = logHooks(hooks, { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') });
    hooks.emit('session.open', { uid: 'u', sessionId: 's', service: false, resumeFrom: 'e:1' });
    hooks.emit('session.close', { code: 4002, reason: 'auth timeout', type: 'auth_timeout', authenticated: false });
    hooks.emit('session.close', {
      uid: 'u',
      sessionId: 's',
      code: 1000,
      reason: '',
      type: 'normal_closure',
      authenticated: true,
    });
    hooks.emit('session.auth_failed', { reason: 'invalid', code: 'bad_signature', error: 'nope' });
    hooks.emit('session.auth_failed', { reason: 'error', code: 'internal_error', error: 'down' });
    hooks.emit('session.token_refreshed', { uid: 'u', sessionId: 's', expiresAtMs: 5 });
    hooks.emit('session.token_refresh_failed', { uid: 'u', sessionId: 's', reason: 'other_user' });
    hooks.emit('session.token_expired', { uid: 'u', sessionId: 's' });
    hooks.emit('admission.refused', { reason: 'lag', refused: 3, handshakes: 70, lagMs: 120 });
    stop();
    hooks.emit('session.token_expired', { uid: 'u', sessionId: 's' });
    expect(lines).toEqual([
      ['info', 'ws_connect', { uid: 'u', session_id: 's', service: false, resume_from: 'e:1' }],
      ['info', 'ws_disconnect', { code: 4002, reason: 'auth timeout', type: 'auth_timeout', authenticated: false }],
      ['info', 'ws_disconnect', { uid: 'u', session_id: 's', code: 1000, reason: '', type: 'normal_closure' }],
      ['warn', 'ws_auth_failed', { reason: 'invalid', code: 'bad_signature', error: 'nope' }],
      ['error', 'ws_auth_failed', { reason: 'error', code: 'internal_error', error: 'down' }],
      ['info', 'ws_token_refreshed', { uid: 'u', session_id: 's', expires_at_ms: 5 }],
      ['warn', 'ws_token_refresh_failed', { uid: 'u', session_id: 's', reason: 'other_user' }],
      ['info', 'ws_token_expired', { uid: 'u', session_id: 's' }],
      ['warn', 'ws_admission_refused', { refused: 3, reason: 'lag', handshakes: 70, lag_ms: 120 }],
    ]);
  });
});
