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
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const presence = new MemoryPresence();
      const refresh = jest.spyOn(presence, 'refresh');
      const { beat } = heartbeat(presence);
      beat.start();
      await jest.advanceTimersByTimeAsync(0);
      expect((await presence.instances()).map((i) => i.id)).toEqual(['gw-a']);
      await jest.advanceTimersByTimeAsync(10_000);
      expect(refresh).toHaveBeenCalledTimes(2);
      beat.stop();
      await jest.advanceTimersByTimeAsync(60_000);
      expect(refresh).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
    }
  });

  describe('with a Redis node that answers nothing (frozen) and step timeouts on fake timers', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
    afterEach(() => jest.useRealTimers());

    /** A heartbeat whose announce never settles (the node of `lb:instances` frozen), and what it logs. */
    function frozenAnnounce() {
      const presence = new MemoryPresence();
      const refresh = jest.spyOn(presence, 'refresh');
      const announce = jest.spyOn(presence, 'announce').mockImplementation(() => new Promise<void>(() => {}));
      const warned: Array<Record<string, unknown> | undefined> = [];
      const { beat } = heartbeat(presence, { logger: { ...logger, warn: (_event, fields) => warned.push(fields) } });
      return { beat, refresh, announce, warned };
    }

    it('an announce that never settles times out at the step timeout, and is logged as not announced', async () => {
      const { beat, announce, warned } = frozenAnnounce();
      let done = false;
      void beat.beat().then(() => {
        done = true;
      });
      await jest.advanceTimersByTimeAsync(5_000);
      expect(announce).toHaveBeenCalledTimes(1);
      expect(done).toBe(true);
      expect(warned).toEqual([
        { error: 'announce: RedisTimeoutError: Redis did not answer within 5000 ms', announced: false },
      ]);
    });

    it('keeps refreshing the users every beat while every announce hangs', async () => {
      const { beat, refresh, announce } = frozenAnnounce();
      beat.start();
      await jest.advanceTimersByTimeAsync(0);
      expect(refresh).toHaveBeenCalledTimes(1);
      for (let n = 2; n <= 5; n++) {
        await jest.advanceTimersByTimeAsync(10_000);
        expect(refresh).toHaveBeenCalledTimes(n);
        expect(announce).toHaveBeenCalledTimes(n);
      }
      beat.stop();
    });

    it("a beat's refresh is not held by the last beat's announce, which is not sent twice at once", async () => {
      const { beat, refresh, announce, warned } = frozenAnnounce();
      const first = beat.beat();
      await jest.advanceTimersByTimeAsync(0);
      expect(announce).toHaveBeenCalledTimes(1);
      // The next beat comes while the first one's announce still waits.
      await beat.beat();
      expect(refresh).toHaveBeenCalledTimes(2);
      expect(announce).toHaveBeenCalledTimes(1);
      expect(warned).toEqual([{ error: 'the last announce is still waiting for Redis', announced: false }]);
      await jest.advanceTimersByTimeAsync(5_000);
      await first;
      // Timed out: the beat after it announces again.
      void beat.beat();
      await jest.advanceTimersByTimeAsync(0);
      expect(announce).toHaveBeenCalledTimes(2);
      await jest.advanceTimersByTimeAsync(5_000);
    });

    it('a re-announce that never settles times out at the step timeout, and the instance is still announced', async () => {
      const presence = new MemoryPresence();
      jest.spyOn(presence, 'refresh').mockResolvedValue(['u1', 'u2']);
      const announce = jest.spyOn(presence, 'announce');
      const warned: Array<Record<string, unknown> | undefined> = [];
      const { beat } = heartbeat(presence, {
        reannounce: (uid) => (uid === 'u2' ? new Promise<void>(() => {}) : Promise.resolve()),
        logger: { ...logger, warn: (_event, fields) => warned.push(fields) },
      });
      let done = false;
      void beat.beat().then(() => {
        done = true;
      });
      await jest.advanceTimersByTimeAsync(0);
      expect(announce).not.toHaveBeenCalled();
      await jest.advanceTimersByTimeAsync(5_000);
      expect(done).toBe(true);
      expect(announce).toHaveBeenCalledTimes(1);
      expect(warned).toEqual([
        {
          error: '1 lost user(s) could not be written again: RedisTimeoutError: Redis did not answer within 5000 ms',
          announced: true,
        },
      ]);
    });
  });

  it('a beat in flight when stop() is called (shutdown) neither writes lost users again nor announces', async () => {
    const presence = new MemoryPresence();
    const announce = jest.spyOn(presence, 'announce');
    let answer: (lost: string[]) => void = () => {};
    jest.spyOn(presence, 'refresh').mockImplementation(
      () =>
        new Promise<string[]>((resolve) => {
          answer = resolve;
        }),
    );
    const { beat, reannounced } = heartbeat(presence);
    const beating = beat.beat();
    beat.stop();
    // The shutdown retires the instance, then the beat's refresh is answered.
    await presence.retire('gw-a');
    answer(['u1']);
    await beating;
    expect(announce).not.toHaveBeenCalled();
    expect(reannounced).toEqual([]);
    expect(await presence.instances()).toEqual([]);
  });
});
