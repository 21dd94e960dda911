// A checker for the subset of JSON Schema (draft 2020-12) that `z.toJSONSchema` writes for the
// protocol's zod schemas. It lets clients validate frames against the schemas generated from the
// zod ones without carrying zod itself (see docs/client.md, "Size"). Where JSON Schema and zod
// differ it follows zod, the source of truth: string lengths count code points, numbers
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

/** What a schema of one scalar type may carry besides annotations (see `typeOnly`). */
const SCALAR_CHECKS = [
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
] as const;
/** What a plain object schema carries besides `type` and annotations (see `typeOnly`). */
const OBJECT_CHECKS = ['properties', 'required', 'additionalProperties', 'propertyNames'] as const;
/** Read by nobody: documentation of the schema. */
const ANNOTATIONS = ['$schema', 'description'] as const;

/**
 * Every keyword {@link checkJson} understands: those it checks, and the annotations it may
 * ignore. A schema with any other keyword is refused when the schemas are generated, so that a
 * new zod feature can never be skipped silently here.
 */
export const KNOWN_KEYWORDS: readonly string[] = [
  ...SCALAR_CHECKS,
  ...OBJECT_CHECKS,
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'anyOf',
  'oneOf',
  '$ref',
  '$defs',
  ...ANNOTATIONS,
];

/** An issue with its path as a list, built while returning (nothing is built for valid input). */
interface Found {
  at: Array<string | number>;
  message: string;
  /** Failed on a `const` (a discriminator): the branch was not meant for this value. */
  constMiss?: boolean;
}

/** A compiled schema: undefined for a valid value, else the first issue. */
type Check = (v: unknown) => Found | undefined;

// biome-ignore lint/suspicious/noPrototypeBuiltins: Object.hasOwn is missing from the ES2020 browsers this targets.
const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);
/** As zod's: any realm's plain objects (not arrays, dates, class instances). */
export const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const ctor = (v as { constructor?: unknown }).constructor;
  if (typeof ctor !== 'function') return true;
  const proto: unknown = ctor.prototype;
  return typeof proto === 'object' && proto !== null && has(proto, 'isPrototypeOf');
};
const show = (v: unknown) => JSON.stringify(v);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
/** An own property that is not undefined (zod counts an undefined property as absent). */
const present = (o: Record<string, unknown>, key: string) => o[key] !== undefined && has(o, key);

const TYPES: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  object: isPlainObject,
  array: Array.isArray,
};

const fail = (message: string, at: Array<string | number> = []): Found => ({ at, message });
const under = (key: string | number, found: Found | undefined) => {
  found?.at.unshift(key);
  return found;
};
/** Runs checks in order; the first issue wins. */
const all =
  (checks: Check[]): Check =>
  (v) => {
    for (let i = 0; i < checks.length; i++) {
      const found = (checks[i] as Check)(v);
      if (found) return found;
    }
  };
/** Whether `v` passes one of the type tests (a loop, not `some`: no closure per call). */
const anyType = (tests: Array<(v: unknown) => boolean>, v: unknown) => {
  for (let i = 0; i < tests.length; i++) if ((tests[i] as (v: unknown) => boolean)(v)) return true;
  return false;
};

