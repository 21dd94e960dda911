import { CompanyIdSchema } from '@livebus/protocol';
import { slotOf } from '@livebus/publisher/redis';
import type { Firestore } from 'firebase-admin/firestore';
import { toPrincipal } from '../../auth/principal';
import { ListenersConfigError, parseListenersConfig } from '../listeners-config';
import { MemoryCompanyFollowers } from './company-followers';
import { companyIdProblem, isCompanyId } from './company-id';
import { companyKeys } from './company-keys';
import { CompanyStats } from './company-stats';
import { Membership } from './membership';

const listeners = [{ name: 'jobs', collection: 'companies/{company_id}/jobs' }];

describe('the company section of LISTENERS_FILE', () => {
  it('applies defaults and accepts claim, document or both', () => {
    const parsed = parseListenersConfig({ company: { listeners, membership: { claim: 'company_ids' } } });
    expect(parsed.company).toMatchObject({ followers_poll_ms: 1_000, metrics_top: 10 });
    expect(() =>
      parseListenersConfig({
        company: { listeners, membership: { document: 'companies/{company_id}/members/{uid}' } },
      }),
    ).not.toThrow();
  });

  it.each([
    [{ listeners, membership: {} }, 'company.membership: must name a claim, a document or both'],
    [
      { listeners: [{ name: 'jobs', collection: 'companies/{uid}/jobs' }], membership: { claim: 'c' } },
      'company.listeners[0].collection: the only placeholders allowed are {company_id}',
    ],
    [
      { listeners: [{ name: 'jobs', collection: 'companies/{company_id}' }], membership: { claim: 'c' } },
      'company.listeners[0].collection: must name a collection (odd segments)',
    ],
    [
      { listeners, membership: { document: 'companies/{company_id}/members' } },
      'company.membership.document: must name a document (even segments) containing {company_id} and {uid}',
    ],
    [{ listeners: [], membership: { claim: 'c' } }, 'company.listeners: must list at least one listener'],
    [
      { listeners: [...listeners, ...listeners], membership: { claim: 'c' } },
      'company.listeners: listener names must be unique',
    ],
    [{ listeners, membership: { claim: 'c' }, polling: 1 }, 'company: Unrecognized key: "polling"'],
  ])('names the bad entry: %j', (company, message) => {
    expect(() => parseListenersConfig({ company })).toThrow(ListenersConfigError);
    expect(() => parseListenersConfig({ company })).toThrow(message);
  });
});

describe('company ids', () => {
  it('accepts one plain path segment and refuses anything that could leave it', () => {
    // The protocol's CompanyIdSchema (what update_user_registry accepts) agrees with the check here.
    const schemaAccepts = (id: unknown) => CompanyIdSchema.safeParse(id).success;
    for (const ok of ['acme', 'ACME-1', 'a.b_c', '__x', 'x'.repeat(128)]) {
      expect(isCompanyId(ok)).toBe(true);
      expect(schemaAccepts(ok)).toBe(true);
    }
    for (const bad of [
      '',
      '.',
      '..',
      '../acme',
      'a/b',
      '/acme',
      'acme/',
      '__id__',
      'a b',
      'a{b}',
      'x'.repeat(129),
      7,
    ]) {
      expect(companyIdProblem(bad)).toEqual(expect.any(String));
      expect(schemaAccepts(bad)).toBe(false);
    }
  });

  it('keeps a company key apart from every user key, in the company slot', () => {
    expect(companyKeys('acme')).toMatchObject({ stream: 'lb:co:{acme}:s', lease: 'lb:co:{acme}:l' });
    expect(slotOf('lb:co:{acme}:s')).toBe(slotOf('lb:{acme}:s'));
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('foo')).toBe(12182); // the Redis Cluster specification's example
  });
});

