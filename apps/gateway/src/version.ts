/** The gateway's version, reported on /healthz. Replaced at build time by tsup. */
declare const __LIVEBUS_VERSION__: string | undefined;
export const VERSION: string = typeof __LIVEBUS_VERSION__ === 'string' ? __LIVEBUS_VERSION__ : '0.0.0-dev';
