import type { RedisClient } from '@livebus/publisher/redis';
import type { Firestore } from 'firebase-admin/firestore';
import type { GatewayConfig } from '../../config';
import type { EventBus } from '../../fleet/bus/event-bus';
import type { Lease } from '../../fleet/lease/lease';
import { MemoryLease } from '../../fleet/lease/memory-lease';
import { RedisLease } from '../../fleet/lease/redis-lease';
import type { Logger } from '../../logger';
import type { ListenerStats } from '../listener-stats';
import { MemoryWatermarkStore } from '../memory-watermark-store';
import { RedisWatermarkStore } from '../redis-watermark-store';
import type { WatermarkStore } from '../watermark-store';
import type { CompanyConfig } from './company-config';
import { type CompanyFanOut, MemoryCompanyFanOut, RedisCompanyFanOut } from './company-fanout';
import { type CompanyFollowers, MemoryCompanyFollowers, RedisCompanyFollowers } from './company-followers';
import { companyPrefixes } from './company-keys';
import { CompanyListenerSource } from './company-source';
import { CompanyStats } from './company-stats';
import { Membership } from './membership';

/** The company listeners' adapters (LISTENERS_FILE `company`), built with the Firestore client. */
export interface CompanyPorts {
  config: CompanyConfig;
  source: CompanyListenerSource;
  /** Company leases: the fleet's lease, on company keys (`lb:co:{company}:l`). */
  lease: Lease;
  followers: CompanyFollowers;
  fanOut: CompanyFanOut;
  membership: Membership;
  stats: CompanyStats;
}

/** Builds the company listeners on Redis when the gateway has one, in memory otherwise. */
export function buildCompanyPorts(
  config: GatewayConfig,
  company: CompanyConfig,
  deps: {
    firestore: Firestore;
    redis?: RedisClient;
    bus?: EventBus;
    logger: Logger;
    listenerStats: ListenerStats;
    /** The test hook of main.ts (LIVEBUS_TEST_HOLD_BEFORE_MARK), as for the user marks. */
    wrapMarks?: (store: WatermarkStore) => WatermarkStore;
  },
): CompanyPorts {
  const { firestore, redis, logger } = deps;
  const lease: Lease = redis ? new RedisLease(redis, { prefixes: companyPrefixes }) : new MemoryLease();
  const stored = redis
    ? new RedisWatermarkStore(redis, { prefixes: companyPrefixes })
    : new MemoryWatermarkStore(lease);
  const marks = deps.wrapMarks ? deps.wrapMarks(stored) : stored;
  const followers = redis ? new RedisCompanyFollowers(redis) : new MemoryCompanyFollowers();
  if (!redis && !deps.bus) throw new TypeError('company listeners need the event bus (or Redis)');
  const fanOut: CompanyFanOut = redis
    ? new RedisCompanyFanOut(redis, {
        retentionEvents: config.streamRetentionEvents,
        retentionMs: config.streamRetentionMs,
        retentionBytes: config.streamRetentionBytes,
      })
    : new MemoryCompanyFanOut(deps.bus as EventBus);
  const stats = new CompanyStats(company.metrics_top);
  const source = new CompanyListenerSource({
    firestore,
    config: company,
    marks,
    fanOut,
    followers,
    stats,
    listenerStats: deps.listenerStats,
    logger,
    retryMaxMs: config.listenerRetryMaxMs,
    stallMs: config.listenerStallMs,
    trackedDocsMax: config.listenerTrackedDocsMax,
  });
  return {
    config: company,
    source,
    lease,
    followers,
    fanOut,
    membership: new Membership(company.membership, firestore),
    stats,
  };
}
