/**
 * The delay a `Retry-After` header asks for, in ms, plus up to one second of jitter
 * (the header counts whole seconds, and every client refused in the same second
 * reads the same value). Accepts delta-seconds and HTTP-dates (RFC 9110); undefined
 * when the header is absent or not understood. Pure, so it can be tested.
 */
export function retryAfterDelayMs(
  header: string | string[] | undefined,
  random: () => number = Math.random,
  nowMs: number = Date.now(),
): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  let ms: number;
  if (/^\d+$/.test(value)) ms = Number(value) * 1000;
  else {
    // An HTTP-date names its weekday and month ("Mon, 23 Nov 2026 12:00:03 GMT"); a bare number is no date.
    if (!/[A-Za-z]/.test(value)) return undefined;
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return ms + Math.floor(random() * 1000);
}
