import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outboxDefaults, retentionDefaults } from '@livebus/publisher';
import { ConfigError, defaultConfig, EnvSchema, loadConfig } from './config';
import { memoryEventBusDefaults } from './fleet/bus/memory-event-bus';
import { DEFAULT_INSTANCE_TTL_MS } from './fleet/presence/presence';
import { listenerDefaults } from './listeners/listener-defaults';
import { documentAnalysisDefaults } from './tasks/analysis/document-analysis';
import { taskDefaults } from './tasks/task-defaults';
import { taskWorkDefaults } from './tasks/task-queue-options';
import { isOriginAllowed } from './transport/origin-policy';

describe('loadConfig', () => {
  it('has the documented defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      detachDelayMs: 5_000,
      pingIntervalMs: 20_000,
      pingTimeoutMs: 60_000,
      redisUrl: undefined,
      authMode: 'none',
      unifiedRegistryEnabled: false,
      registryDebug: false,
      logFormat: 'json',
      // Under ECS's default 30 s stopTimeout, with room for the deregistration (runbook.md).
      shutdownGraceMs: 10_000,
    });
  });

  it('parses values and treats empty strings as unset', () => {
    const c = loadConfig({
      PORT: '9000',
      UNIFIED_REGISTRY_ENABLED: 'true',
      REDIS_URL: 'redis://cache:6379',
      JWT_SECRET: '',
    });
    expect(c).toMatchObject({
      port: 9000,
      unifiedRegistryEnabled: true,
      redisUrl: 'redis://cache:6379',
      jwtSecret: undefined,
    });
  });

  it('refuses a PUBLISH_RETRY_DELAYS_MS delay longer than a Node timer keeps (it would fire at once)', () => {
    expect(loadConfig({ PUBLISH_RETRY_DELAYS_MS: '1000, 2147483647' }).publishRetryDelaysMs).toEqual([
      1000, 2147483647,
    ]);
    expect(() => loadConfig({ PUBLISH_RETRY_DELAYS_MS: '1000,2147483648' })).toThrow(
      /PUBLISH_RETRY_DELAYS_MS.*each delay must be at most 2147483647 ms/,
    );
  });

  it('switches tasks with TASKS_ENABLED, which follows UNIFIED_REGISTRY_ENABLED when unset (as before it existed)', () => {
    const pick = (env: Record<string, string>) => {
      const c = loadConfig(env);
      return [c.unifiedRegistryEnabled, c.tasksEnabled];
    };
    expect(pick({})).toEqual([false, false]);
    expect(pick({ UNIFIED_REGISTRY_ENABLED: 'true' })).toEqual([true, true]);
    expect(pick({ UNIFIED_REGISTRY_ENABLED: 'true', TASKS_ENABLED: 'false' })).toEqual([true, false]);
    expect(pick({ UNIFIED_REGISTRY_ENABLED: 'false', TASKS_ENABLED: 'true' })).toEqual([false, true]);
    expect(pick({ TASKS_ENABLED: 'true' })).toEqual([false, true]);
    expect(pick({ UNIFIED_REGISTRY_ENABLED: 'true', TASKS_ENABLED: '' })).toEqual([true, true]);
    expect(() => loadConfig({ TASKS_ENABLED: 'maybe' })).toThrow(/TASKS_ENABLED/);
    // Programmatic configs couple the same way.
    expect(defaultConfig({ unifiedRegistryEnabled: true }).tasksEnabled).toBe(true);
    expect(defaultConfig({ unifiedRegistryEnabled: true, tasksEnabled: false }).tasksEnabled).toBe(false);
  });

  it('names every bad variable and what it allows', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_FORMAT: 'xml', REDIS_URL: 'http://nope' })).toThrow(ConfigError);
    try {
      loadConfig({ PORT: 'x', LOG_FORMAT: 'xml', REDIS_URL: 'http://nope' });
    } catch (e) {
      const message = (e as Error).message;
      expect(message).toContain('PORT');
      expect(message).toContain('LOG_FORMAT');
      expect(message).toMatch(/json|pretty/);
      expect(message).toContain('REDIS_URL');
    }
  });

  it('reads one clock tolerance for tokens, 5 s by default, and refuses one beyond 5 min', () => {
    expect(loadConfig({}).tokenClockToleranceMs).toBe(5_000);
    expect(loadConfig({ TOKEN_CLOCK_TOLERANCE_MS: '0' }).tokenClockToleranceMs).toBe(0);
    expect(loadConfig({ TOKEN_CLOCK_TOLERANCE_MS: '30000' }).tokenClockToleranceMs).toBe(30_000);
    for (const bad of ['-1', '300001', '2.5', 'five']) {
      expect(() => loadConfig({ TOKEN_CLOCK_TOLERANCE_MS: bad })).toThrow(/TOKEN_CLOCK_TOLERANCE_MS/);
    }
  });

  it('reads TASK_MAX_OPEN_PER_USER (0: off, at most 1000: each create scans the set) and TASK_MAX_QUEUED (0: off)', () => {
    expect(loadConfig({})).toMatchObject({ taskMaxOpenPerUser: 10, taskMaxQueued: 1_000 });
    expect(loadConfig({ TASK_MAX_OPEN_PER_USER: '0', TASK_MAX_QUEUED: '0' })).toMatchObject({
      taskMaxOpenPerUser: 0,
      taskMaxQueued: 0,
    });
    expect(loadConfig({ TASK_MAX_OPEN_PER_USER: '1000' }).taskMaxOpenPerUser).toBe(1_000);
    for (const bad of ['-1', '1001', '2.5', 'ten']) {
      expect(() => loadConfig({ TASK_MAX_OPEN_PER_USER: bad })).toThrow(/TASK_MAX_OPEN_PER_USER/);
    }
    for (const bad of ['-1', '2.5', 'many']) {
      expect(() => loadConfig({ TASK_MAX_QUEUED: bad })).toThrow(/TASK_MAX_QUEUED/);
    }
  });

  it('reads WORKFLOW_MAX_WATCHES_PER_USER (0: off, like the other per-user caps)', () => {
    expect(loadConfig({}).workflowMaxWatchesPerUser).toBe(100);
    expect(loadConfig({ WORKFLOW_MAX_WATCHES_PER_USER: '0' }).workflowMaxWatchesPerUser).toBe(0);
    expect(loadConfig({ WORKFLOW_MAX_WATCHES_PER_USER: '5' }).workflowMaxWatchesPerUser).toBe(5);
    for (const bad of ['-1', '2.5', 'lots']) {
      expect(() => loadConfig({ WORKFLOW_MAX_WATCHES_PER_USER: bad })).toThrow(/WORKFLOW_MAX_WATCHES_PER_USER/);
    }
  });

  it('bounds the registered sessions per user at 5 x MAX_SESSIONS_PER_USER unless told, never below it', () => {
    expect(loadConfig({}).registryMaxSessionsPerUser).toBe(100);
    expect(loadConfig({ MAX_SESSIONS_PER_USER: '3' }).registryMaxSessionsPerUser).toBe(15);
    expect(defaultConfig({ maxSessionsPerUser: 3 }).registryMaxSessionsPerUser).toBe(15);
    expect(loadConfig({ REGISTRY_MAX_SESSIONS_PER_USER: '20' }).registryMaxSessionsPerUser).toBe(20);
    expect(() => loadConfig({ REGISTRY_MAX_SESSIONS_PER_USER: '19' })).toThrow(
      /REGISTRY_MAX_SESSIONS_PER_USER: must be at least MAX_SESSIONS_PER_USER \(20\)/,
    );
  });

  it('refuses contradictions and unsafe production settings', () => {
    expect(() => loadConfig({ AUTH_MODE: 'jwt' })).toThrow(/JWT_SECRET \/ JWT_JWKS_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'none', ADMIN_TOKEN: 'x'.repeat(20) })).toThrow(
      /AUTH_MODE/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'firebase' })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ PING_INTERVAL_MS: '5000', PING_TIMEOUT_MS: '4000' })).toThrow(/PING_TIMEOUT_MS/);
    expect(() => loadConfig({ PORT: '8080', HEALTH_PORT: '8080' })).toThrow(/HEALTH_PORT: must differ from PORT/);
    expect(loadConfig({ PORT: '0', HEALTH_PORT: '0' }).healthPort).toBe(0);
  });

  it('reads NODE_ENV case-insensitively, so Production keeps the production refusals; keeps any other value as nodeEnv', () => {
    for (const nodeEnv of ['Production', ' PRODUCTION ', 'production\n']) {
      expect(() => loadConfig({ NODE_ENV: nodeEnv, AUTH_MODE: 'none', ADMIN_TOKEN: 'x'.repeat(20) })).toThrow(
        /AUTH_MODE/,
      );
      expect(() => loadConfig({ NODE_ENV: nodeEnv, AUTH_MODE: 'jwt', JWT_SECRET: 's'.repeat(32) })).toThrow(
        /ADMIN_TOKEN: required/,
      );
    }
    // Neither production, development nor test: allowed (staging is common), without the
    // production safeguards; the gateway warns of it at start (gateway_config_warning).
    expect(loadConfig({ NODE_ENV: 'Staging' })).toMatchObject({ production: false, nodeEnv: 'staging' });
    expect(loadConfig({})).toMatchObject({ production: false, nodeEnv: 'development' });
  });

  it('trims ADMIN_TOKEN (the newline of a secret file would fail every bearer, which is trimmed), checking its length after', () => {
    const token = 'admin-token-0123456789';
    expect(loadConfig({ ADMIN_TOKEN: `${token}\n` }).adminToken).toBe(token);
    expect(loadConfig({ ADMIN_TOKEN: ` ${token}\r\n` }).adminToken).toBe(token);
    expect(() => loadConfig({ ADMIN_TOKEN: `${'x'.repeat(15)}\n\n` })).toThrow(/ADMIN_TOKEN: must be at least 16/);
    // Not JWT_SECRET: the token's signer may use the same raw secret, blanks and all.
    const secret = `${'s'.repeat(32)}\n`;
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret }).jwtSecret).toBe(secret);
  });

  it('for the task worker, checks no token settings (it checks no tokens), and still requires ADMIN_TOKEN in production', () => {
    const worker = { role: 'worker' } as const;
    const production = { NODE_ENV: 'production', ADMIN_TOKEN: 'x'.repeat(20) };
    // The gateway refuses each of these; the worker reads none of them.
    for (const env of [
      production,
      { ...production, AUTH_MODE: 'jwt' },
      { ...production, AUTH_MODE: 'firebase' },
      { ...production, AUTH_MODE: 'jwt', JWT_JWKS_URL: 'http://idp.example.com/jwks.json' },
    ]) {
      expect(() => loadConfig(env)).toThrow(/invalid configuration/);
      expect(loadConfig(env, worker).production).toBe(true);
    }
    expect(() => loadConfig({ NODE_ENV: 'production' }, worker)).toThrow(
      'invalid configuration:\n  ADMIN_TOKEN: required when NODE_ENV=production',
    );
  });

  it('reads a blank value as unset (not as 0), and refuses an ALLOWED_ORIGINS that lists no origin', () => {
    expect(loadConfig({ PORT: ' ', RATE_LIMIT_FRAMES_PER_S: '  ' })).toMatchObject({ port: 8080 });
    expect(loadConfig({ RATE_LIMIT_FRAMES_PER_S: ' ' }).rateLimitFramesPerS).toBe(loadConfig({}).rateLimitFramesPerS);
    expect(() => loadConfig({ ALLOWED_ORIGINS: ',' })).toThrow(/ALLOWED_ORIGINS: lists no origin/);
  });

  it('reads ALLOWED_ORIGINS as the browser sends an Origin: a default port is dropped, so that origin is allowed', () => {
    const origins = loadConfig({
      ALLOWED_ORIGINS: 'https://app.example.com:443, http://local.example.com:80,https://*.example.org:443',
    }).allowedOrigins;
    expect(origins).toEqual(['https://app.example.com', 'http://local.example.com', 'https://*.example.org']);
    for (const origin of ['https://app.example.com', 'http://local.example.com', 'https://a.example.org']) {
      expect({ origin, allowed: isOriginAllowed(origin, origins) }).toEqual({ origin, allowed: true });
    }
    expect(() => loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com:99999' })).toThrow(/ALLOWED_ORIGINS: "https/);
    // A port that is not the scheme's default stays part of the origin.
    const other = loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com:8443' }).allowedOrigins;
    expect([
      isOriginAllowed('https://app.example.com:8443', other),
      isOriginAllowed('https://app.example.com', other),
    ]).toEqual([true, false]);
  });

  it('refuses a millisecond setting past the longest timer Node has, and says what URLs it takes', () => {
    expect(() => loadConfig({ REDIS_START_TIMEOUT_MS: '3000000000' })).toThrow(
      /REDIS_START_TIMEOUT_MS: must be at most 2147483647 ms/,
    );
    expect(loadConfig({ REDIS_START_TIMEOUT_MS: '2147483647' }).redisStartTimeoutMs).toBe(2_147_483_647);
    expect(() => loadConfig({ REDIS_URL: 'http://10.0.0.5:6379' })).toThrow(
      /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/,
    );
    expect(() => loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'ftp://x' })).toThrow(
      /JWT_JWKS_URL: must be an http:\/\/ or https:\/\/ URL/,
    );
  });
});

