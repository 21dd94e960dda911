// Named by the JSON fields of events: a library wrapping the publisher can emit declarations (TS2742).
export type { JsonValue } from '@livebus/protocol';
export * from './connection-error';
export * from './create-publisher';
export * from './defaults';
export * from './describe-redis-error';
export * from './invalid-event-error';
export * from './keys';
export * from './outbox';
export * from './publish-error';
export * from './redis/client';
export * from './redis-stream-reader';
export * from './redis-stream-writer';
export * from './retention';
export * from './stored-frame';
export * from './transient-redis-error';
