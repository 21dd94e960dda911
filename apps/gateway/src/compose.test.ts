import { composePorts, memoryPorts, resolvePorts } from './compose';
import { defaultConfig } from './config';
import { MemoryPresence } from './fleet/presence/memory-presence';
import { MemoryRegistryStore } from './fleet/registry/memory-registry-store';

const silent = { error() {}, warn() {}, info() {}, debug() {} };

describe('composePorts', () => {
  it('without REDIS_URL: every port in memory, Redis reported disabled', async () => {
    const ports = await composePorts(defaultConfig(), silent);
    try {
      expect([ports.registry?.sharedAcrossInstances, ports.bus?.sharedAcrossInstances]).toEqual([false, false]);
      expect(ports.presence).toBeInstanceOf(MemoryPresence);
      expect(ports.lease).toBeDefined();
      expect(ports.workflowWatches).toBeDefined();
      expect(ports.channel).toBeDefined();
      expect(ports.detachDecision).toBeUndefined();
      expect(ports.tasks).toBeUndefined();
      expect(ports.sources).toBeUndefined();
      expect(ports.redisStatus?.()).toBe('disabled');
      expect(ports.auth?.mode).toBe('none');
    } finally {
      await ports.onClose?.();
    }
  });
});

describe('resolvePorts', () => {
  it('keeps what is given and fills the rest from memoryPorts', () => {
    const registry = new MemoryRegistryStore();
    const ports = resolvePorts(defaultConfig(), { registry, logger: silent });
    expect(ports.registry).toBe(registry);
    expect(ports.logger).toBe(silent);
    expect(ports.bus.sharedAcrossInstances).toBe(false);
    expect(ports.presence).toBeInstanceOf(MemoryPresence);
    expect(ports.redisStatus()).toBe('disabled');
    expect(ports.version).toBe('0.0.0');
  });
});

describe('memoryPorts', () => {
  it('builds only the ports asked for', () => {
    expect(Object.keys(memoryPorts(defaultConfig(), ['bus', 'lease'])).sort()).toEqual(['bus', 'lease']);
    expect(Object.keys(memoryPorts(defaultConfig())).sort()).toEqual([
      'bus',
      'channel',
      'lease',
      'presence',
      'registry',
      'workflowWatches',
    ]);
  });
});
