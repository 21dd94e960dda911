module.exports = { preset: '@livebus/jest-presets', roots: ['<rootDir>/test'] };
