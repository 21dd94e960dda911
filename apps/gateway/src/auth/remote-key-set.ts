import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/** A JWKS that could not be fetched or read: the provider's trouble, not a bad token. */
export class JwksUnavailable extends Error {
  override readonly name = 'JwksUnavailable';
}

/** Options of {@link RemoteKeySet}. */
export interface RemoteKeySetOptions {
  /** Least time between two fetches of a key set held already (an unknown `kid`, keys grown old). */
  cooldownMs: number;
  /** Time allowed for one fetch, the body included. */
  timeoutMs: number;
  /** Keys older than this are fetched again, in the background: the held ones verify meanwhile. */
  maxAgeMs: number;
  /** Clock, in ms since the epoch. */
  now: () => number;
  /** Told when a background fetch (keys grown old) fails: the keys held keep verifying. */
  onRefreshError?: (message: string) => void;
}

/**
 * An identity provider's JSON Web Key Set, fetched over HTTP and kept: a `getKey` for jose's
 * `jwtVerify`. Unlike jose's `createRemoteJWKSet` (5.x), each fetch is bounded as a whole (a
 * provider that sends its headers and then stalls never holds a sign-in for longer than
 * `timeoutMs`), and keys held stay in use while newer ones cannot be fetched: a provider that
 * is down stops no sign-in with keys it published before. Without keys yet, each token needs
 * a fetch (one at a time: concurrent tokens share it) and is refused with
 * {@link JwksUnavailable} when it fails.
 */
export class RemoteKeySet {
  readonly #url: URL;
  readonly #o: RemoteKeySetOptions;
  #keys: JWTVerifyGetKey | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #triedAt = Number.NEGATIVE_INFINITY;
  #inFlight: Promise<void> | undefined;
  /** Fetches made (each attempt, answered or not). */
  fetches = 0;

  constructor(url: URL, options: RemoteKeySetOptions) {
    this.#url = url;
    this.#o = options;
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.#keys) await this.#refresh();
    const now = this.#o.now();
    const mayFetch = now - this.#triedAt >= this.#o.cooldownMs;
    if (mayFetch && now - this.#fetchedAt >= this.#o.maxAgeMs) {
      // Grown old: fetched again behind this token, which the keys held still verify.
      this.#refresh().catch((error: unknown) => this.#o.onRefreshError?.((error as Error).message));
    }
    const keys = this.#keys as JWTVerifyGetKey;
    try {
      return await keys(header, token);
    } catch (error) {
      // A kid the set does not have: the provider may have rotated its keys since.
      if (!(error instanceof errors.JWKSNoMatchingKey) || !mayFetch) throw error;
      await this.#refresh();
      return (this.#keys as JWTVerifyGetKey)(header, token);
    }
  };

  /** Fetches the key set, one fetch at a time (callers meanwhile share it). */
  #refresh(): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    this.#triedAt = this.#o.now();
    this.fetches++;
    let body: unknown;
    try {
      // The signal bounds the whole exchange: connecting, the headers and reading the body.
      const response = await fetch(this.#url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        throw new Error(`HTTP ${response.status}`);
      }
      body = await response.json();
    } catch (cause) {
      // (A DOMException, not an Error of every realm: read by name.)
      const name = (cause as { name?: unknown } | undefined)?.name;
      const why =
        name === 'TimeoutError'
          ? `no answer within ${this.#o.timeoutMs} ms`
          : String((cause as Error)?.message ?? cause);
      throw new JwksUnavailable(`JWKS unavailable: ${this.#url.href}: ${why}`, { cause });
    }
    if (!isKeySet(body))
      throw new JwksUnavailable(`JWKS unavailable: ${this.#url.href} did not answer a JSON Web Key Set`);
    try {
      this.#keys = createLocalJWKSet(body);
    } catch (cause) {
      throw new JwksUnavailable(`JWKS unavailable: ${this.#url.href}: ${(cause as Error).message}`, { cause });
    }
    this.#fetchedAt = this.#o.now();
  }
}

function isKeySet(body: unknown): body is JSONWebKeySet {
  return (
    typeof body === 'object' &&
    body !== null &&
    Array.isArray((body as { keys?: unknown }).keys) &&
    (body as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null)
  );
}
