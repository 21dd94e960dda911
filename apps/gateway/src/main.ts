// The gateway's CLI: the only place that reads the environment, listens and
// installs signal handlers.
import { runCommand } from './cli/commands';
import { exitOnStopWhileStarting } from './cli/stop-while-starting';
import { type ComposeTestHooks, composePorts } from './compose';
import { ConfigError, loadConfig } from './config';
import { watchEcsStop } from './ecs/ecs-stop-watch';
import { createGateway } from './gateway';
import { createLogger } from './logger';
import { RedisUnreachableError, startError, waitForRedisAtStart } from './redis/redis-start-wait';
import { exitIfPortInUse } from './transport/port-in-use';
import { VERSION } from './version';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`livebus-gateway: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const starting = exitOnStopWhileStarting('livebus-gateway');
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, instanceId: config.instanceId });
  // Before anything connects: a Redis that stays away stops the start with one clear line (exit 69).
  await waitForRedisAtStart(config, {
    onFirstFailure: (error) =>
      logger.warn('redis_status', { status: 'down', error, start_wait_ms: config.redisStartTimeoutMs }),
  });
  // Firestore listeners and BullMQ are imported only when configured: most of the start-up time otherwise.
  const gateway = createGateway(config, { ...(await composePorts(config, logger, testHooks())), version: VERSION });

  // Redis lost between the wait and here fails listen() with ioredis' words: say it as the wait would.
  let listened: Promise<unknown> | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Hard stop a little after the grace period, whatever is still pending.
    setTimeout(() => process.exit(1), config.shutdownGraceMs + 1_000).unref();
    // A stop while listen() runs waits for it: a gateway shut down half started would start its
    // timers and listeners after the shutdown stopped them.
    Promise.resolve(listened)
      .then(() => gateway.shutdown(signal))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  starting();
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  listened = gateway.listen().catch((error: unknown) => exitIfPortInUse('livebus-gateway')(startError(error, config)));
  await listened;
  // On ECS, drain as soon as the task is told to stop, before the ALB cuts its sockets (docs/runbook.md).
  watchEcsStop({
    metadataUri: process.env.ECS_CONTAINER_METADATA_URI_V4,
    logger,
    onStop: () => stop('ECS_TASK_STOPPING'),
  });
}

/**
 * TEST ONLY, never set in production: LIVEBUS_TEST_HOLD_BEFORE_MARK=<document path> holds
 * the process between publishing that document's change and storing its mark, and prints
 * one JSON line `{"livebus_test":"holding_before_mark",...}` on stdout so a test can SIGKILL
 * it there (apps/gateway/test/listeners-resume.int.test.ts; docs/configuration.md).
 */
function testHooks(): ComposeTestHooks {
  const path = process.env.LIVEBUS_TEST_HOLD_BEFORE_MARK;
  if (!path) return {};
  return {
    holdBeforeMark: {
      path,
      onHold: (held) => process.stdout.write(`${JSON.stringify({ livebus_test: 'holding_before_mark', ...held })}\n`),
    },
  };
}

// --help, --version and check print and exit; no arguments serve.
runCommand(process.argv.slice(2))
  .then((outcome) => {
    if (outcome.kind === 'exit') process.exit(outcome.code);
    // `livebus-gateway worker`: the task worker process (tasks/worker-cli.ts, docs/tasks.md).
    if (outcome.kind === 'worker')
      return import('./tasks/worker/worker-cli').then(({ runWorkerCli }) => runWorkerCli());
    if (outcome.kind === 'other') {
      process.stderr.write(`livebus-gateway: unknown command ${outcome.command} (see livebus-gateway --help)\n`);
      process.exit(64); // EX_USAGE
    }
    return main();
  })
  .catch((error: unknown) => {
    if (error instanceof RedisUnreachableError) {
      process.stderr.write(`livebus-gateway: ${error.message}\n`);
      process.exit(69); // EX_UNAVAILABLE
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`livebus-gateway: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    process.stderr.write(
      `livebus-gateway: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
