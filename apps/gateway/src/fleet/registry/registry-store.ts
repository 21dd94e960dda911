import { type RegistrySession, registryLimits, type UserRegistry, type UserRegistryPatch } from '@livebus/protocol';

/**
 * Port: where the registry of who is online lives. Two implementations pass the
 * same contract suite (registry-store.contract.ts): in-memory (embedded
 * default) and Redis (keys under `registry:`).
 */
export interface RegistryStore {
  /**
   * Whether every instance of the fleet sees the same registry (a shared store), or
   * only this process does (the embedded default).
   */
  readonly sharedAcrossInstances: boolean;
  /**
   * Legacy registry: records one session of a user (idempotent per session id). False, storing
   * nothing, for a new session id of a user who has `maxSessions` registered already (checked
   * and written atomically); an id already registered is always written again.
   * @param maxSessions @default unbounded
   */
  registerSession(userId: string, session: RegistrySession, maxSessions?: number): Promise<boolean>;
  /** Legacy registry: removes one session; false when it was not there. */
  unregisterSession(userId: string, sessionId: string): Promise<boolean>;
  /** Legacy registry: the user's sessions, oldest first. */
  getSessions(userId: string): Promise<RegistrySession[]>;
  /** Unified registry document, or undefined when the user has none (or it expired). */
  getUnified(userId: string): Promise<UserRegistry | undefined>;
  /** Writes the unified document with a time to live. */
  putUnified(userId: string, doc: UserRegistry, ttlS: number): Promise<void>;
  /** Extends the unified document's time to live (live sessions call this on every heartbeat). */
  touchUnified(userId: string, ttlS: number): Promise<void>;
  /** Cheap liveness probe for health endpoints. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** An empty unified document for a user who has none yet. */
export function emptyUserRegistry(userId: string, online: boolean): UserRegistry {
  return {
    user_info: { user_id: userId, status: online ? 'online' : 'offline' },
    companies: { current_company_id: null },
    services: {},
  };
}

/** Applies a patch: `services` keys merge and a `null` value removes the key. */
export function applyRegistryPatch(doc: UserRegistry, patch: UserRegistryPatch): UserRegistry {
  const services = { ...doc.services };
  for (const [key, value] of Object.entries(patch.services ?? {})) {
    if (value === null) delete services[key];
    else services[key] = value;
  }
  return {
    user_info: { ...doc.user_info, ...patch.user_info },
    companies: { ...doc.companies, ...patch.companies },
    services,
  };
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/**
 * Why a patch's merged `services` may not be stored, or undefined: it holds more keys or more
 * bytes of JSON than {@link registryLimits} allows, and more than `before` did (a document stored
 * before the bounds existed may be updated, never grown, until it is back under them).
 */
export function servicesProblem(before: UserRegistry['services'], after: UserRegistry['services']): string | undefined {
  const { maxServiceKeys, maxServicesBytes } = registryLimits;
  const keys = Object.keys(after).length;
  if (keys > maxServiceKeys && keys > Object.keys(before).length) {
    return `services would hold ${keys} keys, more than the ${maxServiceKeys} allowed; remove keys (null) first`;
  }
  const bytes = jsonBytes(after);
  if (bytes > maxServicesBytes && bytes > jsonBytes(before)) {
    return `services would be ${bytes} bytes of JSON, more than the ${maxServicesBytes} allowed; remove keys (null) first`;
  }
  return undefined;
}