/** Code points in a string, as zod's length checks count them (a lone surrogate counts one). */
function codePoints(v: string): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < v.length) {
      const next = v.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The schema's `const` and `enum`, in that order (a `const` miss is marked for unions). */
function valueChecks(s: SchemaObject, checks: Check[]): void {
  if (has(s, 'const')) {
    const c = s.const;
    checks.push((v) => (v === c ? undefined : { at: [], message: `expected ${show(c)}`, constMiss: true }));
  }
  const { enum: values } = s;
  if (values)
    checks.push((v) => (values.includes(v) ? undefined : fail(`expected one of ${values.map(show).join(', ')}`)));
}

function stringChecks(s: SchemaObject, out: Check[]): void {
  const { minLength: min, maxLength: max, pattern } = s;
  const re = pattern === undefined ? undefined : new RegExp(pattern);
  if (min === undefined && max === undefined && !re) return;
  out.push((v) => {
    if (typeof v !== 'string') return;
    // zod counts code points (one or two UTF-16 units each): the units decide alone unless
    // surrogate pairs could move the count across a bound, and only then are they counted.
    if (min !== undefined && v.length < 2 * min && codePoints(v) < min) {
      return fail(`expected at least ${min} characters`);
    }
    if (max !== undefined && v.length > max && codePoints(v) > max) return fail(`expected at most ${max} characters`);
    if (re && !re.test(v)) return fail(`expected to match /${pattern}/`);
  });
}

function numberChecks(s: SchemaObject, out: Check[]): void {
  const { minimum: min, maximum: max, exclusiveMinimum: xmin, exclusiveMaximum: xmax } = s;
  if (min === undefined && max === undefined && xmin === undefined && xmax === undefined) return;
  out.push((v) => {
    if (typeof v !== 'number') return;
    if (min !== undefined && v < min) return fail(`expected >= ${min}`);
    if (max !== undefined && v > max) return fail(`expected <= ${max}`);
    if (xmin !== undefined && v <= xmin) return fail(`expected > ${xmin}`);
    if (xmax !== undefined && v >= xmax) return fail(`expected < ${xmax}`);
  });
}

function arrayChecks(s: SchemaObject, out: Check[], compile: (s: JsonSchema) => Check): void {
  const { minItems: min, maxItems: max } = s;
  const prefix = (s.prefixItems ?? []).map(compile);
  const rest = s.items === undefined ? undefined : compile(s.items);
  if (min === undefined && max === undefined && prefix.length === 0 && !rest) return;
  out.push((v) => {
    if (!Array.isArray(v)) return;
    if (min !== undefined && v.length < min) return fail(`expected at least ${min} items`);
    if (max !== undefined && v.length > max) return fail(`expected at most ${max} items`);
    for (let i = 0; i < v.length; i++) {
      const item = i < prefix.length ? prefix[i] : rest;
      const found = item && under(i, item(v[i]));
      if (found) return found;
    }
  });
}

/**
 * The checks of an object schema's keywords. `known`: the caller has already found the value a
 * plain object (its `type` test), so it is not tested again.
 */
function objectChecks(s: SchemaObject, out: Check[], compile: (s: JsonSchema) => Check, known = false): void {
  const required = s.required ?? [];
  const declared = s.properties ?? {};
  // In the schema's order, so a discriminator (first in every frame) is checked first.
  const props = Object.keys(declared).map((key) => ({
    key,
    check: compile(declared[key] as JsonSchema),
    required: required.includes(key),
  }));
  const alsoRequired = required.filter((key) => !has(declared, key));
  // The declared keys as a Set: looked up for every key of every value, faster than hasOwnProperty.
  const knownKeys = new Set(Object.keys(declared));
  const extra = s.additionalProperties === undefined ? undefined : compile(s.additionalProperties);
  const names = s.propertyNames === undefined ? undefined : compile(s.propertyNames);
  if (props.length === 0 && alsoRequired.length === 0 && !extra && !names) return;
  out.push((value) => {
    if (!known && !isPlainObject(value)) return;
    const v = value as Record<string, unknown>;
    for (let i = 0; i < props.length; i++) {
      const p = props[i] as (typeof props)[number];
      // As present(), with the value read once.
      const value = v[p.key];
      const found =
        value !== undefined && has(v, p.key)
          ? under(p.key, p.check(value))
          : p.required
            ? fail('required', [p.key])
            : undefined;
      if (found) return found;
    }
    for (const key of alsoRequired) if (!present(v, key)) return fail('required', [key]);
    if (!extra && !names) return;
    // Own keys in Object.keys order, without building the array.
    for (const key in v) {
      // A declared key needs no more here (without propertyNames), own or not: no hasOwnProperty.
      if (!names && (!extra || knownKeys.has(key))) continue;
      if (!has(v, key)) continue;
      if (names?.(key)) return fail('invalid key', [key]);
      if (!extra || knownKeys.has(key) || v[key] === undefined) continue;
      const found = under(key, extra(v[key]));
      if (found) return found;
    }
  });
}

/**
 * What a value must have for a schema to stand a chance: its `type`s and the `const`s of its
 * required properties (a union: what all its branches share). A union skips a branch whose
 * entry conditions fail without running it, which keeps parsing free of allocations.
 */
interface Entry {
  types?: string[];
  consts: Array<[string, unknown]>;
}

function entryOf(s: JsonSchema, root: SchemaObject): Entry {
  if (typeof s !== 'object') return { consts: [] };
  if (s.$ref !== undefined) return entryOf(resolve(root, s.$ref), root);
  const types = s.type === undefined ? undefined : Array.isArray(s.type) ? s.type : [s.type];
  const consts: Array<[string, unknown]> = [];
  for (const [key, p] of Object.entries(s.properties ?? {})) {
    if (typeof p === 'object' && has(p, 'const') && s.required?.includes(key)) consts.push([key, p.const]);
  }
  const union = s.anyOf ?? s.oneOf;
  if (union && union.length > 0) {
    const [first, ...others] = union.map((b) => entryOf(b, root));
    const shared = (first as Entry).consts.filter(([k, c]) =>
      others.every((o) => o.consts.some(([k2, c2]) => k === k2 && c === c2)),
    );
    consts.push(...shared);
  }
  return { types, consts };
}

/** An {@link Entry} ready to test values with (type tests looked up once). */
interface Admission {
  tests: Array<(v: unknown) => boolean> | undefined;
  consts: Array<[string, unknown]>;
}

const admission = (e: Entry): Admission => ({
  tests: e.types?.map((t) => TYPES[t] ?? (() => false)),
  consts: e.consts,
});

function admits(a: Admission, v: unknown): boolean {
  if (a.tests && !anyType(a.tests, v)) return false;
  const { consts } = a;
  if (consts.length === 0) return true;
  if (!isPlainObject(v)) return false;
  return constsHold(consts, v);
}

/** Whether a plain object has every one of `consts` as an own property. */
function constsHold(consts: Array<[string, unknown]>, v: Record<string, unknown>): boolean {
  for (let i = 0; i < consts.length; i++) {
    const [k, c] = consts[i] as [string, unknown];
    if (v[k] !== c || !has(v, k)) return false;
  }
  return true;
}

const isPrimitive = (c: unknown) => c === null || (typeof c !== 'object' && typeof c !== 'function');

/**
 * The key whose `const` tells a union's branches apart best (the `type` of frames, the `event`
 * of event frames): one every branch requires, with primitive values, the most distinct ones.
 * Undefined when there is none, or it would not narrow anything.
 */
function dispatchKeyOf(entries: Entry[]): string | undefined {
  let best: string | undefined;
  let bestCount = 1;
  for (const [key] of entries[0]?.consts ?? []) {
    const values = new Set<unknown>();
    for (const e of entries) {
      const pair = e.consts.find(([k]) => k === key);
      if (!pair || !isPrimitive(pair[1])) {
        values.clear();
        break;
      }
      values.add(pair[1]);
    }
    if (values.size > bestCount) [best, bestCount] = [key, values.size];
  }
  return best;
}

const score = (f: Found) => f.at.length * 2 - (f.constMiss ? 1 : 0);

/**
 * A union holds when one branch holds. Otherwise the issue of the branch that got furthest
 * (the deepest path, a discriminator that matched) is the useful one. When several got
 * equally far, or none was worth running, none is singled out.
 */
function unionCheck(branches: JsonSchema[], root: SchemaObject, compile: (s: JsonSchema) => Check): Check {
  const entries = branches.map((b) => entryOf(b, root));
  const compiled = branches.map((b, i) => ({ entry: admission(entries[i] as Entry), check: compile(b) }));
  const discriminator = compiled[0]?.entry.consts[0]?.[0];
  const values = compiled.map((b) => b.entry.consts.find(([k]) => k === discriminator)?.[1]);
  // Every branch requires a const at `key`: a value can only be admitted by the branches with its
  // value there (in their order), so only those are tried. Same outcome as trying all, fewer tries.
  const key = dispatchKeyOf(entries);
  const byValue = new Map<unknown, typeof compiled>();
  if (key !== undefined) {
    for (const [i, b] of compiled.entries()) {
      const value = (entries[i] as Entry).consts.find(([k]) => k === key)?.[1];
      // A value tried on this branch is a plain object with `value` at `key` (candidates() saw to
      // it): what is left of the branch's admission is its other consts. A branch whose types
      // leave out objects admits no such value.
      const { tests, consts } = b.entry;
      if (tests && !anyType(tests, {})) continue;
      const rest = { tests: undefined, consts: consts.filter(([k, c]) => k !== key || c !== value) };
      const list = byValue.get(value) ?? [];
      list.push({ entry: rest, check: b.check });
      byValue.set(value, list);
    }
  }
  const none: typeof compiled = [];
  const candidates = (v: unknown) => {
    if (key === undefined) return compiled;
    if (!isPlainObject(v) || !has(v, key)) return none;
    return byValue.get(v[key]) ?? none;
  };
  return (v) => {
    let best: Found | undefined;
    let tied = false;
    const tries = candidates(v);
    for (let i = 0; i < tries.length; i++) {
      const branch = tries[i] as (typeof compiled)[number];
      // (After a dispatch, v is a plain object: only the branch's other consts are left to see.)
      if (key === undefined ? !admits(branch.entry, v) : !constsHold(branch.entry.consts, v as Record<string, unknown>))
        continue;
      const found = branch.check(v);
      if (!found) return undefined;
      if (!best || score(found) > score(best)) [best, tied] = [found, false];
      else if (score(found) === score(best)) tied = true;
    }
    if (best) return tied ? { ...best, message: `matches none of the ${branches.length} allowed shapes` } : best;
    if (discriminator !== undefined && isPlainObject(v) && values.every((x) => x !== undefined)) {
      return { at: [discriminator], message: `expected one of ${values.map(show).join(', ')}`, constMiss: true };
    }
    return fail(`matches none of the ${branches.length} allowed shapes`);
  };
}

function resolve(root: SchemaObject, ref: string): JsonSchema {
  const name = ref.startsWith('#/$defs/') ? ref.slice(8) : undefined;
  const target = name !== undefined && root.$defs && has(root.$defs, name) ? root.$defs[name] : undefined;
  if (target === undefined) throw new Error(`unsupported $ref ${ref}`);
  return target;
}

/** Compiles a schema document once; `$ref`s (recursive ones included) resolve into its `$defs`. */
function compileDocument(root: SchemaObject): Check {
  const done = new Map<JsonSchema, Check>();
  const compile = (s: JsonSchema): Check => {
    const cached = done.get(s);
    if (cached) return cached;
    let self: Check | undefined;
    // Registered before its parts are compiled, so that a recursive $ref finds it.
    done.set(s, (v) => (self as Check)(v));
    self = build(s);
    return self;
  };
  const build = (s: JsonSchema): Check => {
    if (s === true) return () => undefined;
    if (s === false) return () => fail('not allowed');
    const single = typeOnly(s, compile);
    if (single) return single;
    const checks: Check[] = [];
    if (s.$ref !== undefined) checks.push(compile(resolve(root, s.$ref)));
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      const tests = types.map((t) => TYPES[t] ?? (() => false));
      checks.push((v) => (anyType(tests, v) ? undefined : fail(`expected ${types.join(' or ')}, got ${typeName(v)}`)));
    }
    valueChecks(s, checks);
    stringChecks(s, checks);
    numberChecks(s, checks);
    arrayChecks(s, checks, compile);
    objectChecks(s, checks, compile);
    // The generated `oneOf`s are discriminated unions: at most one branch can hold, so "any" is "one".
    for (const union of [s.anyOf, s.oneOf]) if (union) checks.push(unionCheck(union, root, compile));
    return checks.length === 1 ? (checks[0] as Check) : all(checks);
  };
  return compile(root);
}

