// The hello in the WebSocket upgrade: a client may carry its hello in the upgrade request's
// `Sec-WebSocket-Protocol` header instead of sending it as the first frame. The gateway then
// starts the handshake as the upgrade completes, and the client's first frame is the welcome's
// answer instead of its hello: one round trip less per connect, and one frame less to write,
// read and parse on both sides. Tokens in that header are the same practice as Kubernetes's
// `base64url.bearer.authorization.k8s.io.` protocol: not in the URL, so not in the access logs
// that record URLs; a proxy that logs request headers sees it as it would an Authorization header.
//
// The client offers three protocols, in this order:
//   1. `livebus`: a gateway that does not read hellos from the upgrade (an older release, in a
//      rolling deploy) selects the first protocol offered, and the client sends its hello frame.
//   2. `livebus.hello`: a gateway that took the hello from the upgrade selects this one; no
//      hello frame follows.
//   3. `livebus.hello.` + the hello frame's JSON text in base64url (no padding): the hello. A
//      subprotocol must be an HTTP token, and base64url's letters, digits, `-` and `_` are.
// The hello it carries is checked as a hello frame is (same verdicts, same close codes).

/** Offered first; selected by a gateway that expects the hello as the first frame. */
export const FRAME_HELLO_PROTOCOL = 'livebus';

/** Selected by a gateway that took the hello from the upgrade: the client sends no hello frame. */
export const UPGRADE_HELLO_PROTOCOL = 'livebus.hello';

/** The protocol value carrying the hello starts with this; the base64url of its JSON follows. */
export const HELLO_PROTOCOL_PREFIX = 'livebus.hello.';

/**
 * The longest protocol value a client puts a hello in (characters). A longer hello (a token of
 * several kilobytes) goes as the first frame: request headers past Node's 16 KB limit are refused
 * with 431, and browsers send their cookies in the same request.
 */
export const MAX_HELLO_PROTOCOL_CHARS = 6144;
