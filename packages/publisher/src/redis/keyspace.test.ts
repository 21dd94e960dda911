import {
  FLEET_KEY_PREFIX,
  fleetUserKeys,
  instanceKeys,
  REGISTRY_KEY_PREFIX,
  TASK_KEY_PREFIX,
  TASK_QUEUE_NAME,
  taskKey,
  UserKeyError,
  userKeys,
  userTag,
  workersKey,
} from './index';

// The key names are a data format (operators look for registry:unified:*, and
// instances of two versions share them during a rolling upgrade): spelled out here.
describe('the fleet keyspace', () => {
  it('names every key of a user, streams and fleet keys, with one hash tag', () => {
    expect(userKeys('alice')).toEqual({ stream: 'lb:{alice}:s', meta: 'lb:{alice}:m', channel: 'lb:{alice}:n' });
    expect(fleetUserKeys('alice')).toEqual({
      presence: 'lb:{alice}:p',
      presenceExpiry: 'lb:{alice}:pz',
      lease: 'lb:{alice}:l',
      leaseFence: 'lb:{alice}:lf',
      listenerMarks: 'lb:{alice}:lw',
      listenerDocs: 'lb:{alice}:ld',
      workflowWatches: 'lb:{alice}:wf',
      detachClaim: 'lb:{alice}:dc',
      registrySessions: 'registry:user:{alice}',
      registryUnified: 'registry:unified:{alice}',
    });
    expect([FLEET_KEY_PREFIX, REGISTRY_KEY_PREFIX]).toEqual(['lb:', 'registry:']);
  });

  it("a user's channel is its stream key with 'n' for the last letter (the appendMany script makes it so)", () => {
    for (const id of ['alice', 'x}y', 'a{b}c%d', 'ü-ñ', 's', '']) {
      const k = userKeys(id);
      expect(k.stream.endsWith('s')).toBe(true);
      expect(k.channel).toBe(`${k.stream.slice(0, -1)}n`);
    }
  });

  it('escapes %, { and } in a user id the same way in every key', () => {
    expect(userTag('a}b{c%d')).toBe('a%7Db%7Bc%25d');
    expect(userKeys('x}y').stream).toBe('lb:{x%7Dy}:s');
    expect(fleetUserKeys('x}y').registryUnified).toBe('registry:unified:{x%7Dy}');
    expect(fleetUserKeys('x}y', { fleet: 't:', registry: 'r:' }).presence).toBe('t:{x%7Dy}:p');
  });

  it('refuses an empty user id for the fleet keys (no hash tag)', () => {
    expect(() => fleetUserKeys('')).toThrow(UserKeyError);
  });

  it('names the instance keys and channel, and the task keys', () => {
    expect([instanceKeys.list(), instanceKeys.info('gw-1'), instanceKeys.channel('gw-1')]).toEqual([
      'lb:instances',
      'lb:instance:{gw-1}',
      'lb:ctl:gw-1',
    ]);
    expect([TASK_KEY_PREFIX, TASK_QUEUE_NAME, taskKey('t1'), workersKey]).toEqual([
      '{lbq}',
      'livebus-tasks',
      '{lbq}:task:t1',
      '{lbq}:workers',
    ]);
  });
});