// The keywords a schema of one type may have for typeOnly() to compile it (annotations included).
const SCALAR_KEYWORDS = new Set<string>([...SCALAR_CHECKS, ...ANNOTATIONS]);
const OBJECT_KEYWORDS = new Set<string>(['type', ...OBJECT_CHECKS, ...ANNOTATIONS]);

/**
 * The most common schemas as one closure each, where the general build would make a list of
 * checks run by all(): a scalar (one type, with a const, an enum, string or number bounds) and
 * a plain object (its properties, nothing else). The type's test is written out, and the same
 * checks then run in the same order with the same messages; a value equal to the schema's valid
 * `const` is accepted at once. Undefined for any other schema.
 */
function typeOnly(s: SchemaObject, compile: (s: JsonSchema) => Check): Check | undefined {
  const type = s.type;
  if (typeof type !== 'string') return undefined;
  const wrong = (v: unknown) => fail(`expected ${type}, got ${typeName(v)}`);
  if (type === 'object') {
    for (const key in s) if (!OBJECT_KEYWORDS.has(key)) return undefined;
    const checks: Check[] = [];
    objectChecks(s, checks, compile, true);
    const object = checks[0];
    if (!object) return (v) => (isPlainObject(v) ? undefined : wrong(v));
    return (v) => (isPlainObject(v) ? object(v) : wrong(v));
  }
  const test = TYPES[type];
  if (!test || type === 'array') return undefined;
  for (const key in s) if (!SCALAR_KEYWORDS.has(key)) return undefined;
  const checks: Check[] = [];
  valueChecks(s, checks);
  stringChecks(s, checks);
  numberChecks(s, checks);
  const rest = checks.length === 0 ? undefined : checks.length === 1 ? (checks[0] as Check) : all(checks);
  let check: Check;
  if (type === 'string')
    check = rest
      ? (v) => (typeof v === 'string' ? rest(v) : wrong(v))
      : (v) => (typeof v === 'string' ? undefined : wrong(v));
  else if (type === 'number')
    check = rest
      ? (v) => (typeof v === 'number' && Number.isFinite(v) ? rest(v) : wrong(v))
      : (v) => (typeof v === 'number' && Number.isFinite(v) ? undefined : wrong(v));
  else if (type === 'integer')
    check = rest
      ? (v) => (Number.isInteger(v) ? rest(v) : wrong(v))
      : (v) => (Number.isInteger(v) ? undefined : wrong(v));
  else check = rest ? (v) => (test(v) ? rest(v) : wrong(v)) : (v) => (test(v) ? undefined : wrong(v));
  if (has(s, 'const')) {
    // A primitive const that passes every check: a value identical to it passes them too.
    const c = s.const;
    if (isPrimitive(c) && check(c) === undefined) {
      const slow = check;
      return (v) => (v === c ? undefined : slow(v));
    }
  }
  return check;
}

const compiledDocuments = new WeakMap<object, Check>();

/**
 * Checks a value against a schema document (its `$ref`s point into its own `$defs`); the
 * document is compiled on first use. Returns the first issue found, or undefined when the value
 * is valid. Throws only on a schema it cannot read, or on a value nested deep enough to exhaust
 * the stack (callers catch both).
 */
export function checkJson(schema: JsonSchema, value: unknown): FrameIssue | undefined {
  let check: Check | undefined;
  if (typeof schema !== 'object') check = schema ? () => undefined : () => fail('not allowed');
  else {
    check = compiledDocuments.get(schema);
    if (!check) {
      check = compileDocument(schema);
      compiledDocuments.set(schema, check);
    }
  }
  const found = check(value);
  return found && { path: found.at.join('.'), message: found.message };
}