describe('loadConfig, AUTH_MODE=jwt', () => {
  const secret = 's'.repeat(32);
  const jwks = 'https://idp.example.com/.well-known/jwks.json';

  it('takes a secret, a JWKS URL, or both, with optional issuer and audience', () => {
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret })).toMatchObject({
      jwtSecret: secret,
      jwtJwksUrl: undefined,
      jwtIssuer: undefined,
      jwtAudience: undefined,
    });
    expect(
      loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: jwks, JWT_ISSUER: 'https://idp', JWT_AUDIENCE: 'app' }),
    ).toMatchObject({
      jwtSecret: undefined,
      jwtJwksUrl: jwks,
      jwtIssuer: 'https://idp',
      jwtAudience: 'app',
    });
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret, JWT_JWKS_URL: 'http://127.0.0.1:9/jwks' })).toMatchObject(
      {
        jwtSecret: secret,
        jwtJwksUrl: 'http://127.0.0.1:9/jwks',
      },
    );
  });

  it('requires exp on tokens in production by default (JWT_REQUIRE_EXP), and takes the variable either way', () => {
    const prod = { NODE_ENV: 'production', AUTH_MODE: 'jwt', JWT_SECRET: secret, ADMIN_TOKEN: 'a'.repeat(20) };
    expect(loadConfig(prod).jwtRequireExp).toBe(true);
    expect(loadConfig({ ...prod, JWT_REQUIRE_EXP: 'false' }).jwtRequireExp).toBe(false);
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret }).jwtRequireExp).toBe(false);
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret, JWT_REQUIRE_EXP: 'true' }).jwtRequireExp).toBe(true);
    expect(() => loadConfig({ JWT_REQUIRE_EXP: 'maybe' })).toThrow(/JWT_REQUIRE_EXP/);
    // From code, as from the environment: production requires it unless told otherwise.
    expect(defaultConfig({ production: true }).jwtRequireExp).toBe(true);
    expect(defaultConfig({ production: true, jwtRequireExp: false }).jwtRequireExp).toBe(false);
    expect(defaultConfig({}).jwtRequireExp).toBe(false);
  });

  it('defaultConfig: NODE_ENV follows production when that is given, so the two agree', () => {
    expect(defaultConfig({ production: true }).nodeEnv).toBe('production');
    expect(defaultConfig({ production: true, nodeEnv: 'production' }).nodeEnv).toBe('production');
    expect(defaultConfig({}).nodeEnv).toBe('development');
  });

  it('refuses an http:// JWKS URL in production, naming the variable and the fix; allows it on loopback and outside production', () => {
    const prod = { NODE_ENV: 'production', AUTH_MODE: 'jwt', ADMIN_TOKEN: 'a'.repeat(20) };
    for (const url of [
      'http://idp.example.com/.well-known/jwks.json',
      'http://10.0.0.5/jwks',
      'http://127.0.0.1.nip.io/jwks',
    ]) {
      expect(() => loadConfig({ ...prod, JWT_JWKS_URL: url })).toThrow(ConfigError);
      expect(() => loadConfig({ ...prod, JWT_JWKS_URL: url })).toThrow(
        /JWT_JWKS_URL: http:\/\/ is refused when NODE_ENV=production .*use the key set's https:\/\/ URL/,
      );
    }
    for (const url of [jwks, 'http://127.0.0.1:9/jwks', 'http://localhost:8080/jwks', 'http://[::1]:9/jwks']) {
      expect(loadConfig({ ...prod, JWT_JWKS_URL: url }).jwtJwksUrl).toBe(url);
    }
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'http://idp.example.com/jwks' }).jwtJwksUrl).toBe(
      'http://idp.example.com/jwks',
    );
  });

  it('refuses a JWKS URL that is not http(s)', () => {
    expect(() => loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'ftp://idp/jwks' })).toThrow(/JWT_JWKS_URL/);
    expect(() => loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'not a url' })).toThrow(/JWT_JWKS_URL/);
  });
});

