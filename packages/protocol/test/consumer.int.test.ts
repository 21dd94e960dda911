import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const pkg = join(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc');

describe('the built package, as a consumer sees it', () => {
  it('type-checks a consumer in both ESM and CJS resolution, and rejects wrong RPC params', () => {
    // The same consumer under both resolutions: a .cts copy of check.mts resolves the require condition.
    const mts = readFileSync(join(pkg, 'test/consumer/check.mts'), 'utf8');
    writeFileSync(join(pkg, 'test/consumer/check.cts'), mts.replace('ESM (nodenext)', 'CommonJS (nodenext, .cts)'));
    // check.mts / check.cts resolve @livebus/protocol through its exports map
    // (import -> .d.ts, require -> .d.cts); their @ts-expect-error lines fail
    // the build if a wrong call were accepted.
    const out = execFileSync(process.execPath, [tsc, '-p', join(pkg, 'test/consumer/tsconfig.json')], {
      encoding: 'utf8',
    });
    expect(out).toBe('');
  });

  it("emits a wrapping library's declarations without naming zod", () => {
    // Under pnpm a zod type in them is TS2742 ("cannot be named without a reference to
    // .pnpm/zod@…"): the library's own users need not have zod.
    const out = mkdtempSync(join(tmpdir(), 'livebus-declare-'));
    try {
      const config = join(pkg, 'test/consumer/declare/tsconfig.json');
      execFileSync(process.execPath, [tsc, '-p', config, '--outDir', out], { encoding: 'utf8' });
      const emitted = readFileSync(join(out, 'lib.d.mts'), 'utf8');
      expect(emitted).toContain('JsonValue');
      expect(emitted).not.toMatch(/zod|JSONType/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('packs only the exported entries (and their chunks) from dist', () => {
    const packed = JSON.parse(execFileSync('pnpm', ['pack', '--dry-run', '--json'], { cwd: pkg, encoding: 'utf8' }));
    const entries = new Set<string>();
    for (const { path } of packed.files as { path: string }[]) {
      const entry = /^dist\/([^/.]+)\./.exec(path)?.[1];
      // Chunks (`chunk-X.js`, `events-X.d.ts`) are what the entries import.
      if (entry && !entry.includes('-')) entries.add(entry);
    }
    expect([...entries].sort()).toEqual(['client', 'examples', 'index']); // package.json's exports
  });

  it('loads with import and with require', () => {
    const script = `
      const cjs = require('@livebus/protocol');
      import('@livebus/protocol').then((esm) => {
        const names = ['parseClientFrame', 'parseServerFrame', 'serializeFrame', 'classifyDisconnect', 'methodTable', 'eventTable', 'CloseCode', 'protocolDefaults'];
        for (const n of names) { if (!cjs[n] || !esm[n]) throw new Error('missing export ' + n); }
        if (cjs.protocolDefaults.pingTimeoutMs !== 60000 || esm.protocolDefaults.pingIntervalMs !== 20000) throw new Error('defaults');
        const ex = require('@livebus/protocol/examples');
        if (!ex.methodExamples) throw new Error('examples');
        process.stdout.write('ok');
      });`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: pkg, encoding: 'utf8' })).toBe('ok');
  });

  it('shares one FrameError (and the other common exports) between the root and /client, in CJS and ESM', () => {
    // Otherwise `error instanceof FrameError` is false when the error came from the other entry.
    const script = `
      const shared = ['FrameError', 'CloseCode', 'classifyDisconnect', 'protocolDefaults', 'parseCursor'];
      const same = (a, b) => shared.filter((n) => a[n] !== b[n]).join(',') || 'same';
      const cjs = same(require('@livebus/protocol'), require('@livebus/protocol/client'));
      Promise.all([import('@livebus/protocol'), import('@livebus/protocol/client')]).then(([root, client]) => {
        process.stdout.write(cjs + ' ' + same(root, client));
      });`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: pkg, encoding: 'utf8' })).toBe('same same');
  });

  it('serves @livebus/protocol/client with import and with require, without zod in its import graph', () => {
    // Every file the entry reaches through relative imports, and the packages it names.
    const reach = (entry: string) => {
      const files = new Set<string>();
      const packages = new Set<string>();
      const visit = (file: string) => {
        if (files.has(file)) return;
        files.add(file);
        const code = readFileSync(file, 'utf8');
        for (const [, spec] of code.matchAll(/(?:from\s*|require\(|import\()\s*["']([^"']+)["']/g)) {
          if (spec?.startsWith('.')) visit(join(dirname(file), spec));
          else if (spec) packages.add(spec);
        }
      };
      visit(join(pkg, 'dist', entry));
      return { files: files.size, packages: [...packages] };
    };
    for (const entry of ['client.js', 'client.cjs']) expect(reach(entry).packages).toEqual([]);
    expect(reach('index.js').packages).toContain('zod'); // the check does find zod where it is
    const script = `
      const cjs = require('@livebus/protocol/client');
      import('@livebus/protocol/client').then((esm) => {
        for (const m of [cjs, esm]) {
          if (!m.parseServerFrame('{"type":"pong"}').ok || m.parseServerFrame('{"type":"pong","x":1}').ok) throw new Error('parse');
          if (m.serializeClientFrame({ type: 'ping', ts: 1 }) !== '{"type":"ping","ts":1}') throw new Error('serialize');
          if (m.classifyDisconnect(4001) !== 'auth_failed' || m.CloseCode.BadFrame !== 4004) throw new Error('close codes');
        }
        process.stdout.write('ok');
      });`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: pkg, encoding: 'utf8' })).toBe('ok');
  });
});
