import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

export default defineConfig({
  // The library (ESM + CJS + types), the `livebus-publish` command, and `redis`: the fleet's
  // Redis layer (keyspace, scripts, openRedis), a subpath of its own so that the publisher's
  // main entry stays the small API backends import.
  entry: { index: 'src/index.ts', cli: 'src/cli.ts', redis: 'src/redis/index.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', redis: 'src/redis/index.ts' } },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // No banner: the shebang is src/cli.ts's first line, which esbuild keeps in that entry's
  // output only (a banner would start every file, the library's included).
  // `livebus-publish --version`.
  define: { __LIVEBUS_VERSION__: JSON.stringify(version) },
});
