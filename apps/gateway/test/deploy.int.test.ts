import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { startChild } from '@livebus/test-support';
import { gatewayListening } from './task-processes';

// What docker/Dockerfile does, minus the base image: `pnpm deploy --prod` of the
// gateway into a folder of its own, then `node dist/main.js` there. A Docker
// engine is not available here, so the image's contents and command are tested instead.
/** pnpm as the test was started by it (npm test), else the one on the PATH. */
function pnpmCommand(): [string, string[]] | undefined {
  const execpath = process.env.npm_execpath;
  if (execpath?.includes('pnpm')) return [process.execPath, [execpath]];
  return spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0 ? ['pnpm', []] : undefined;
}
const workspace = join(__dirname, '..', '..', '..');
const dockerfile = readFileSync(join(workspace, 'docker', 'Dockerfile'), 'utf8');

/**
 * pnpm 10's legacy deploy also links the bins of the deployed package's workspace dependencies
 * (the publisher's `livebus-publish`) under the workspace, at the deploy folder's absolute path
 * (pnpm/pnpm#10981): `/tmp/livebus-deploy-x` leaves `<workspace>/tmp/livebus-deploy-x/node_modules/.bin`.
 * Removed with the folders above it that it leaves empty, so a test run leaves no `tmp/` behind.
 */
function removeStrayBins(out: string): void {
  // Only inside the workspace, never the workspace itself (and not on Windows, where the path has a drive).
  const inside = (dir: string) => {
    const rel = relative(workspace, dir);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  let dir = join(workspace, resolve(out));
  if (process.platform === 'win32' || !inside(dir)) return;
  rmSync(dir, { recursive: true, force: true });
  for (dir = dirname(dir); inside(dir); dir = dirname(dir)) {
    try {
      rmdirSync(dir);
    } catch {
      return; // not empty (or gone): everything above it stays
    }
  }
}

describe('the production image contents', () => {
  let out: string;
  afterAll(() => {
    if (!out) return;
    rmSync(out, { recursive: true, force: true });
    removeStrayBins(out);
  });

  it('the Dockerfile deploys the gateway with pnpm and runs node dist/main.js', () => {
    expect(dockerfile).toContain('pnpm --filter @livebus/gateway deploy --prod --legacy /out');
    expect(dockerfile).toContain('CMD ["node", "dist/main.js"]');
  });

  it('a pnpm deploy of the gateway starts on its own and stops on SIGTERM', async () => {
    const pnpm = pnpmCommand();
    if (!pnpm) throw new Error('pnpm not found: run the tests through npm test, or install pnpm 10');
    out = mkdtempSync(join(tmpdir(), 'livebus-deploy-'));
    const [cmd, pre] = pnpm;
    execFileSync(cmd, [...pre, '--filter', '@livebus/gateway', 'deploy', '--prod', '--legacy', out], {
      cwd: join(__dirname, '..'),
      stdio: 'ignore',
    });
    // Only production dependencies: no test tooling in the image.
    expect(existsSync(join(out, 'node_modules', 'ws'))).toBe(true);
    expect(existsSync(join(out, 'node_modules', '@livebus', 'protocol', 'dist'))).toBe(true);
    expect(existsSync(join(out, 'node_modules', 'jest'))).toBe(false);
    // PORT=0: its port read from its gateway_listening line (LOG_LEVEL is info by default).
    const deployed = await gatewayListening(
      startChild('deployed-gateway', process.execPath, ['dist/main.js'], {
        cwd: out,
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'production',
          AUTH_MODE: 'jwt',
          JWT_SECRET: 'deploy-test-secret-0123456789abcdef',
          ADMIN_TOKEN: 'deploy-test-admin-token',
          PORT: '0',
          HOST: '127.0.0.1',
        },
      }),
    );
    const health = await (await fetch(`${deployed.http}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok', redis: 'disabled', version: expect.any(String) });
    expect(await deployed.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
