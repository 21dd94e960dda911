import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';
import { INTERNAL_NAMES } from './src/internal-names';

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
    // No banner: the shebang is src/cli.ts's first line, which esbuild keeps in that entry's
    // output only (a banner would start every file, the library's included).
    // `livebus --version`.
    define: { __LIVEBUS_VERSION__: JSON.stringify(version) },
  },
  {
    // Browsers: one ESM module, the same as CommonJS (for require() under the `browser` condition:
    // Jest's jsdom environment), and one <script> build (global `Livebus`), protocol bundled in.
    entry: { livebus: 'src/browser.ts' },
    outDir: 'dist/browser',
    format: ['esm', 'cjs', 'iife'],
    globalName: 'Livebus',
    platform: 'browser',
    target: 'es2020',
    noExternal: [/.*/],
    // Class fields assigned in the constructor (`this.x = ...`), not defined with a helper call
    // each (`useDefineForClassFields: false`): the same objects, as no class of the client has
    // an accessor its fields would shadow (0.2 KB gzipped).
    tsconfig: 'tsconfig.browser.json',
    // The protocol's client entry from its TypeScript source, not its build: bundled from source,
    // esbuild inlines the close codes (a TypeScript enum) where the client uses them and leaves
    // out the enum object, which the browser build never reads (about 0.9 KB minified, 0.3 KB
    // gzipped). Same code, same behaviour; the Node build keeps importing the built package.
    esbuildOptions(options) {
      options.alias = { '@livebus/protocol/client': '../protocol/src/client/index.ts' };
      // The internal objects' property names, shortened (src/internal-names.ts; 0.3 KB gzipped).
      options.mangleProps = new RegExp(`^(${INTERNAL_NAMES.join('|')})$`);
    },
    minify: true,
    sourcemap: true,
    dts: true,
  },
]);
