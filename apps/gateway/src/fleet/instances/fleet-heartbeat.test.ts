import { createLogger } from '../../logger';
import { MemoryPresence } from '../presence/memory-presence';
import { type Presence, PresenceRefreshError } from '../presence/presence';
import { FleetHeartbeat, type FleetHeartbeatOptions } from './fleet-heartbeat';

const logger = createLogger({ level: 'error', format: 'json', instanceId: 'gw-a' });

function heartbeat(presence: Presence, overrides: Partial<FleetHeartbeatOptions> = {}) {
  const reannounced: string[] = [];
  const beat = new FleetHeartbeat({
    presence,
    instanceId: 'gw-a',
    instanceTtlMs: 30_000,
    local: () => ({
      held: [
        ['u1', ['s1']],
        ['u2', ['s2', 's3']],
      ],
      sessions: 3,
      users: 2,
    }),
    reannounce: async (uid) => {
      reannounced.push(uid);
    },
    startedAt: 1_000,
    version: '1.2.3',
    logger,
    ...overrides,
  });
  return { beat, reannounced };
}

describe('FleetHeartbeat', () => {
  it('announces the instance with its counts for the cluster view', async () => {
    const presence = new MemoryPresence();
    const { beat } = heartbeat(presence);
    await beat.beat();
    const [self] = await presence.instances();
    expect(self).toMatchObject({ id: 'gw-a', sessions: 3, users: 2, startedAt: 1_000, version: '1.2.3' });
  });

  it('writes again the sessions whose entries expired, and only those', async () => {
    const presence = new MemoryPresence();
    await presence.add('u1', { sessionId: 's1', instanceId: 'gw-a', route: '/', connectedAt: 1 });
    await presence.add('u2', { sessionId: 's2', instanceId: 'gw-a', route: '/', connectedAt: 1 });
    const { beat, reannounced } = heartbeat(presence);
    await beat.beat();
    // u2's s3 has no entry (u2 still has s2's).
    expect(reannounced).toEqual(['u2']);
  });

  it('never rejects when the presence store is away, and does not announce then', async () => {
    const presence = new MemoryPresence();
    const announce = jest.spyOn(presence, 'announce');
    jest.spyOn(presence, 'refresh').mockRejectedValue(new Error('connection lost'));
    const { beat, reannounced } = heartbeat(presence);
    await expect(beat.beat()).resolves.toBeUndefined();
    expect(announce).not.toHaveBeenCalled();
    expect(reannounced).toEqual([]);
  });

  it('when some users could not be refreshed (their node away), still writes the lost ones again and announces', async () => {
    const presence = new MemoryPresence();
    const announce = jest.spyOn(presence, 'announce');
    jest.spyOn(presence, 'refresh').mockRejectedValue(new PresenceRefreshError(1, ['u2'], new Error('CLUSTERDOWN')));
    const { beat, reannounced } = heartbeat(presence);
    await expect(beat.beat()).resolves.toBeUndefined();
    expect(reannounced).toEqual(['u2']);
    expect(announce).toHaveBeenCalledTimes(1);
  });

  it('still announces when a lost user cannot be written again, and says both in one line', async () => {
    const presence = new MemoryPresence();
    const announce = jest.spyOn(presence, 'announce');
    jest.spyOn(presence, 'refresh').mockResolvedValue(['u1', 'u2']);
    const warned: Array<Record<string, unknown> | undefined> = [];
    const { beat } = heartbeat(presence, {
      reannounce: async (uid) => {
        if (uid === 'u1') throw new Error('CLUSTERDOWN');
      },
      logger: { ...logger, warn: (_event, fields) => warned.push(fields) },
    });
    await beat.beat();
    expect(announce).toHaveBeenCalledTimes(1);
    expect(warned).toEqual([
      { error: '1 lost user(s) could not be written again: Error: CLUSTERDOWN', announced: true },
    ]);
  });

  it('does not start a beat while the last one waits for Redis', async () => {
    const presence = new MemoryPresence();
    let answer: (lost: string[]) => void = () => {};
    const refresh = jest.spyOn(presence, 'refresh').mockImplementation(
      () =>
        new Promise<string[]>((resolve) => {
          answer = resolve;
        }),
    );
    const { beat } = heartbeat(presence);
    const first = beat.beat();
    await beat.beat();
    expect(refresh).toHaveBeenCalledTimes(1);
    answer([]);
    await first;
    const third = beat.beat();
    expect(refresh).toHaveBeenCalledTimes(2);
    answer([]);
    await third;
  });

  it('beats as soon as it starts, and stop() ends the timer', async () => {
    const presence = new MemoryPresence();
    const { beat } = heartbeat(presence);
    beat.start();
    beat.stop();
    await new Promise((r) => setImmediate(r));
    expect((await presence.instances()).map((i) => i.id)).toEqual(['gw-a']);
  });
});
