module.exports = { preset: '@livebus/jest-presets' };
