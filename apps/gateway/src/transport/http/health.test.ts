import { defaultConfig } from '../../config';
import type { ListenerCounters } from '../../listeners/listeners-manager';
import { type HealthDeps, healthAnswers } from './health';
import type { DependencyStatus, GatewayStats } from './http-deps';

function deps(firestore?: { status: DependencyStatus; refused: number }): HealthDeps {
  return {
    config: defaultConfig(),
    listenerCounters: () => ({ attached: 2, workflows: 0 }) as ListenerCounters,
    stats: () => ({ connections: 3, sessions: 3, draining: false }) as GatewayStats,
    redisStatus: () => 'ok',
    startedAt: Date.now(),
    version: '1.2.3',
    isDraining: () => false,
    ...(firestore ? { firestoreStatus: () => firestore.status, firestoreRefused: () => firestore.refused } : {}),
  };
}

describe('/healthz', () => {
  it("tells Firestore's state and, apart, the listeners failing on a query Firestore refuses", () => {
    const refused = healthAnswers(deps({ status: 'ok', refused: 2 })).healthz();
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ status: 'ok', firestore: 'ok', firestore_refused: 2 });
    const down = healthAnswers(deps({ status: 'down', refused: 0 })).healthz();
    expect([down.status, down.body.firestore, down.body.firestore_refused]).toEqual([200, 'down', 0]);
  });

  it('without listeners: Firestore disabled and no refused count', () => {
    const { body } = healthAnswers(deps()).healthz();
    expect(body.firestore).toBe('disabled');
    expect('firestore_refused' in body).toBe(false);
  });
});
