import type { RedisClient } from '@livebus/publisher/redis';
import { type App, deleteApp, initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import type { GatewayConfig } from '../../config';
import type { EventBus } from '../../fleet/bus/event-bus';
import type { Lease } from '../../fleet/lease/lease';
import { MemoryLease } from '../../fleet/lease/memory-lease';
import { RedisLease } from '../../fleet/lease/redis-lease';
import type { Logger } from '../../logger';
import type { SnapshotDelay } from '../../metrics/delivery-latency';
import { buildCompanyPorts, type CompanyPorts } from '../company/build-company';
import { FIRESTORE_WARM_UP_DOC } from '../firestore-warm-up';
import type { ListenerSource, ListenerSourceStats, WorkflowSource } from '../listener-source';
import { ListenerStats } from '../listener-stats';
import { MemoryWatermarkStore } from '../memory-watermark-store';
import { RedisWatermarkStore } from '../redis-watermark-store';
import { RedisWorkflowWatchStore } from '../redis-workflow-watch-store';
import type { WatermarkStore } from '../watermark-store';
import { MemoryWorkflowWatchStore, type WorkflowWatchStore } from '../workflow-watch-store';
import { FirestoreListenerSource } from './firestore-listener-source';
import { FirestoreWorkflowSource } from './firestore-workflow-source';
import { stopQueriesOn } from './watched-query';

/** What {@link buildListeners} adds to the gateway's deps. */
export interface BuiltListeners {
  sources: ListenerSource[];
  /**
   * Counters of every listener of the process: the user, workflow and company listeners
   * share them, so a file without `user` listeners still reports its failures and reads.
   * `open`: the user and workflow listeners open now.
   */
  stats(): ListenerSourceStats;
  lease: Lease;
  workflowSource?: WorkflowSource;
  /** The fleet's set of watched jobs per user (Redis when the gateway has one). */
  workflowWatches: WorkflowWatchStore;
  /** The company listeners (LISTENERS_FILE `company`); unset without that section. */
  company?: CompanyPorts;
  /** One read of a document that need not exist: opens the Firestore client's channel (see firestore-warm-up.ts). */
  warmUp(): Promise<unknown>;
  /** Deletes the Firebase app it made (closing the Firestore client). */
  close(): Promise<void>;
}

/**
 * The Firestore listeners of LISTENERS_FILE: one Firestore client for the process
 * (on `firebaseApp` when the authenticator already made one), leases, resume marks
 * and workflow watches in Redis when the gateway has one, in memory otherwise. Undefined when
 * no LISTENERS_FILE is configured.
 */
export function buildListeners(
  config: GatewayConfig,
  logger: Logger,
  ports: {
    redis?: RedisClient;
    firebaseApp?: App;
    wrapMarks?: (store: WatermarkStore) => WatermarkStore;
    /** The event bus (the company fan-out without Redis goes through it). */
    bus?: EventBus;
    /** Where the listeners' snapshot delays go (/metrics). */
    snapshotDelay?: SnapshotDelay;
  } = {},
): BuiltListeners | undefined {
  const file = config.listeners;
  if (!file) return undefined;
  let app = ports.firebaseApp;
  let ownApp: App | undefined;
  if (!app) {
    ownApp = initializeApp(
      config.firestoreProjectId ? { projectId: config.firestoreProjectId } : {},
      `livebus-listeners-${config.instanceId}`,
    );
    app = ownApp;
  }
  const firestore = getFirestore(app);
  const lease: Lease = ports.redis ? new RedisLease(ports.redis) : new MemoryLease();
  const stored = ports.redis ? new RedisWatermarkStore(ports.redis) : new MemoryWatermarkStore(lease);
  // Only the test hook of main.ts wraps it (LIVEBUS_TEST_HOLD_BEFORE_MARK, listeners/hold-before-mark.ts).
  const marks = ports.wrapMarks ? ports.wrapMarks(stored) : stored;
  const stats = new ListenerStats(config.metricsMaxUsers, Date.now, ports.snapshotDelay);
  const tuning = {
    retryMaxMs: config.listenerRetryMaxMs,
    stallMs: config.listenerStallMs,
    trackedDocsMax: config.listenerTrackedDocsMax,
  };
  const userSource =
    file.user.length > 0
      ? new FirestoreListenerSource({ firestore, listeners: file.user, marks, logger, stats, ...tuning })
      : undefined;
  const sources: ListenerSource[] = userSource ? [userSource] : [];
  const workflowSource = file.workflow
    ? new FirestoreWorkflowSource({ firestore, workflow: file.workflow, marks, logger, stats, ...tuning })
    : undefined;
  const company = file.company
    ? buildCompanyPorts(config, file.company, {
        firestore,
        logger,
        listenerStats: stats,
        ...(ports.redis ? { redis: ports.redis } : {}),
        ...(ports.bus ? { bus: ports.bus } : {}),
        ...(ports.wrapMarks ? { wrapMarks: ports.wrapMarks } : {}),
      })
    : undefined;
  return {
    sources,
    // The user and workflow listeners open now (the company listeners have a gauge of their own).
    stats: () => stats.snapshot((userSource?.queriesOpen() ?? 0) + (workflowSource?.queriesOpen() ?? 0)),
    lease,
    ...(company ? { company } : {}),
    workflowWatches: ports.redis ? new RedisWorkflowWatchStore(ports.redis) : new MemoryWorkflowWatchStore(),
    ...(workflowSource ? { workflowSource } : {}),
    warmUp: () => firestore.doc(FIRESTORE_WARM_UP_DOC).get(),
    close: async () => {
      // Shutdown detached every user before this; a listener still open here is one whose
      // attach raced the shutdown. Firestore terminates only without listeners, and
      // deleteApp does not terminate it: without this, its streams would outlive the gateway.
      const left = await stopQueriesOn(firestore);
      const terminated = await firestore.terminate().then(
        () => undefined,
        (error: unknown) => String(error),
      );
      if (left > 0 || terminated) {
        logger.warn('firestore_closed', { listeners_left_open: left, ...(terminated ? { error: terminated } : {}) });
      }
      if (ownApp) await deleteApp(ownApp);
    },
  };
}
