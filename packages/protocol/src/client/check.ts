// A checker for the subset of JSON Schema (draft 2020-12) that `z.toJSONSchema` writes for the
// protocol's zod schemas. It lets clients validate frames against the schemas generated from the
// zod ones without carrying zod itself (see docs/client.md, "Size"). Where JSON Schema and zod
// differ it follows zod, the source of truth: string lengths count UTF-16 code units, numbers
// must be finite, objects must be plain, and an `undefined` property counts as absent.
import type { FrameIssue } from '../errors';

/** A JSON Schema as `z.toJSONSchema` writes it: `true`/`false` or an object of keywords. */
export type JsonSchema = boolean | SchemaObject;

/** The keywords {@link checkJson} reads. */
export interface SchemaObject {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

/**
 * Every keyword {@link checkJson} understands: those it checks, and the annotations it may
 * ignore. A schema with any other keyword is refused when the schemas are generated, so that a
 * new zod feature can never be skipped silently here.
 */
export const KNOWN_KEYWORDS: readonly string[] = [
  'type',
  'const',
  'enum',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'anyOf',
  'oneOf',
  '$ref',
  '$defs',
  '$schema',
  'description',
];

/** An issue with its path as a list, built while returning (nothing is built for valid input). */
interface Found {
  at: Array<string | number>;
  message: string;
  /** Failed on a `const` (a discriminator): the branch was not meant for this value. */
  constMiss?: boolean;
}

const has = (o: object, key: string) => Object.hasOwn(o, key);
/** As zod's: any realm's plain objects (not arrays, dates, class instances). */
const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const ctor = (v as { constructor?: unknown }).constructor;
  if (typeof ctor !== 'function') return true;
  const proto: unknown = ctor.prototype;
  return typeof proto === 'object' && proto !== null && has(proto, 'isPrototypeOf');
};
const show = (v: unknown) => JSON.stringify(v);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const TYPES: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  object: isPlainObject,
  array: Array.isArray,
};

const patterns = new Map<string, RegExp>();
function matches(pattern: string, s: string): boolean {
  let re = patterns.get(pattern);
  if (!re) {
    re = new RegExp(pattern);
    patterns.set(pattern, re);
  }
  return re.test(s);
}

const fail = (message: string, at: Array<string | number> = []): Found => ({ at, message });
const under = (key: string | number, found: Found | undefined) => {
  found?.at.unshift(key);
  return found;
};

function checkString(s: SchemaObject, v: string): Found | undefined {
  if (s.minLength !== undefined && v.length < s.minLength) return fail(`expected at least ${s.minLength} characters`);
  if (s.maxLength !== undefined && v.length > s.maxLength) return fail(`expected at most ${s.maxLength} characters`);
  if (s.pattern !== undefined && !matches(s.pattern, v)) return fail(`expected to match /${s.pattern}/`);
}

function checkNumber(s: SchemaObject, v: number): Found | undefined {
  if (s.minimum !== undefined && v < s.minimum) return fail(`expected >= ${s.minimum}`);
  if (s.maximum !== undefined && v > s.maximum) return fail(`expected <= ${s.maximum}`);
  if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) return fail(`expected > ${s.exclusiveMinimum}`);
  if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) return fail(`expected < ${s.exclusiveMaximum}`);
}

function checkArray(s: SchemaObject, v: unknown[], root: SchemaObject): Found | undefined {
  if (s.minItems !== undefined && v.length < s.minItems) return fail(`expected at least ${s.minItems} items`);
  if (s.maxItems !== undefined && v.length > s.maxItems) return fail(`expected at most ${s.maxItems} items`);
  const prefix = s.prefixItems ?? [];
  for (let i = 0; i < v.length; i++) {
    const item = i < prefix.length ? prefix[i] : s.items;
    if (item === undefined) continue;
    const found = under(i, item === false ? fail('unexpected item') : check(item, v[i], root));
    if (found) return found;
  }
}

