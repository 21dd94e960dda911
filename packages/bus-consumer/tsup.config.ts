import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

export default defineConfig([
  {
    // Node: the library (ESM + CJS + types) and the CLI.
    entry: ['src/index.ts', 'src/cli.ts'],
    format: ['esm', 'cjs'],
    dts: { entry: 'src/index.ts' },
    sourcemap: true,
    clean: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    // `livebus --version`.
    define: { __LIVEBUS_VERSION__: JSON.stringify(version) },
  },
  {
    // Browsers: one ESM module and one <script> build (global `Livebus`), protocol and zod bundled in.
    entry: { livebus: 'src/browser.ts' },
    outDir: 'dist/browser',
    format: ['esm', 'iife'],
    globalName: 'Livebus',
    platform: 'browser',
    target: 'es2020',
    noExternal: [/.*/],
    minify: true,
    sourcemap: true,
    dts: true,
  },
]);
