import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CompanySectionSchema } from './company/company-config';
import { WhereSchema } from './where-filter';

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** A Firestore path whose only placeholder is `{uid}` (or `{job_id}` for the workflow document). */
const pathWith = (allowed: string) =>
  z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('/') && !p.endsWith('/') && !p.includes('//'), 'must be a relative path like a/b/c')
    .refine(
      (p) => [...p.matchAll(PLACEHOLDER)].every((m) => m[1] === allowed),
      `the only placeholder allowed is {${allowed}}`,
    );

const UserListenerSchema = z.strictObject({
  /** Name carried by every event of the listener (`listener` field). */
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, - or _'),
  /** Collection path (odd number of segments); `{uid}` is the user id. */
  collection: pathWith('uid').refine((p) => p.split('/').length % 2 === 1, 'must name a collection (odd segments)'),
  /** Filters `[field, operator, value]`; a string value `{uid}` (also in an array) is the user id. */
  where: WhereSchema.optional(),
});

const WorkflowSchema = z.strictObject({
  /** Document path (even number of segments) with `{job_id}`. */
  document: pathWith('job_id').refine(
    (p) => p.split('/').length % 2 === 0 && p.includes('{job_id}'),
    'must name a document (even segments) containing {job_id}',
  ),
  /** Field of the job document holding the owner's user id. */
  owner_field: z.string().min(1),
});

/** The JSON of LISTENERS_FILE. */
export const ListenersFileSchema = z.strictObject({
  user: z
    .array(UserListenerSchema)
    .default([])
    .refine((ls) => new Set(ls.map((l) => l.name)).size === ls.length, 'listener names must be unique'),
  workflow: WorkflowSchema.optional(),
  /** Listeners held once per company and fanned out to its following members (listeners/company/). */
  company: CompanySectionSchema.optional(),
});

/** The listeners a gateway attaches: per user, and the workflow document. */
export type ListenersConfig = z.infer<typeof ListenersFileSchema>;
/** One per-user listener of {@link ListenersConfig}. */
export type UserListenerConfig = ListenersConfig['user'][number];

/** LISTENERS_FILE is unreadable or invalid; the message names the file and each bad entry. */
export class ListenersConfigError extends Error {
  override readonly name = 'ListenersConfigError';
}

/** Checks a parsed LISTENERS_FILE; throws {@link ListenersConfigError} naming each bad entry (`user[1].collection`). */
export function parseListenersConfig(json: unknown, file = 'LISTENERS_FILE'): ListenersConfig {
  const parsed = ListenersFileSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const at = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      return `  ${at.replace(/^\./, '') || '(root)'}: ${i.message}`;
    });
    throw new ListenersConfigError(`invalid listeners file ${file}:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads and checks LISTENERS_FILE. */
export function loadListenersConfig(file: string): ListenersConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ListenersConfigError(`cannot read listeners file ${file}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ListenersConfigError(`listeners file ${file} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseListenersConfig(json, file);
}

/** Replaces `{name}` placeholders of a path. */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(PLACEHOLDER, (_, name: string) => values[name] ?? `{${name}}`);
}
