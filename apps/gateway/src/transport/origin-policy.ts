/**
 * Whether a browser's `Origin` may open a WebSocket. `allowed` holds exact
 * origins (`https://app.example.com`) and subdomain wildcards
 * (`https://*.example.com`, which matches any subdomain at any depth but not
 * `https://example.com` itself). No list means any origin. No `Origin` header
 * means the peer is not a browser (an app server), which a browser cannot fake,
 * so the check (a defence against cross-site WebSocket hijacking) lets it through.
 */
export function isOriginAllowed(origin: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (!allowed) return true;
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const given = `${url.protocol}//${url.host}`.toLowerCase();
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    const star = p.indexOf('://*.');
    if (star < 0) return given === p;
    const scheme = p.slice(0, star + 3);
    const suffix = p.slice(star + 4); // ".example.com[:port]"
    return given.startsWith(scheme) && given.endsWith(suffix) && given.length > scheme.length + suffix.length;
  });
}
