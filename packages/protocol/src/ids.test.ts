import { COMPANY_ID_PATTERN, CompanyIdSchema, companyIdProblem, FIRESTORE_RESERVED_ID_RULE } from './common';
import { methodTable } from './methods';

// Ids Firestore refuses as a document or path segment: `.`, `..`, and any `__x__` (not only `__name__`).
const reserved = ['.', '..', '__name__', '__x__', '____', '__a.b__'];
const watchParams = methodTable['WORKFLOW.watch'].params;

describe('company ids: one rule, in the protocol', () => {
  it('CompanyIdSchema, COMPANY_ID_PATTERN and companyIdProblem agree, and say why', () => {
    const valid = ['acme', 'a.b', '...', '__x', 'x__', '_a_', 'A-1_b.c', 'x'.repeat(128)];
    const invalid = [...reserved, '', 'a/b', 'a b', 'a@b', 'a:b', 'émile', 'x'.repeat(129)];
    for (const id of valid) {
      expect([id, CompanyIdSchema.safeParse(id).success, COMPANY_ID_PATTERN.test(id), companyIdProblem(id)]).toEqual([
        id,
        true,
        true,
        undefined,
      ]);
    }
    for (const id of invalid) {
      expect([id, CompanyIdSchema.safeParse(id).success, COMPANY_ID_PATTERN.test(id)]).toEqual([id, false, false]);
      expect(companyIdProblem(id)).toEqual(expect.any(String));
    }
    expect(companyIdProblem(42)).toBe('must be a string');
    expect(companyIdProblem('a/b')).toMatch(/no \//);
    expect(companyIdProblem('..')).toBe('must not be . or ..');
    expect(companyIdProblem('__x__')).toMatch(/start and end with __/);
  });

  it('says exactly which ids Firestore reserves: any __x__, not only __name__', () => {
    expect(FIRESTORE_RESERVED_ID_RULE).toContain('__x__');
    const refused = CompanyIdSchema.safeParse('__x__');
    expect(refused.success || refused.error.issues[0]?.message).toMatch(/__ at both ends/);
  });
});

describe('workflow job ids share the reserved-id rule', () => {
  it('WORKFLOW.watch refuses the ids Firestore refuses and a /, and takes other odd ids', () => {
    for (const id of [...reserved, 'a/b', '/']) expect([id, watchParams.safeParse([id]).success]).toEqual([id, false]);
    for (const id of ['a.b', '...', '__x', 'x:y z', 'émoji-🚀']) {
      expect([id, watchParams.safeParse([id]).success]).toEqual([id, true]);
    }
  });
});

describe('method descriptions', () => {
  it('name the gateway variables without their default figures (set on the gateway, they would drift)', () => {
    expect(methodTable['REGISTRY.register_user'].description).toContain('REGISTRY_MAX_SESSIONS_PER_USER');
    expect(methodTable['REGISTRY.register_user'].description).not.toMatch(/\b100\b|5 ×/);
    expect(methodTable['WORKFLOW.watch'].description).toContain('WORKFLOW_MAX_WATCHES_PER_USER');
    expect(methodTable['WORKFLOW.watch'].description).not.toMatch(/\b100\b/);
    for (const name of ['WORKFLOW.watch', 'UNIFIED_REGISTRY.update_user_registry'] as const) {
      expect(methodTable[name].description).not.toContain('__name__');
    }
  });
});
