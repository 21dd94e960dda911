#!/usr/bin/env node
// `test:leaks`: runs the package's leak set (see leak-check.js) in band with
// --detectOpenHandles and turns a leak into a failure. On its own, jest prints the open
// handles and then waits for them forever, so a leak hung the suite instead of failing it.
// Here a run fails when jest reports open handles, or when it has not exited
// LEAK_CHECK_EXIT_GRACE_MS (10 s) after its summary: the child is killed and the exit code is 1.

const { spawn } = require('node:child_process');

const graceMs = Number(process.env.LEAK_CHECK_EXIT_GRACE_MS ?? 10_000);
const jestBin = require.resolve('jest/bin/jest', { paths: [process.cwd()] });
const child = spawn(process.execPath, [jestBin, '--detectOpenHandles', '--runInBand', ...process.argv.slice(2)], {
  env: { ...process.env, LIVEBUS_LEAK_CHECK: '1' },
  stdio: ['inherit', 'pipe', 'pipe'],
});

let leaked = false;
let timer;
const watch = (chunk) => {
  const text = chunk.toString();
  if (/Jest has detected the following \d+ open handles?/.test(text)) leaked = true;
  if (!timer && /Ran all test suites/.test(text)) {
    timer = setTimeout(() => {
      process.stderr.write(
        `\nleak check: jest did not exit ${graceMs} ms after its tests finished: a handle was left open (see above); failing\n`,
      );
      leaked = true;
      child.kill('SIGKILL');
    }, graceMs);
  }
};
child.stdout.on('data', (c) => {
  process.stdout.write(c);
  watch(c);
});
child.stderr.on('data', (c) => {
  process.stderr.write(c);
  watch(c);
});
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (leaked) {
    process.stderr.write('leak check: FAILED (open handles after the leak set ran)\n');
    process.exit(1);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
