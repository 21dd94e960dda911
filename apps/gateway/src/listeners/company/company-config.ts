import { z } from 'zod';
import { WhereSchema } from '../where-filter';

// No import of ../listeners-config here: it imports this file (the `company` section of LISTENERS_FILE).

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** A relative Firestore path whose placeholders are all among `allowed`. */
const pathWith = (allowed: readonly string[]) =>
  z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('/') && !p.endsWith('/') && !p.includes('//'), 'must be a relative path like a/b/c')
    .refine(
      (p) => [...p.matchAll(PLACEHOLDER)].every((m) => allowed.includes(m[1] as string)),
      `the only placeholders allowed are ${allowed.map((a) => `{${a}}`).join(', ')}`,
    );

const CompanyListenerSchema = z.strictObject({
  /** Name carried by every event of the listener (`listener` field); events have `source: "company"`. */
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, - or _'),
  /** Collection path (odd number of segments); `{company_id}` is the company id. */
  collection: pathWith(['company_id']).refine(
    (p) => p.split('/').length % 2 === 1,
    'must name a collection (odd segments)',
  ),
  /** Filters `[field, operator, value]`; a string value `{company_id}` (also in an array) is the company id. */
  where: WhereSchema.optional(),
});

const MembershipSchema = z
  .strictObject({
    /**
     * A claim of the verified token listing the user's companies: an array of ids
     * (`["acme", "globex"]`) or an object whose keys are ids with a truthy value.
     */
    claim: z.string().min(1).optional(),
    /** A document that exists for each member: `companies/{company_id}/members/{uid}` (even segments). */
    document: pathWith(['company_id', 'uid'])
      .refine(
        (p) => p.split('/').length % 2 === 0 && p.includes('{company_id}') && p.includes('{uid}'),
        'must name a document (even segments) containing {company_id} and {uid}',
      )
      .optional(),
  })
  .refine((m) => m.claim !== undefined || m.document !== undefined, 'must name a claim, a document or both');

/** The `company` section of LISTENERS_FILE. */
export const CompanySectionSchema = z.strictObject({
  listeners: z
    .array(CompanyListenerSchema)
    .min(1, 'must list at least one listener')
    .refine((ls) => new Set(ls.map((l) => l.name)).size === ls.length, 'listener names must be unique'),
  /** How membership is decided; a user is a member when any source named says so. */
  membership: MembershipSchema,
  /** How often the holder of a company's listeners reads its followers (joins, departures). @default 1000 */
  followers_poll_ms: z.number().int().min(50).max(60_000).default(1_000),
  /** Companies listed by followers on /metrics and the dashboard (the largest). @default 10 */
  metrics_top: z.number().int().min(0).max(1_000).default(10),
});

/** The `company` section of LISTENERS_FILE, defaults applied. */
export type CompanyConfig = z.infer<typeof CompanySectionSchema>;
/** One company listener. */
export type CompanyListenerConfig = CompanyConfig['listeners'][number];
