import type { Firestore } from 'firebase-admin/firestore';
import type { ListenersConfig } from '../src/listeners/listeners-config';
import { parseListenersConfig } from '../src/listeners/listeners-config';
import type { TestClient } from './helpers';
import { changesOf } from './listeners-helpers';

/** The company listeners of the tests: each company's jobs, members by document or by the `company_ids` claim. */
export const companyListeners: ListenersConfig = parseListenersConfig({
  company: {
    listeners: [{ name: 'jobs', collection: 'companies/{company_id}/jobs' }],
    membership: { claim: 'company_ids', document: 'companies/{company_id}/members/{uid}' },
    followers_poll_ms: 200,
  },
});

/** The company events a client received (source `company`), optionally for one path. */
export function companyChanges(client: TestClient, path?: string) {
  return changesOf(client, path).filter((e) => (e.data as { source: string }).source === 'company');
}

/** Makes each user a member of the company (its membership document). */
export async function addMembers(db: Firestore, company: string, uids: readonly string[]): Promise<void> {
  const batch = db.batch();
  for (const uid of uids) batch.set(db.doc(`companies/${company}/members/${uid}`), { role: 'member' });
  await batch.commit();
}

/** Points the user's registry at a company (RPC from their own session); the answer frame. */
export function follow(client: TestClient, uid: string, company: string | null) {
  return client.call('UNIFIED_REGISTRY.update_user_registry', [uid, { companies: { current_company_id: company } }]);
}
