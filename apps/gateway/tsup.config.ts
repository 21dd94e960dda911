import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
const define = { __LIVEBUS_VERSION__: JSON.stringify(version) };

/**
 * Left out of the CLI bundle: big and loaded only when configured (firebase-admin and
 * @google-cloud/firestore with LISTENERS_FILE or AUTH_MODE=firebase, bullmq with tasks on
 * Redis and for `worker`), with native or optional parts (msgpackr-extract, gRPC), or
 * optional peers that `ws` requires inside a try (bufferutil, utf-8-validate).
 */
const cliExternal = ['firebase-admin', '@google-cloud', 'bullmq', 'bufferutil', 'utf-8-validate'];
/** Every other package is bundled into the CLI (tsup's noExternal wins over external, so it says both). */
const cliBundled = new RegExp(`^(?!(${cliExternal.join('|')})(/|$))`);

export default defineConfig([
  {
    // index: the library (createGateway and the ports), for code that embeds the gateway.
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: { entry: 'src/index.ts' },
    sourcemap: true,
    // The CLI's files (below) are written by the other build of this array, at the same time.
    clean: ['**/*', '!main.js', '!main.js.map', '!cli/**'],
    target: 'node20',
    define,
  },
  {
    // main: the CLI (bin livebus-gateway, `node dist/main.js`), bundled with its pure-JS
    // dependencies (zod, winston, prom-client, ioredis, ws, jose, the workspace packages)
    // into a few files. Node then resolves and reads a handful of files at start-up
    // instead of several hundred, which was most of the time from spawn to ready.
    // Lazy parts (Firestore listeners, the task queue, the worker) are chunks of their
    // own under dist/cli/, imported only when the configuration asks for them.
    entry: { main: 'src/main.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: ['main.js', 'main.js.map', 'cli/**'],
    target: 'node20',
    splitting: true,
    noExternal: [cliBundled],
    external: cliExternal.map((name) => new RegExp(`^${name}(/|$)`)),
    esbuildOptions(options) {
      options.chunkNames = 'cli/[name]-[hash]';
    },
    // Bundled CommonJS (winston, ioredis, ...) calls require() for Node's own modules:
    // give the ESM output a real one.
    banner: {
      js: [
        '#!/usr/bin/env node',
        "import { createRequire as __livebusCreateRequire } from 'node:module';",
        'const require = __livebusCreateRequire(import.meta.url);',
      ].join('\n'),
    },
    define,
  },
]);
