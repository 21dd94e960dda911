import { DocumentReference, GeoPoint, Timestamp } from 'firebase-admin/firestore';

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** RFC 3339 with microseconds (Firestore's precision), e.g. `2025-11-22T08:26:40.100000Z`. */
export function timestampText(t: { seconds: number; nanoseconds: number }): string {
  const base = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(Math.floor(t.nanoseconds / 1000)).padStart(6, '0')}Z`;
}

/**
 * Firestore values as JSON, so events pass the protocol's schema: timestamps as
 * RFC 3339 text, references as their path, geo points as `{latitude, longitude}`,
 * bytes as base64, non-finite numbers as null.
 */
export function firestoreJson(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (value instanceof Timestamp) return timestampText(value);
  if (value instanceof DocumentReference) return value.path;
  if (value instanceof GeoPoint) return { latitude: value.latitude, longitude: value.longitude };
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(firestoreJson);
  if (typeof value === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = firestoreJson(v);
    return out;
  }
  return null;
}
