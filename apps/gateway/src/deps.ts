import type { GatewayConfig } from './config';
import type { GatewayDeps } from './gateway';
import { buildListeners } from './listeners/firestore/build-listeners';
import { assembleDeps } from './load-deps';
import type { Logger } from './logger';
import { buildRedisTaskQueue } from './tasks/build-task-queue';

/**
 * The ports and collaborators the configuration asks for, built synchronously with
 * every optional part at hand (see {@link assembleDeps}). The CLI uses `loadDeps`
 * instead, which imports the heavy parts (Firestore listeners, BullMQ) only when
 * configured; this one is for code and tests that build a gateway themselves.
 */
export function buildDeps(config: GatewayConfig, logger: Logger): GatewayDeps {
  return assembleDeps(config, logger, { buildListeners, buildRedisTaskQueue });
}
