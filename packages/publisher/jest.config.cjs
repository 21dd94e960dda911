const { withLeakCheck } = require('@livebus/jest-presets/leak-check');

// `test` runs on several workers; these files are the leak check (`test:leaks`, see leak-check.js).
module.exports = withLeakCheck({ preset: '@livebus/jest-presets' }, ['src/', 'test/connection-errors.int.test.ts']);
