import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // `client`: the zod-free run time for clients (`@livebus/protocol/client`); it must not reach
    // a module that imports zod at run time (test/consumer.int.test.ts checks the build).
    entry: { index: 'src/index.ts', examples: 'src/examples.ts', client: 'src/client/index.ts' },
    format: ['esm', 'cjs'],
    // Shared modules go to chunks in CJS too (tsup splits only ESM by default): otherwise each CJS
    // entry carries its own copy, and the root's FrameError is not the one /client throws.
    splitting: true,
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
  },
  {
    // For scripts/generate.mjs only (JSON Schemas, docs/protocol.md): built outside dist, so it
    // is not published (.tmp/ is git-ignored).
    entry: { docs: 'src/docs.ts' },
    format: ['esm'],
    outDir: '.tmp/docs',
    clean: true,
    target: 'es2022',
  },
]);
