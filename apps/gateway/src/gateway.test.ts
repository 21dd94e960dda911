import { signJwt } from './auth/jwt-authenticator';
import { defaultConfig } from './config';
import { MemoryPresence } from './fleet/presence/memory-presence';
import { MemoryRegistryStore } from './fleet/registry/memory-registry-store';
import type { RegistryStore } from './fleet/registry/registry-store';
import { createGateway } from './gateway';

const silent = { error() {}, warn() {}, info() {}, debug() {} };

describe('createGateway', () => {
  it('has no side effects: nothing listens until listen()', () => {
    const gw = createGateway(defaultConfig({ port: 0 }), { logger: silent });
    expect(gw.server.listening).toBe(false);
    expect(gw.stats()).toMatchObject({ connections: 0, sessions: 0, draining: false });
  });

  it('never runs weaker than the configured auth mode', async () => {
    expect(() => createGateway(defaultConfig({ authMode: 'firebase' }), { logger: silent })).toThrow(/ports\.auth/);
    expect(() => createGateway(defaultConfig({ authMode: 'jwt' }), { logger: silent })).toThrow(/jwtSecret/);
    expect(() => createGateway(defaultConfig({ production: true }), { logger: silent })).toThrow(/production/);

    const secret = 'gateway-unit-test-secret-0123456789abc';
    const gw = createGateway(defaultConfig({ port: 0, host: '127.0.0.1', authMode: 'jwt', jwtSecret: secret }), {
      logger: silent,
    });
    const { port } = await gw.listen();
    try {
      const rpc = (token: string) =>
        fetch(`http://127.0.0.1:${port}/rpc`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: ['u1'] }),
        }).then((r) => r.status);
      expect(await rpc('u1')).toBe(401); // a bare user id is not a token here
      expect(await rpc(signJwt({ sub: 'u1' }, secret))).toBe(200);
    } finally {
      await gw.shutdown();
    }
  });

  it('refuses a per-user or queue limit that is not a whole number in range, naming it (NaN or negative turned the bound off)', () => {
    const build = (overrides: Parameters<typeof defaultConfig>[0]) => () =>
      createGateway(defaultConfig({ port: 0, tasksEnabled: true, ...overrides }), { logger: silent });
    for (const bad of [Number.NaN, -1, 2.5]) {
      expect(build({ taskMaxOpenPerUser: bad })).toThrow(/maxOpenPerUser \(TASK_MAX_OPEN_PER_USER\) must be/);
      expect(build({ taskMaxQueued: bad })).toThrow(/maxQueued \(TASK_MAX_QUEUED\) must be/);
      expect(build({ workflowMaxWatchesPerUser: bad })).toThrow(/WORKFLOW_MAX_WATCHES_PER_USER\) must be/);
      expect(build({ registryMaxSessionsPerUser: bad })).toThrow(/registryMaxSessionsPerUser .*must be/);
    }
    expect(build({ taskMaxOpenPerUser: 1001 })).toThrow(
      /TASK_MAX_OPEN_PER_USER\) must be a whole number from 0 to 1000/,
    );
    expect(build({ taskMaxOpenPerUser: 0, taskMaxQueued: 0, workflowMaxWatchesPerUser: 0 })).not.toThrow();
    // As loadConfig: the registry keeps at least every live session of a user.
    expect(() => defaultConfig({ maxSessionsPerUser: 20, registryMaxSessionsPerUser: 19 })).toThrow(
      /registryMaxSessionsPerUser \(19\) must be at least maxSessionsPerUser \(20\)/,
    );
    expect(defaultConfig({ maxSessionsPerUser: 20, registryMaxSessionsPerUser: 20 }).registryMaxSessionsPerUser).toBe(
      20,
    );
  });

  it('detaches through a DetachDecision only: a registry of its own comes with one', () => {
    const store = new MemoryRegistryStore();
    // A registry that is not the embedded one: the gateway has no decision that reads it with presence.
    const wrapped: RegistryStore = {
      sharedAcrossInstances: false,
      registerSession: (u, x, max) => store.registerSession(u, x, max),
      unregisterSession: (u, x) => store.unregisterSession(u, x),
      getSessions: (u) => store.getSessions(u),
      getUnified: (u) => store.getUnified(u),
      putUnified: (u, d, ttl) => store.putUnified(u, d, ttl),
      touchUnified: (u, ttl) => store.touchUnified(u, ttl),
      ping: () => store.ping(),
      close: () => store.close(),
    };
    expect(() => createGateway(defaultConfig({ port: 0 }), { logger: silent, registry: wrapped })).toThrow(
      /detachDecision port/,
    );
    // The embedded registry and presence, given or not, get the embedded decision.
    const presence = new MemoryPresence();
    expect(() =>
      createGateway(defaultConfig({ port: 0 }), { logger: silent, registry: store, presence }),
    ).not.toThrow();
    expect('cleanupUser' in store).toBe(false);
  });
});
