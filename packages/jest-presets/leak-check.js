// The leak check, a step of its own. `jest --detectOpenHandles` makes jest run every file in one
// process, one after another, which made the suite slow: so each package names a few files
// (the ones that open and close servers, sockets and timers in this process) for a separate,
// in-band run with --detectOpenHandles (`test:leaks`), and `test` runs the other files on
// several workers. A handle left open in the leak set keeps that run from exiting and is
// printed with the stack that opened it.
//
// Usage in a package's jest.config.cjs:
//   module.exports = withLeakCheck({ preset: '@livebus/jest-presets' }, ['src/', 'test/connection.int.test.ts']);
// and in its package.json: "test": "jest --maxWorkers=N", "test:leaks": "livebus-leak-check" (run-leak-check.js).

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `config` with the leak set, `paths` (test files, or folders ending in `/`, relative to the
 * package), run only when LIVEBUS_LEAK_CHECK=1, and only the leak set then.
 */
function withLeakCheck(config, paths) {
  const pattern = `<rootDir>/(${paths.map(escapeRegExp).join('|')})`;
  if (process.env.LIVEBUS_LEAK_CHECK === '1') {
    return {
      ...config,
      testMatch: paths.map((p) => (p.endsWith('/') ? `<rootDir>/${p}**/*.test.ts` : `<rootDir>/${p}`)),
    };
  }
  return { ...config, testPathIgnorePatterns: ['/node_modules/', pattern] };
}

module.exports = { withLeakCheck };
