import {
  AUTH_FAILURE_REASONS,
  authFailureReasonOf,
  CloseCode,
  classifyDisconnect,
  DISCONNECT_REASONS,
  reconnectPolicy,
} from './close-codes';
import { AuthFailureReasonSchema } from './common';

describe('classifyDisconnect', () => {
  it.each([
    [1000, '', 'normal_closure'],
    [1001, '', 'going_away'],
    [1006, '', 'abnormal_closure'],
    [1006, 'ping_timeout', 'ping_timeout'],
    [1011, '', 'server_error'],
    [1012, '', 'service_restart'],
    [4001, '', 'auth_failed'],
    [4004, '', 'protocol_error'],
    [4005, '', 'rate_limited'],
    [4007, '', 'slow_consumer'],
    [4009, '', 'ping_timeout'],
    [4999, '', 'unknown'],
  ])('(%i, %j) is %s', (code, reason, expected) => {
    expect(classifyDisconnect(code, reason)).toBe(expected);
  });

  it('classifies a 4001 as auth_failed whatever auth failure reason it carries (token_expired included)', () => {
    for (const reason of Object.keys(AUTH_FAILURE_REASONS)) {
      expect(classifyDisconnect(CloseCode.AuthFailed, reason)).toBe('auth_failed');
    }
    expect(classifyDisconnect(CloseCode.AuthFailed, 'auth failed')).toBe('auth_failed');
    expect(classifyDisconnect(CloseCode.TokenExpired, 'token_expired')).toBe('token_expired');
  });

  it('maps every close code to a known reason', () => {
    for (const code of Object.values(CloseCode).filter((c): c is number => typeof c === 'number')) {
      expect(DISCONNECT_REASONS).toContain(classifyDisconnect(code));
      expect(classifyDisconnect(code)).not.toBe('unknown');
    }
  });

  it('keeps every application code in 4000-4999', () => {
    const app = Object.values(CloseCode).filter((c): c is number => typeof c === 'number' && c >= 4000);
    expect(app.length).toBeGreaterThan(5);
    for (const code of app) expect(code).toBeLessThan(5000);
  });
});

describe('reconnectPolicy', () => {
  it('reconnects on transient closes, refreshes the token on auth failures, stops on fatal ones', () => {
    expect(reconnectPolicy('abnormal_closure')).toBe('reconnect');
    expect(reconnectPolicy('service_restart')).toBe('reconnect');
    expect(reconnectPolicy('ping_timeout')).toBe('reconnect');
    expect(reconnectPolicy('slow_consumer')).toBe('reconnect');
    expect(reconnectPolicy('auth_failed')).toBe('refresh_token');
    expect(reconnectPolicy('auth_failed', 'bad_signature')).toBe('refresh_token');
    // The gateway's trouble, not the credential's: retried with backoff like any transient failure.
    expect(reconnectPolicy('auth_failed', 'verifier_unavailable')).toBe('reconnect');
    expect(reconnectPolicy('auth_failed', 'internal_error')).toBe('reconnect');
    expect(reconnectPolicy('auth_timeout')).toBe('reconnect');
    // One frame over the gateway's limit (a large call): not a reason to stop for good.
    expect(reconnectPolicy('message_too_big')).toBe('reconnect');
    expect(reconnectPolicy('forbidden')).toBe('stop');
    expect(reconnectPolicy('protocol_error')).toBe('stop');
  });
});

describe('auth failure reasons', () => {
  it('fit in a close frame, are snake_case and say what to do', () => {
    for (const [reason, meaning] of Object.entries(AUTH_FAILURE_REASONS)) {
      expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
      expect(reason).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(meaning.length).toBeGreaterThan(10);
    }
  });

  it('are validated by the schema; other strings (an older gateway) give undefined', () => {
    expect(AuthFailureReasonSchema.parse('bad_signature')).toBe('bad_signature');
    expect(authFailureReasonOf('token_expired')).toBe('token_expired');
    expect(authFailureReasonOf('auth failed')).toBeUndefined();
    expect(authFailureReasonOf('')).toBeUndefined();
  });
});
