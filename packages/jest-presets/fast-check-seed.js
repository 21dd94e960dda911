// Property tests (fast-check) draw their inputs from a seed. With CI set the seed is fixed,
// so a CI run of the same code draws the same inputs: a counterexample found by exploring
// is fixed (in the code, or in the arbitrary that should not produce it) where it was found,
// not left to fail one CI run in a hundred. Elsewhere every run draws a new seed, and a
// failure prints it; FC_SEED=<seed> replays that run (and sets the seed under CI too).
const seed = process.env.FC_SEED ?? (process.env.CI ? '20261205' : undefined);
if (seed !== undefined && !/^-?\d+$/.test(seed)) {
  throw new Error(`FC_SEED must be an integer (the seed a failing property test printed), not ${JSON.stringify(seed)}`);
}
if (seed !== undefined) {
  let fc;
  try {
    // The test package's own copy: the one its tests import.
    fc = require(require.resolve('fast-check', { paths: [process.cwd()] }));
  } catch {
    // A package without property tests.
  }
  fc?.configureGlobal({ ...fc.readConfigureGlobal(), seed: Number(seed) });
}
