import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type GatewayHandle, startGateway } from './helpers';

// What an app developer gets from npm: the three packages packed as they would be
// published (pnpm pack rewrites workspace:* to versions), installed with npm into a
// fresh project outside the workspace, then used from ESM, CJS, TypeScript and the shell.
const run = promisify(execFile);
const root = join(__dirname, '..', '..', '..');
const PACKAGES = ['packages/protocol', 'packages/publisher', 'packages/bus-consumer'];
const tsc = require.resolve('typescript/bin/tsc');

describe('the packed packages installed outside the workspace', () => {
  let packs: string;
  let app: string;
  let frontend: string | undefined;
  let g: GatewayHandle;
  const sh = (cmd: string, args: string[], cwd = app) =>
    run(cmd, args, { cwd, env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' } });

  beforeAll(async () => {
    packs = mkdtempSync(join(tmpdir(), 'livebus-packs-'));
    app = mkdtempSync(join(tmpdir(), 'livebus-app-'));
    for (const dir of PACKAGES) await sh('pnpm', ['pack', '--pack-destination', packs], join(root, dir));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-app', version: '1.0.0', private: true }));
    const tarballs = readdirSync(packs).map((f) => join(packs, f));
    expect(tarballs).toHaveLength(3);
    await sh('npm', ['install', '--no-package-lock', '--prefer-offline', ...tarballs, '@types/node@20']);
    g = await startGateway();
  }, 120_000);

  afterAll(async () => {
    await g?.stop();
    for (const dir of [packs, app, frontend]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each tarball passes npm publish --dry-run without corrections', async () => {
    for (const tarball of readdirSync(packs)) {
      const { stderr } = await sh('npm', ['publish', '--dry-run', join(packs, tarball)]);
      expect(stderr).not.toMatch(/auto-corrected|npm error/i);
    }
  }, 60_000);

  it('installs the client with @livebus/protocol and ws only: no Redis client in a frontend', async () => {
    frontend = mkdtempSync(join(tmpdir(), 'livebus-frontend-'));
    writeFileSync(
      join(frontend, 'package.json'),
      JSON.stringify({ name: 'a-frontend', version: '1.0.0', private: true }),
    );
    const tarball = (name: string) => join(packs, readdirSync(packs).find((f) => f.startsWith(name)) ?? name);
    await sh(
      'npm',
      [
        'install',
        '--no-package-lock',
        '--prefer-offline',
        tarball('livebus-protocol-'),
        tarball('livebus-bus-consumer-'),
      ],
      frontend,
    );
    const installed = join(frontend, 'node_modules');
    const manifest = JSON.parse(readFileSync(join(installed, '@livebus', 'bus-consumer', 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@livebus/protocol', 'ws']);
    expect(existsSync(join(installed, 'ioredis'))).toBe(false);
    expect(existsSync(join(installed, '@livebus', 'publisher'))).toBe(false);
    const { stdout } = await sh(
      process.execPath,
      ['-e', "const { BusConsumer } = require('@livebus/bus-consumer'); console.log(typeof BusConsumer)"],
      frontend,
    );
    expect(stdout.trim()).toBe('function');
  }, 120_000);

  it('imports from ESM', async () => {
    writeFileSync(
      join(app, 'esm.mjs'),
      `import { BusConsumer } from '@livebus/bus-consumer';
import { CloseCode, parseServerFrame } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
console.log(typeof BusConsumer, CloseCode.ServiceRestart, typeof parseServerFrame, typeof createPublisher);`,
    );
    const { stdout } = await sh(process.execPath, ['esm.mjs']);
    expect(stdout.trim()).toBe('function 1012 function function');
  });

  it('requires from CommonJS', async () => {
    writeFileSync(
      join(app, 'cjs.cjs'),
      `const { BusConsumer } = require('@livebus/bus-consumer');
const { CloseCode } = require('@livebus/protocol');
const { createPublisher } = require('@livebus/publisher');
console.log(typeof BusConsumer, CloseCode.ServiceRestart, typeof createPublisher);`,
    );
    const { stdout } = await sh(process.execPath, ['cjs.cjs']);
    expect(stdout.trim()).toBe('function 1012 function');
  });

  it('type-checks an app that uses them, as ESM and as CommonJS', async () => {
    writeFileSync(
      join(app, 'app.mts'),
      `import { BusConsumer, RpcError } from '@livebus/bus-consumer';
import { type AppEvent, CloseCode } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
const client = new BusConsumer({ url: 'ws://localhost:8080/ws', userId: 'alice' });
client.on('task.progress_update', (data) => console.log(data.progress));
const sessions: Promise<unknown> = client.rpc('REGISTRY.get_sessions', 'alice');
const code: number = CloseCode.ServiceRestart;
const event: AppEvent = { event: 'task.progress_update', data: { task_id: 't', status: 'running', progress: 1 } };
const publisher = createPublisher({ redisUrl: 'redis://localhost:6379' });
export { client, code, event, publisher, RpcError, sessions };
`,
    );
    // The same types through require(): the `require` condition's .d.cts files.
    writeFileSync(
      join(app, 'app.cts'),
      `import { BusConsumer } from '@livebus/bus-consumer';
import { CloseCode } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
export const client: BusConsumer = new BusConsumer({ url: 'ws://localhost:8080/ws', token: 'a-token' });
export const code: 1012 = CloseCode.ServiceRestart;
export const publish: typeof createPublisher = createPublisher;
`,
    );
    // One program for both files: tsc's start-up dominates, so a second run would double the time.
    await sh(process.execPath, [
      tsc,
      ...['--noEmit', '--strict', '--target', 'es2022', '--types', 'node'],
      ...['--module', 'nodenext', '--moduleResolution', 'nodenext', 'app.mts', 'app.cts'],
    ]);
  }, 60_000);

  it('runs the livebus CLI through npx, by package name and by bin name', async () => {
    const help = await sh('npx', ['--no-install', '@livebus/bus-consumer', '--help']);
    expect(help.stdout).toContain('livebus tail');
    const res = await sh('npx', [
      '--no-install',
      'livebus',
      'rpc',
      '--url',
      g.url,
      '--user',
      'packed-user',
      'REGISTRY.register_user',
      '"packed-user"',
      '"tab"',
      '"/packed"',
    ]);
    expect(JSON.parse(res.stdout)).toMatchObject({ success: true, user_id: 'packed-user' });
  }, 30_000);

  it("runs livebus-publish, the publisher package's command, through npx, by package name and by bin name", async () => {
    const help = await sh('npx', ['--no-install', '@livebus/publisher', '--help']);
    expect(help.stdout).toContain('livebus-publish --redis-url URL');
    // Nothing listens on port 1: the packed command loads its Redis client and says why it cannot publish.
    const data = '{"level":"info","message":"hi"}';
    const args = ['--redis-url', 'redis://127.0.0.1:1', '--retries', '0', 'u', 'session.notice', data];
    const down = await sh('npx', ['--no-install', 'livebus-publish', ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(down).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot reach Redis at 127.0.0.1:1') });
  }, 30_000);
});
