/** Version of the wire protocol spoken in `hello` and `welcome` frames. Bumped only for breaking changes. */
export const PROTOCOL_VERSION = 1 as const;
