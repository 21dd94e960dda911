// The stream keys moved to the fleet's keyspace module; kept here for the package index.
export { type UserKeys, userKeys, userTag } from './redis/keyspace';
