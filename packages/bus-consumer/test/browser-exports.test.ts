import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

// How a bundler or Jest's jsdom environment (which adds the `browser` condition) resolves the
// package: Node's own resolver on dist, through the package's name (a self-reference from its
// directory). `--no-experimental-require-module`: a require() that reaches an ES module fails,
// as it does in Jest on Node < 24.9.
const run = promisify(execFile);
const pkg = join(__dirname, '..');
const node = (flags: string[], code: string) =>
  run(process.execPath, ['--conditions=browser', ...flags, '-e', code], { cwd: pkg }).then((r) => r.stdout.trim());

describe('the browser build under the `browser` condition', () => {
  it.each(['@livebus/bus-consumer', '@livebus/bus-consumer/browser'])('%s loads through require()', async (id) => {
    const code = `const m = require('${id}'); console.log(typeof m.BusConsumer, require.resolve('${id}'))`;
    const out = await node(['--no-experimental-require-module'], code);
    expect(out).toBe(`function ${join(pkg, 'dist', 'browser', 'livebus.cjs')}`);
  });

  it.each(['@livebus/bus-consumer', '@livebus/bus-consumer/browser'])('%s imports the ES module', async (id) => {
    const code = `import('${id}').then((m) => console.log(typeof m.BusConsumer, import.meta.resolve('${id}')))`;
    const out = await node(['--input-type=module'], code);
    expect(out).toBe(`function file://${join(pkg, 'dist', 'browser', 'livebus.js')}`);
  });
});

// esbuild, the bundler tsup builds with (and Vite's): the one this workspace has, through tsup.
type Bundler = {
  build(options: object): Promise<{ outputFiles: [{ text: string }] }>;
};
const esbuild: Bundler = require(require.resolve('esbuild', { paths: [dirname(require.resolve('tsup'))] }));

describe('the package in an app bundle', () => {
  const options = { bundle: true, write: false, platform: 'browser', format: 'esm', minify: true, logLevel: 'silent' };
  const bundle = (contents: string) =>
    esbuild.build({ ...options, stdin: { contents, resolveDir: pkg } }).then((r) => r.outputFiles[0].text.trim());

  it('leaves the client out when no import is used (sideEffects)', async () => {
    expect(await bundle("import { BusConsumer, RpcError } from '@livebus/bus-consumer';")).toBe('');
  });

  it('keeps it when one is', async () => {
    const code = await bundle("import { BusConsumer } from '@livebus/bus-consumer'; console.log(BusConsumer);");
    expect(code).toContain('livebus.protocolPing');
  });

  // docs/client.md, "Error classes": the browser build carries its own copy of the protocol, so
  // the FrameError it throws is the one it exports, and `name` survives its minification.
  it("throws its own FrameError, not @livebus/protocol/client's, with its name", async () => {
    const app = `import { BusConsumer, FrameError } from '@livebus/bus-consumer';
import { FrameError as ProtocolFrameError } from '@livebus/protocol/client';
class NoSocket { constructor() { throw new Error('no socket'); } }
const bus = new BusConsumer({ url: 'ws://127.0.0.1:1/ws', userId: 'u', WebSocket: NoSocket });
bus.rpc('REGISTRY.get_sessions', NaN).catch((e) => {
  console.log(e.name, e instanceof FrameError, e instanceof ProtocolFrameError);
  bus.close();
});`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', await bundle(app)]);
    expect(stdout.trim()).toBe('FrameError true false');
  });
});

describe('the exports map', () => {
  // Every module it exports comes with its types, under each condition (attw's "no types"): the
  // <script> build is a file to serve, not a module, and is not exported.
  type Entry = string | { [condition: string]: Entry };
  const { exports: map } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
    exports: Record<string, Entry>;
  };
  const targets = (entry: Entry): Entry[] =>
    typeof entry === 'string' || 'default' in entry ? [entry] : Object.values(entry).flatMap(targets);

  it.each(Object.keys(map).filter((k) => k !== './package.json'))('%s gives types beside its JavaScript', (path) => {
    for (const target of targets(map[path] as Entry))
      expect(target).toEqual({ types: expect.stringMatching(/\.d\.c?ts$/), default: expect.stringMatching(/\.c?js$/) });
  });
});
