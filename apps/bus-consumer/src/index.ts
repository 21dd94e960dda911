export { type Backoff, fullJitterBackoff } from './backoff';
