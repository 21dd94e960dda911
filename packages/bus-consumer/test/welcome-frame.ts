import { PROTOCOL_VERSION } from '@livebus/protocol/client';

/**
 * The welcome a scripted gateway (a fake socket or a bare `ws` server in a test) answers a
 * hello with: the hello's session id, user `u`, a fresh session at `cursor` unless told otherwise.
 */
export function welcomeFrame(
  hello: { session_id?: string | undefined },
  options: {
    cursor?: string;
    status?: 'fresh' | 'resumed';
    heartbeat?: { ping_interval_ms: number; ping_timeout_ms: number };
  } = {},
) {
  return {
    type: 'welcome' as const,
    v: PROTOCOL_VERSION,
    session_id: hello.session_id ?? 's',
    user_id: 'u',
    instance_id: 'scripted',
    heartbeat: options.heartbeat ?? { ping_interval_ms: 20_000, ping_timeout_ms: 60_000 },
    resume: { status: options.status ?? 'fresh', cursor: options.cursor ?? 'e:0', replayed: 0 },
  };
}
