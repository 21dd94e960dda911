import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { TestClient } from './helpers';
import { startCli as startCliProcess } from './task-processes';

/** Starts the built CLI, exactly as the Dockerfile and `npm start` do, and reads its JSON logs. */
function startCli(env: Record<string, string>, exits = false) {
  return startCliProcess([], { PORT: '0', ...env }, { exits });
}

describe('the CLI (node apps/gateway/dist/main.js)', () => {
  it('serves on the embedded default and, on SIGTERM, sends 1012 with a reconnect hint and exits in time', async () => {
    const cli = startCli({ SHUTDOWN_GRACE_MS: '3000', DETACH_DELAY_MS: '60000' });
    const listening = await waitFor(
      () => cli.lines.find((l) => l.event === 'gateway_listening'),
      'gateway_listening',
      20_000,
    );
    expect(listening).toMatchObject({ redis: 'disabled', registry: 'memory', bus: 'memory', auth: 'none' });
    const url = `ws://127.0.0.1:${listening.port}/ws`;

    const health = await fetch(`http://127.0.0.1:${listening.port}/healthz`);
    expect(health.status).toBe(200);

    const clients = await Promise.all(
      ['a', 'b', 'c'].map(async (uid) => {
        const c = new TestClient(url);
        await c.hello({ user_id: uid });
        await c.call('REGISTRY.register_user', [uid, 's', '/']);
        return c;
      }),
    );
    const started = Date.now();
    void cli.stop('SIGTERM');
    for (const c of clients) {
      expect((await c.closed).code).toBe(CloseCode.ServiceRestart);
      const notice = c.frames.find((f) => f.type === 'notice');
      expect(notice).toMatchObject({ kind: 'shutting_down', reconnect_after_ms: expect.any(Number) });
    }
    expect(await cli.exited).toBe(0);
    // How long the drain took is a figure; the order of its steps is checked in src/core/shutdown.test.ts.
    process.stdout.write(`shutdown figures: ${JSON.stringify({ exitedAfterMs: Date.now() - started })}\n`);
    // Pending detaches (60 s delay) were flushed before exit, not dropped.
    for (const uid of ['a', 'b', 'c']) {
      expect(cli.lines.some((l) => l.event === 'REGISTRY_CLEANUP_SUCCESS' && l.uid === uid)).toBe(true);
      expect(cli.lines.some((l) => l.event === 'ws_disconnect' && l.uid === uid && l.type === 'service_restart')).toBe(
        true,
      );
    }
    expect(cli.lines.at(-1)?.event).toBe('gateway_shutdown_complete');
  });

  it('refuses to start on a bad environment, naming the variable', async () => {
    const cli = startCli({ PORT: 'eighty', DETACH_DELAY_MS: '-5' }, true);
    expect(await cli.exited).toBe(78);
    expect(cli.stderr()).toContain('PORT');
    expect(cli.stderr()).toContain('DETACH_DELAY_MS');
  });

  it('refuses AUTH_MODE=none in production', async () => {
    const cli = startCli({ NODE_ENV: 'production', AUTH_MODE: 'none', ADMIN_TOKEN: 'a-long-enough-admin-token' }, true);
    expect(await cli.exited).toBe(78);
    expect(cli.stderr()).toContain('AUTH_MODE');
  });
});
