import { waitFor } from '@livebus/test-support';
import { type ControlMessage, LocalInstanceChannel } from '../src/fleet/instances/instance-channel';
import { instanceChannelContract } from '../src/fleet/instances/instance-channel.contract';
import { instanceChannelName, RedisInstanceChannel } from '../src/fleet/instances/redis-instance-channel';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

instanceChannelContract('single process', {
  make: async () => () => new LocalInstanceChannel(),
  connectsInstances: false,
});
for (const backend of [backends.standalone, backends.cluster]) {
  instanceChannelContract(backend.name, {
    make: async () => (id) => new RedisInstanceChannel(backend.connect(), id),
    connectsInstances: true,
  });

  describe(`RedisInstanceChannel on ${backend.name}`, () => {
    it('ignores what another writer puts on the channel (not JSON, not a control message)', async () => {
      const redis = backend.connect();
      const channel = new RedisInstanceChannel(redis, 'gw-raw');
      const got: ControlMessage[] = [];
      await channel.listen((m) => got.push(m));
      try {
        await redis.publish(instanceChannelName('gw-raw'), 'not json');
        await redis.publish(instanceChannelName('gw-raw'), JSON.stringify({ type: 'shutdown' }));
        const ok: ControlMessage = { type: 'replace', uid: 'u', session_id: 's' };
        await redis.publish(instanceChannelName('gw-raw'), JSON.stringify(ok));
        await waitFor(() => got.length > 0, 'the valid message');
        expect(got).toEqual([ok]);
      } finally {
        await channel.close();
      }
    });
  });
}
