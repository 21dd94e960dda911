import { z } from 'zod';

/** The operators of Firestore's `where`. */
export const OPERATORS = [
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'array-contains',
  'in',
  'not-in',
  'array-contains-any',
] as const;

/** Most values Firestore takes in one `in` / `array-contains-any` filter, and in one `not-in`. */
const MOST_VALUES: Partial<Record<(typeof OPERATORS)[number], number>> = {
  in: 30,
  'array-contains-any': 30,
  'not-in': 10,
};

/** A field path as a string: dot-separated names, none empty, without `~ * / [ ]` (Firestore's rule). */
const FIELD_PATH = /^[^.~*/[\]]+(\.[^.~*/[\]]+)*$/;

/**
 * Why Firestore would refuse the filter `[field, op, value]`, or undefined. Checked when
 * LISTENERS_FILE is read: a filter Firestore refuses fails every user's listener at attach,
 * retried for ever, where the start-up check names it once.
 */
function whereProblem(field: string, op: (typeof OPERATORS)[number], value: unknown): string | undefined {
  if (!FIELD_PATH.test(field)) {
    return `field ${JSON.stringify(field)} is not a field path (names joined by dots, none empty, without ~ * / [ ])`;
  }
  const most = MOST_VALUES[op];
  if (most !== undefined) {
    if (!Array.isArray(value) || value.length === 0 || value.length > most) {
      return `"${op}" takes an array of 1 to ${most} values`;
    }
  } else if (value === null && op !== '==' && op !== '!=') {
    return `null is only compared with "==" or "!="`;
  }
  if (value === undefined) return 'a filter needs a value';
  return undefined;
}

/** Filters `[field, operator, value]` of a listener, each one checked as Firestore would. */
export const WhereSchema = z
  .array(z.tuple([z.string().min(1), z.enum(OPERATORS), z.unknown()]))
  .superRefine((filters, ctx) => {
    filters.forEach(([field, op, value], i) => {
      const problem = whereProblem(field, op, value);
      if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
    });
  });

/** A filter's value with the placeholder string (`{uid}`) replaced, also inside an array (`in`). */
export function fillValue(value: unknown, placeholder: string, id: string): unknown {
  if (value === placeholder) return id;
  return Array.isArray(value) ? value.map((v) => (v === placeholder ? id : v)) : value;
}
