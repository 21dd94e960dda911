/**
 * A Redis URL as it may be shown (`/debug`) or logged: without its secrets. ioredis reads a
 * password from the user info (`redis://user:pass@host`) and from the query
 * (`redis://host:6379/0?password=...`), so both go: the user info shows as `***@`, each query
 * value as `***` (the names stay, to tell what is set). A value that is no URL shows as `[set]`.
 */
export function shownRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[set]';
  }
  const user = parsed.username || parsed.password ? '***@' : '';
  const names = [...new Set(parsed.searchParams.keys())];
  const query = names.length ? `?${names.map((n) => `${encodeURIComponent(n)}=***`).join('&')}` : '';
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}${query}`;
}
