// `pnpm soak`: the long run with every fault at once; not part of `jest` (see docs/reliability.md).
module.exports = { preset: '@livebus/jest-presets', testMatch: ['**/*.soak.ts'], testTimeout: 600_000 };
