export * from './auth-emulator-stub';
export * from './balancer';
export * from './firestore-emulator';
export * from './free-port';
export * from './redis-cluster';
export * from './redis-server';
export * from './tcp-proxy';
export * from './wait';
