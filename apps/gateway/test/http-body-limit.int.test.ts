import { waitFor } from '@livebus/test-support';
import { startCli } from './task-processes';

// Out of process, as a deployment runs it: a body refused for its size used to reset the
// connection under a client still sending it (Node fetch saw ECONNRESET for 100 MB, not the 413).
describe('a body far over the limit (the built CLI)', () => {
  it('gets its 413 too_large, whatever its size; the gateway keeps serving', async () => {
    const cli = startCli([], { PORT: '0' });
    try {
      const listening = await waitFor(
        () => cli.lines.find((l) => l.event === 'gateway_listening'),
        'gateway_listening',
        20_000,
      );
      // No ADMIN_TOKEN here: the admin endpoints are open, and the start says so.
      expect(cli.lines.filter((l) => l.event === 'gateway_config_warning').map((l) => l.variable)).toEqual([
        'ADMIN_TOKEN',
      ]);
      const http = `http://127.0.0.1:${listening.port}`;
      for (const mb of [2, 100]) {
        const res = await fetch(`${http}/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.alloc(mb * 1024 * 1024, 0x20),
        });
        expect({ mb, status: res.status }).toEqual({ mb, status: 413 });
        expect(await res.json()).toMatchObject({ error: { code: 'too_large' } });
      }
      expect((await fetch(`${http}/healthz`)).status).toBe(200);
    } finally {
      void cli.stop('SIGTERM');
      await cli.exited;
    }
  }, 60_000);
});