function checkObject(s: SchemaObject, v: Record<string, unknown>, root: SchemaObject): Found | undefined {
  const props = s.properties ?? {};
  const required = s.required ?? [];
  // In the schema's order, so a discriminator (first in every frame) is checked first.
  for (const key in props) {
    const found =
      has(v, key) && v[key] !== undefined
        ? under(key, check(props[key] as JsonSchema, v[key], root))
        : required.includes(key)
          ? fail('required', [key])
          : undefined;
    if (found) return found;
  }
  for (const key of required) if (!has(v, key) || v[key] === undefined) return fail('required', [key]);
  const extra = s.additionalProperties;
  if (extra === undefined && s.propertyNames === undefined) return;
  for (const key of Object.keys(v)) {
    if (s.propertyNames !== undefined && check(s.propertyNames, key, root)) return fail('invalid key', [key]);
    if (has(props, key) || extra === undefined || v[key] === undefined) continue;
    const found = under(key, extra === false ? fail('unknown key') : check(extra, v[key], root));
    if (found) return found;
  }
}

const score = (f: Found) => f.at.length * 2 - (f.constMiss ? 1 : 0);

/**
 * A union holds when one branch holds. Otherwise the issue of the branch that got furthest
 * (the deepest path, a discriminator that matched) is the useful one. When several got
 * equally far, none is singled out.
 */
function checkUnion(branches: JsonSchema[], v: unknown, root: SchemaObject): Found | undefined {
  let best: Found | undefined;
  let tied = false;
  for (const branch of branches) {
    const found = check(branch, v, root);
    if (!found) return undefined;
    if (!best || score(found) > score(best)) [best, tied] = [found, false];
    else if (score(found) === score(best)) tied = true;
  }
  return best && tied ? { ...best, message: `matches none of the ${branches.length} allowed shapes` } : best;
}

function resolve(root: SchemaObject, ref: string): JsonSchema {
  const name = ref.startsWith('#/$defs/') ? ref.slice(8) : undefined;
  const target = name !== undefined && root.$defs && has(root.$defs, name) ? root.$defs[name] : undefined;
  if (target === undefined) throw new Error(`unsupported $ref ${ref}`);
  return target;
}

function check(s: JsonSchema, v: unknown, root: SchemaObject): Found | undefined {
  if (s === true) return;
  if (s === false) return fail('not allowed');
  if (s.$ref !== undefined) {
    const found = check(resolve(root, s.$ref), v, root);
    if (found) return found;
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => TYPES[t]?.(v))) return fail(`expected ${types.join(' or ')}, got ${typeName(v)}`);
  }
  if (has(s, 'const') && v !== s.const) return { at: [], message: `expected ${show(s.const)}`, constMiss: true };
  if (s.enum && !s.enum.includes(v)) return fail(`expected one of ${s.enum.map(show).join(', ')}`);
  const found =
    typeof v === 'string'
      ? checkString(s, v)
      : typeof v === 'number'
        ? checkNumber(s, v)
        : Array.isArray(v)
          ? checkArray(s, v, root)
          : isPlainObject(v)
            ? checkObject(s, v, root)
            : undefined;
  if (found) return found;
  if (s.anyOf) return checkUnion(s.anyOf, v, root);
  // The generated `oneOf`s are discriminated unions: at most one branch can hold, so "any" is "one".
  if (s.oneOf) return checkUnion(s.oneOf, v, root);
}

/**
 * Checks a value against a schema document (its `$ref`s point into its own `$defs`). Returns
 * the first issue found, or undefined when the value is valid. Throws only on a schema it
 * cannot read, or on a value nested deep enough to exhaust the stack (callers catch both).
 */
export function checkJson(schema: JsonSchema, value: unknown): FrameIssue | undefined {
  const found = check(schema, value, typeof schema === 'object' ? schema : {});
  return found && { path: found.at.join('.'), message: found.message };
}
