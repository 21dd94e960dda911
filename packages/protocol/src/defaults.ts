/**
 * Protocol defaults shared by the gateway and every client. Changing one of these
 * changes behaviour on both sides, which is why they live here.
 */
export const protocolDefaults = {
  /** How often the gateway pings every socket, and a client a gateway it has not heard from. @default 20_000 */
  pingIntervalMs: 20_000,
  /** How long a peer may stay silent before it is declared dead. @default 60_000 */
  pingTimeoutMs: 60_000,
  /** Delay between a user's last session closing and their listeners being released. @default 5_000 */
  detachDelayMs: 5_000,
  /** Time a new socket has to send a valid `hello` frame. @default 10_000 */
  handshakeTimeoutMs: 10_000,
  /** Largest frame either side accepts, in bytes of UTF-8. @default 1_048_576 */
  maxFrameBytes: 1_048_576,
  /** Deepest nesting of arrays and objects either side accepts in a frame or HTTP body. @default 64 */
  maxJsonDepth: 64,
  /** How long before a session's token expires the gateway asks for a fresh one (`notice` `token_expiring`). @default 60_000 */
  tokenRefreshLeadMs: 60_000,
} as const;

/** The shape of {@link protocolDefaults}. */
export type ProtocolDefaults = typeof protocolDefaults;
