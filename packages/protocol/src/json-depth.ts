/**
 * Depth of the most nested array or object in a JSON text, measured without
 * recursion and without parsing, so hostile input (thousands of `[`) is refused
 * before any recursive code (JSON.parse, schema validation) sees it.
 *
 * Returns `true` when the text nests deeper than `maxDepth`. Brackets inside
 * strings do not count. The scan stops at the first level past the limit.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  // Nesting needs an opening bracket per level: a text with no more `{` and `[` than the limit
  // (most frames: a handful) cannot exceed it, and indexOf counts them far faster than the scan.
  if (openingsAtMost(text, maxDepth)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** Whether the text has at most `limit` opening brackets, those inside strings included. */
function openingsAtMost(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++n > limit) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++n > limit) return false;
  return true;
}

/** Past this `maxDepth`, {@link exceedsValueDepth} walks with a stack of its own instead of recursing. */
const RECURSION_MAX = 1_000;

/**
 * Depth of the most nested array or object in an already parsed value: `true` when it nests
 * deeper than `maxDepth`. For values that did not come from text: an event handed to a
 * publisher in process, for example. Up to a `maxDepth` of 1 000 it recurses, never more than
 * `maxDepth + 1` calls deep (a cycle, too, stops there), and allocates nothing per value (it runs
 * for every event); above that it uses an explicit stack, so no depth overflows the call stack.
 */
export function exceedsValueDepth(value: unknown, maxDepth: number): boolean {
  return maxDepth > RECURSION_MAX ? deeperThanIterative(value, maxDepth) : deeperThan(value, 0, maxDepth);
}

/** {@link exceedsValueDepth} with an explicit stack: for limits too deep to recurse to. */
function deeperThanIterative(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > maxDepth) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
    }
  }
  return false;
}

// biome-ignore lint/suspicious/noPrototypeBuiltins: Object.hasOwn is missing from the ES2020 browsers this package targets.
const hasOwn = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

/** Whether `v`, found at depth `depth` (the top value: 0), nests deeper than `maxDepth`. */
function deeperThan(v: unknown, depth: number, maxDepth: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (depth + 1 > maxDepth) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (deeperThan(v[i], depth + 1, maxDepth)) return true;
    return false;
  }
  // Own enumerable string keys, as Object.values reads them, without building its array.
  const o = v as Record<string, unknown>;
  for (const key in o) if (hasOwn(o, key) && deeperThan(o[key], depth + 1, maxDepth)) return true;
  return false;
}
