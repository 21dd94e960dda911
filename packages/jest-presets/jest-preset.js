// Shared jest preset: TypeScript through ts-jest in transpile-only mode (type
// checking is the `typecheck` task's job, so tests start fast), unit tests beside
// the code and integration tests under test/.
/** @type {import('jest').Config} */
module.exports = {
  // Node's environment, plus the output of a failing test's child processes (see the file).
  testEnvironment: require.resolve('./test-environment.js'),
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: {
    '^.+\\.ts$': [
      require.resolve('ts-jest'),
      {
        tsconfig: {
          module: 'commonjs',
          moduleResolution: 'node10',
          target: 'ES2022',
          esModuleInterop: true,
          isolatedModules: true,
          strict: true,
          sourceMap: true,
        },
        diagnostics: false,
      },
    ],
  },
  // A fixed seed for property tests under CI (see the file).
  setupFiles: [require.resolve('./fast-check-seed.js')],
  testTimeout: 30_000,
  // The failures again at the very end of a run, however few files ran: a CI log is
  // often read from its tail, behind the output of the other packages' suites.
  reporters: [['default', { summaryThreshold: 0 }]],
};
