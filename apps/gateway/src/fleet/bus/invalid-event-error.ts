// Validation lives with the publisher, which checks events before they reach Redis;
// the gateway's buses import it from here so the in-memory and Redis buses refuse the same events.
export { InvalidEventError, validatePublication } from '@livebus/publisher';