describe('membership', () => {
  const claimOnly = new Membership({ claim: 'company_ids' });
  const member = (claims: Record<string, unknown>) => toPrincipal('u1', false, undefined, claims);

  it('reads a claim holding an array of ids or an object of ids', async () => {
    expect(await claimOnly.check(member({ company_ids: ['acme'] }), 'acme')).toMatchObject({ member: true });
    expect(await claimOnly.check(member({ company_ids: { acme: true } }), 'acme')).toMatchObject({ member: true });
    expect(await claimOnly.check(member({ company_ids: { acme: false } }), 'acme')).toMatchObject({ member: false });
    expect(await claimOnly.check(member({ company_ids: 'acme' }), 'acme')).toMatchObject({ member: false });
    expect(await claimOnly.check(member({ company_ids: ['acme'] }), 'globex')).toMatchObject({
      member: false,
      reason: 'not_member',
      message: 'not a member of company globex (membership: token claim company_ids)',
    });
  });

  it('refuses without claims (AUTH_MODE=none) and an unsafe id before reading anything', async () => {
    expect(await claimOnly.check(toPrincipal('u1', false), 'acme')).toMatchObject({ reason: 'not_member' });
    expect(await claimOnly.check(member({ company_ids: ['../x'] }), '../x')).toMatchObject({
      reason: 'invalid_company_id',
    });
  });

  it("reads only the token's own claim, never one inherited from Object.prototype", async () => {
    // claims.__proto__ is Object.prototype, which has a truthy own toString: every token would name the company.
    for (const claim of ['__proto__', 'constructor']) {
      const inherited = new Membership({ claim });
      for (const company of ['toString', 'hasOwnProperty', 'valueOf', 'acme']) {
        expect([claim, company, await inherited.check(member({ sub: 'u1' }), company)]).toEqual([
          claim,
          company,
          expect.objectContaining({ member: false, reason: 'not_member' }),
        ]);
      }
    }
    // A claim the token has under such a name still counts (JSON.parse makes "__proto__" an own property).
    const own = JSON.parse('{"__proto__":["acme"],"constructor":{"acme":true}}') as Record<string, unknown>;
    expect(await new Membership({ claim: '__proto__' }).check(member(own), 'acme')).toMatchObject({ member: true });
    expect(await new Membership({ claim: 'constructor' }).check(member(own), 'acme')).toMatchObject({ member: true });
  });

  it('tells a user whose membership could not be read to try again, keeping what Firestore said for the log', async () => {
    const refusal = new Error('7 PERMISSION_DENIED: Missing or insufficient permissions on projects/acme-prod');
    const firestore = { doc: () => ({ get: () => Promise.reject(refusal) }) } as unknown as Firestore;
    const byDocument = new Membership({ document: 'companies/{company_id}/members/{uid}' }, firestore);
    expect(await byDocument.check(member({}), 'acme')).toEqual({
      member: false,
      reason: 'membership_error',
      message: 'membership of company acme could not be read; try again',
      cause: refusal,
    });
  });

  it('keeps the claims of a principal out of its enumerable fields', () => {
    const p = member({ company_ids: ['acme'], email: 'a@b.c' });
    expect(JSON.stringify(p)).not.toContain('acme');
    expect(p.claims).toEqual({ company_ids: ['acme'], email: 'a@b.c' });
  });
});

describe('MemoryCompanyFollowers', () => {
  it('lists each user once, whatever the number of instances, and forgets the initial state of those who left', async () => {
    let now = 0;
    const f = new MemoryCompanyFollowers(() => now);
    await f.add('acme', 'gw-1', ['u1', 'u2'], 1_000);
    await f.add('acme', 'gw-2', ['u1'], 5_000);
    await f.initialized('acme', ['u1', 'u2']);
    expect(await f.list('acme')).toEqual([
      { uid: 'u1', initialized: true },
      { uid: 'u2', initialized: true },
    ]);
    now = 2_000; // gw-1's entries expired: u1 still follows on gw-2
    expect(await f.list('acme')).toEqual([{ uid: 'u1', initialized: true }]);
    await f.add('acme', 'gw-1', ['u2'], 1_000);
    expect(await f.list('acme')).toContainEqual({ uid: 'u2', initialized: false });
    await f.remove('acme', 'gw-2', 'u1');
    expect((await f.list('acme')).map((x) => x.uid)).toEqual(['u2']);
  });
});

describe('CompanyStats', () => {
  it('counts reads saved against one listener per follower, and lists the top companies', () => {
    const stats = new CompanyStats(2);
    stats.followers('a', 50);
    stats.followers('b', 3);
    stats.followers('c', 10);
    stats.delivered('a', 50);
    stats.joined('a', 2, 7);
    stats.refused('not_member');
    expect(stats.snapshot(4)).toEqual({
      held: 3,
      following: 4,
      queries_open: 0,
      top_followers: [
        ['a', 50],
        ['c', 10],
      ],
      events: 1,
      deliveries: 50,
      fanout_calls: 0,
      reads_saved: 49 + 14,
      refused: { not_member: 1 },
    });
  });
});
