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
  /** Time the gateway gives a new socket from its accept to its `welcome` (the `hello` included). @default 10_000 */
  handshakeTimeoutMs: 10_000,
  /**
   * Time a client gives one attempt, from its start to `welcome`: the gateway's
   * {@link handshakeTimeoutMs} and 2 s more for the token, the connect and the gateway's answer,
   * so that a gateway that could not finish the handshake (1013: its Redis did not answer) says so
   * before the client gives up on its own when those take under 2 s. @default 12_000
   */
  clientHandshakeTimeoutMs: 12_000,
  /** Largest frame either side accepts, in bytes of UTF-8. @default 1_048_576 */
  maxFrameBytes: 1_048_576,
  /** Deepest nesting of arrays and objects either side accepts in a frame or HTTP body. @default 64 */
  maxJsonDepth: 64,
  /** How long before a session's token expires the gateway asks for a fresh one (`notice` `token_expiring`). @default 60_000 */
  tokenRefreshLeadMs: 60_000,
} as const;

/** The shape of {@link protocolDefaults}. */
export type ProtocolDefaults = typeof protocolDefaults;
