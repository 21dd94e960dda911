import { isCluster, type RedisClient } from './redis/client';

/** Where a Redis is, for messages: host and port only (never a user name or password). */
export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * The host and port of a `redis://` or `rediss://` URL (port 6379 when the URL
 * has none). Undefined for anything else, an empty string included: ioredis
 * would read such a string as "localhost:6379", the one place it must never
 * silently go.
 */
export function redisUrlAddress(url: string): RedisAddress | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname) return undefined;
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : 6379 };
}

/** The node a standalone client connects to; undefined for a Cluster (each error names its node). */
export function redisClientAddress(client: RedisClient): RedisAddress | undefined {
  if (isCluster(client)) return undefined;
  const { host, port } = client.options;
  return host && port ? { host, port } : undefined;
}

// Redis replies and ioredis messages that say why better than the error's class.
const REPLY_CODES = /\b(WRONGPASS|NOAUTH|NOPERM|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|BUSY)\b/;
const TLS_MESSAGE = /\b(TLS|SSL)\b|certificate/i;
// A Cluster client on a Redis that is not a cluster: its slots can never be read.
const CLUSTER_DISABLED = /cluster support disabled/i;

/**
 * A short code for why Redis could not be reached: the system error's code
 * (`ECONNREFUSED`, `ENOTFOUND`, `ETIMEDOUT`, a TLS code such as
 * `ERR_SSL_WRONG_VERSION_NUMBER`), the Redis reply's (`WRONGPASS`, `NOAUTH`),
 * `TLS` for a TLS failure without a code, else the error's name. A Cluster's
 * "all nodes failed" error is described by its last node's error when that
 * says more than "Connection is closed.".
 */
export function redisErrorCode(error: unknown): string {
  if (!isErrorLike(error)) return 'unknown';
  if (isErrorLike(error.lastNodeError)) {
    // ioredis' Cluster often knows no more than "Connection is closed." of its nodes.
    const node = redisErrorCode(error.lastNodeError);
    if (node !== 'unknown') return node;
  }
  if (CLUSTER_DISABLED.test(error.message)) return 'CLUSTER_DISABLED';
  if (typeof error.code === 'string' && error.code) return error.code;
  const reply = REPLY_CODES.exec(error.message)?.[1];
  if (reply) return reply;
  if (TLS_MESSAGE.test(error.message)) return 'TLS';
  return typeof error.name === 'string' && error.name && error.name !== 'Error' ? error.name : 'unknown';
}

interface ErrorLike {
  message: string;
  name?: unknown;
  code?: unknown;
  address?: unknown;
  hostname?: unknown;
  port?: unknown;
  lastNodeError?: unknown;
}

// Duck-typed: errors of Node's sockets and of a second copy of ioredis may come from another realm.
function isErrorLike(error: unknown): error is ErrorLike {
  return typeof error === 'object' && error !== null && typeof (error as ErrorLike).message === 'string';
}

/** Options of {@link describeRedisError}. */
export interface DescribeRedisErrorOptions {
  /**
   * The URL (or address) the client was given: preferred to the error's, which may be a resolved IP.
   * With `cluster`, the seed node.
   */
  where?: string | RedisAddress | undefined;
  /** The setting that holds the URL (`REDIS_URL`, `--redis-url`), named in the message so the reader knows what to fix. */
  setting?: string | undefined;
  /**
   * The error is of a command a Redis Cluster client sent to one node: the message names that node
   * (the address the error carries, else {@link node}), with `where` as the seed, for one shard
   * away is not the seed's fault. Without a node of either kind it names `where`, as for a
   * standalone Redis. @default false
   */
  cluster?: boolean | undefined;
  /** With `cluster`: the node the command went to, `host:port` as the slot map names it. */
  node?: string | undefined;
}

/**
 * "cannot reach Redis at HOST:PORT (CODE)", plus "; check SETTING" when a
 * setting is named: the one way the publisher, the gateway and the CLI say why
 * Redis is away. Only the host and port of a URL are shown, never its user or
 * password; the error's own message is not repeated (it may quote the URL).
 */
export function describeRedisError(error: unknown, options: DescribeRedisErrorOptions = {}): string {
  const at = addressOf(error, options.where);
  const check = options.setting ? `; check ${options.setting}` : '';
  const code = redisErrorCode(error);
  if (code === 'CLUSTER_DISABLED') {
    return `the Redis${at ? ` at ${at}` : ''} is not a cluster (CLUSTER_DISABLED: its cluster support is disabled), yet it is used as one${check}`;
  }
  const node = options.cluster ? clusterNodeNamed(error, options.node) : undefined;
  if (node) {
    const seed = givenAddress(options.where);
    const seeded = seed && seed !== node ? ` (seed ${seed})` : '';
    const nodeCheck = options.setting ? `; check that node (${options.setting} names the seed only)` : '';
    return `cannot reach Redis Cluster node ${node}${seeded} (${code})${nodeCheck}`;
  }
  return `cannot reach Redis${at ? ` at ${at}` : ''} (${code})${check}`;
}

/**
 * The node {@link describeRedisError} names for a Cluster call's error: the address the error
 * carries, else `node` (the slot map's). Undefined when neither says.
 */
export function clusterNodeNamed(error: unknown, node: string | undefined): string | undefined {
  return ownAddress(error) ?? node;
}

/** `host:port` of the URL or address the client was given. */
function givenAddress(where: string | RedisAddress | undefined): string | undefined {
  const given = typeof where === 'string' ? redisUrlAddress(where) : where;
  return given ? `${given.host}:${given.port}` : undefined;
}

/**
 * The address an error carries itself (a socket's), not a Cluster's last node's: a Cluster's
 * "all nodes failed" is about the cluster, not one node.
 */
function ownAddress(error: unknown): string | undefined {
  if (!isErrorLike(error)) return undefined;
  const host =
    typeof error.address === 'string' ? error.address : typeof error.hostname === 'string' ? error.hostname : undefined;
  if (!host) return undefined;
  return typeof error.port === 'number' ? `${host}:${error.port}` : host;
}

function addressOf(error: unknown, where: string | RedisAddress | undefined): string | undefined {
  const given = givenAddress(where);
  if (given) return given;
  if (!isErrorLike(error)) return undefined;
  return ownAddress(isErrorLike(error.lastNodeError) ? error.lastNodeError : error);
}