describe('docs/configuration.md', () => {
  it('documents every variable the gateway reads', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]));
    expect(Object.keys(EnvSchema.shape).filter((name) => !documented.has(name))).toEqual([]);
  });

  it('every variable the gateway reads reaches it under `pnpm dev` (turbo passes only those listed)', () => {
    const turbo = JSON.parse(readFileSync(join(__dirname, '..', 'turbo.json'), 'utf8'));
    const passed = new Set<string>(turbo.tasks.dev.env);
    expect(Object.keys(EnvSchema.shape).filter((name) => !passed.has(name))).toEqual([]);
  });

  it('refuses FIREBASE_AUTH_EMULATOR_HOST with AUTH_MODE=firebase in production (unsigned tokens), not elsewhere', () => {
    const firebase = {
      AUTH_MODE: 'firebase',
      FIREBASE_PROJECT_ID: 'demo',
      FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099',
    };
    const prod = { ...firebase, NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(20) };
    expect(() => loadConfig(prod)).toThrow(ConfigError);
    expect(() => loadConfig(prod)).toThrow(
      /FIREBASE_AUTH_EMULATOR_HOST: refused when NODE_ENV=production with AUTH_MODE=firebase .*unset it/,
    );
    expect(() => loadConfig({ ...prod, FIREBASE_AUTH_EMULATOR_HOST: ' ' })).not.toThrow();
    expect(() => loadConfig(firebase)).not.toThrow();
    expect(() =>
      loadConfig({ ...prod, AUTH_MODE: 'jwt', JWT_SECRET: 's'.repeat(32), FIREBASE_PROJECT_ID: undefined }),
    ).not.toThrow();
  });

  it('refuses AUTH_MODE=firebase without a project, and names what to set', () => {
    expect(() => loadConfig({ AUTH_MODE: 'firebase' })).toThrow(/FIREBASE_PROJECT_ID: AUTH_MODE=firebase needs/);
    expect(loadConfig({ AUTH_MODE: 'firebase', FIREBASE_PROJECT_ID: 'demo' }).firebaseProjectId).toBe('demo');
    expect(() => loadConfig({ AUTH_MODE: 'firebase', GOOGLE_CLOUD_PROJECT: 'demo' })).not.toThrow();
    const key = join(mkdtempSync(join(tmpdir(), 'livebus-key-')), 'key.json');
    writeFileSync(key, JSON.stringify({ type: 'service_account', project_id: 'demo' }));
    expect(() => loadConfig({ AUTH_MODE: 'firebase', GOOGLE_APPLICATION_CREDENTIALS: key })).not.toThrow();
  });

  it('refuses a GOOGLE_APPLICATION_CREDENTIALS that names no readable JSON key, when Firebase or Firestore is used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'livebus-key-'));
    const missing = join(dir, 'missing.json');
    expect(() => loadConfig({ AUTH_MODE: 'firebase', GOOGLE_APPLICATION_CREDENTIALS: missing })).toThrow(
      `GOOGLE_APPLICATION_CREDENTIALS: cannot read ${missing} (ENOENT)`,
    );
    const garbled = join(dir, 'garbled.json');
    writeFileSync(garbled, 'not json');
    expect(() => loadConfig({ AUTH_MODE: 'firebase', GOOGLE_APPLICATION_CREDENTIALS: garbled })).toThrow(
      `${garbled} is not a JSON service-account key`,
    );
    // No key read: neither Firebase auth nor listeners, Firebase auth with its project named (a
    // worker sharing the gateway's environment), or listeners on the emulator.
    expect(() => loadConfig({ GOOGLE_APPLICATION_CREDENTIALS: missing })).not.toThrow();
    expect(() =>
      loadConfig({ AUTH_MODE: 'firebase', FIREBASE_PROJECT_ID: 'demo', GOOGLE_APPLICATION_CREDENTIALS: missing }),
    ).not.toThrow();
  });
});

