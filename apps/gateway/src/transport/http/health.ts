import type { HttpDeps, Routes } from './http-deps';
import { send } from './http-io';

/** A health answer: HTTP status and JSON body. */
export interface HealthAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** What the health endpoints read. */
export type HealthDeps = Pick<
  HttpDeps,
  | 'config'
  | 'listenerCounters'
  | 'stats'
  | 'redisStatus'
  | 'firestoreStatus'
  | 'firestoreRefused'
  | 'startedAt'
  | 'version'
  | 'isDraining'
  | 'taskHealth'
> & {
  /** Whether the main port accepts connections yet (the health port opens first). @default always */
  isListening?: () => boolean;
};

/**
 * The answers of `/healthz` and `/health/readiness`, shared by the main listener and
 * the health thread (HEALTH_PORT). Neither fails on a dependency blip by default: ECS
 * replaces tasks failing either check, every task at once. Readiness fails while starting
 * and draining, and while Redis is down only with READINESS_REQUIRES_REDIS.
 */
export function healthAnswers(deps: HealthDeps): { healthz(): HealthAnswer; readiness(): HealthAnswer } {
  return {
    healthz() {
      const c = deps.listenerCounters();
      const s = deps.stats();
      return {
        status: 200,
        body: {
          status: 'ok',
          version: deps.version,
          instance_id: deps.config.instanceId,
          listeners_count: c.attached,
          workflow_listeners_count: c.workflows,
          redis: deps.redisStatus(),
          // Told, not judged: readiness does not wait on Firestore (sessions and events go on without it).
          firestore: deps.firestoreStatus?.() ?? 'disabled',
          // Listeners failing on a query Firestore refuses (a missing index, the rules): not an outage,
          // so not `down` above; told apart, with listeners only.
          ...(deps.firestoreRefused ? { firestore_refused: deps.firestoreRefused() } : {}),
          uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
          connections: s.connections,
          sessions: s.sessions,
          draining: s.draining,
          ...(deps.taskHealth ? { tasks: deps.taskHealth() } : {}),
        },
      };
    },
    readiness() {
      const redis = deps.redisStatus();
      const draining = deps.isDraining();
      // Redis down is told, and judged only when asked (READINESS_REQUIRES_REDIS): ECS replaces a
      // task whose target group check fails, and a Redis outage fails every task's at once.
      const redisMissing = redis === 'down' && deps.config.readinessRequiresRedis;
      const ready = !draining && !redisMissing && (deps.isListening?.() ?? true);
      return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not_ready', draining, redis } };
    },
  };
}

/** `GET /healthz`, `GET /health/liveness` and `GET /health/readiness`: open, for load balancers and ECS. */
export function healthRoutes(deps: HealthDeps): Routes {
  const health = healthAnswers(deps);
  return {
    // Liveness never fails on a dependency blip: ECS would replace every task at once.
    'GET /healthz': (_req, res) => {
      const { status, body } = health.healthz();
      send(res, status, body);
    },
    'GET /health/liveness': (_req, res) => send(res, 200, { status: 'ok' }),
    'GET /health/readiness': (_req, res) => {
      const { status, body } = health.readiness();
      send(res, status, body);
    },
  };
}
