import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, EnvSchema, loadConfig } from './config';

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
    });
    expect(c.shutdownGraceMs).toBeLessThan(30_000);
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

  it('refuses contradictions and unsafe production settings', () => {
    expect(() => loadConfig({ AUTH_MODE: 'jwt' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'none', ADMIN_TOKEN: 'x'.repeat(20) })).toThrow(
      /AUTH_MODE/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'firebase' })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ PING_INTERVAL_MS: '5000', PING_TIMEOUT_MS: '4000' })).toThrow(/PING_TIMEOUT_MS/);
  });
});

describe('docs/configuration.md', () => {
  it('documents every variable the gateway reads', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]));
    expect(Object.keys(EnvSchema.shape).filter((name) => !documented.has(name))).toEqual([]);
  });
});