// Each default is written once, in its concern's module; EnvSchema and the components read it there.
describe('one source of defaults per concern', () => {
  const c = loadConfig({});

  it('EnvSchema takes the retention, outbox, task, listener and presence defaults from their modules', () => {
    expect({
      retentionEvents: c.streamRetentionEvents,
      retentionMs: c.streamRetentionMs,
      retentionBytes: c.streamRetentionBytes,
    }).toEqual({
      retentionEvents: retentionDefaults.retentionEvents,
      retentionMs: retentionDefaults.retentionMs,
      retentionBytes: retentionDefaults.retentionBytes,
    });
    expect([c.publishRetryDelaysMs, c.publishOutboxMaxEvents, c.publishOutboxMaxBytes]).toEqual([
      [...outboxDefaults.retryDelaysMs],
      outboxDefaults.maxEvents,
      outboxDefaults.maxBytes,
    ]);
    expect({
      concurrency: c.workerConcurrency,
      attempts: c.taskAttempts,
      backoffMs: c.taskBackoffMs,
      lockMs: c.taskLockMs,
      ttlS: c.taskTtlS,
      maxDocumentBytes: c.taskMaxDocumentBytes,
      stageDelayMs: c.taskStageDelayMs,
      maxOpenPerUser: c.taskMaxOpenPerUser,
      maxQueued: c.taskMaxQueued,
    }).toEqual(taskDefaults);
    expect({
      leaseTtlMs: c.listenerLeaseTtlMs,
      stallMs: c.listenerStallMs,
      retryMaxMs: c.listenerRetryMaxMs,
      trackedDocsMax: c.listenerTrackedDocsMax,
      workflowWatchesMax: c.workflowMaxWatchesPerUser,
    }).toEqual({
      leaseTtlMs: listenerDefaults.leaseTtlMs,
      stallMs: listenerDefaults.stallMs,
      retryMaxMs: listenerDefaults.retryMaxMs,
      trackedDocsMax: listenerDefaults.trackedDocsMax,
      workflowWatchesMax: listenerDefaults.workflowWatchesMax,
    });
    expect(c.instanceTtlMs).toBe(DEFAULT_INSTANCE_TTL_MS);
  });

  it('the components built without options apply the same values', () => {
    expect(memoryEventBusDefaults).toEqual({
      retentionEvents: c.streamRetentionEvents,
      retentionMs: c.streamRetentionMs,
      retentionBytes: c.streamRetentionBytes,
    });
    expect(taskWorkDefaults).toEqual({
      concurrency: c.workerConcurrency,
      attempts: c.taskAttempts,
      backoffMs: c.taskBackoffMs,
    });
    expect([documentAnalysisDefaults.maxBytes, documentAnalysisDefaults.stageDelayMs]).toEqual([
      c.taskMaxDocumentBytes,
      c.taskStageDelayMs,
    ]);
  });
});
