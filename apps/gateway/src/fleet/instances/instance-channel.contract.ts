import { waitFor } from '@livebus/test-support';
import type { ControlMessage, InstanceChannel } from './instance-channel';

/** What the contract needs of an implementation under test. */
export interface InstanceChannelFixture {
  /** Gives a fresh backend; each call of the function it returns is the channel of one instance. */
  make(): Promise<(instanceId: string) => InstanceChannel>;
  /**
   * Whether channels of different instances reach each other (Redis does); a
   * single-process channel has no other instance to reach and delivers nothing.
   */
  connectsInstances: boolean;
}

/**
 * The contract every {@link InstanceChannel} passes: run by
 * test/instance-channel-contract.int.test.ts against the single-process channel,
 * standalone Redis and Redis Cluster.
 */
export function instanceChannelContract(name: string, fixture: InstanceChannelFixture): void {
  describe(`InstanceChannel contract: ${name}`, () => {
    let n = 0;
    let ids: { a: string; b: string };
    const open: InstanceChannel[] = [];
    beforeEach(() => {
      const run = `${Date.now()}-${n++}`;
      ids = { a: `gw-a-${run}`, b: `gw-b-${run}` };
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });
    const channels = async () => {
      const view = await fixture.make();
      const a = view(ids.a);
      const b = view(ids.b);
      open.push(a, b);
      const got = { a: [] as ControlMessage[], b: [] as ControlMessage[] };
      await a.listen((m) => got.a.push(m));
      await b.listen((m) => got.b.push(m));
      return { a, b, got };
    };
    const replace = (i: number): ControlMessage => ({ type: 'replace', uid: `u${i}`, session_id: `s${i}` });

    it('sends to an instance that is gone, or never was, without failing', async () => {
      const { a } = await channels();
      await expect(a.send(`${ids.b}-gone`, replace(1))).resolves.toBeUndefined();
    });

    it('closes once or twice, listening or not', async () => {
      const view = await fixture.make();
      const idle = view(ids.a);
      await idle.close();
      await idle.close();
      const { b } = await channels();
      await b.close();
      await b.close();
    });

    if (fixture.connectsInstances) {
      // Not in order: a Redis Cluster may relay two PUBLISHes through different nodes.
      it('delivers each message once to the instance it names, and to no other', async () => {
        const { a, got } = await channels();
        for (let i = 0; i < 5; i++) await a.send(ids.b, replace(i));
        await waitFor(() => got.b.length === 5, "the messages on b's channel");
        expect([...got.b].sort((x, y) => x.uid.localeCompare(y.uid))).toEqual([0, 1, 2, 3, 4].map(replace));
        // A marker sent to a arrives after anything misrouted to it would have.
        await a.send(ids.a, replace(99));
        await waitFor(() => got.a.length > 0, "the marker on a's channel");
        expect(got.a).toEqual([replace(99)]);
      });

      it("carries the listeners' messages (watch, watched) as they were sent", async () => {
        const { a, got } = await channels();
        const watch: ControlMessage = { type: 'watch', uid: 'u1', job_id: 'job-1', from: ids.a, id: 'm-1' };
        const watched: ControlMessage = { type: 'watched', uid: 'u1', id: 'm-1', ok: true };
        await a.send(ids.b, watch);
        await a.send(ids.b, watched);
        await waitFor(() => got.b.length === 2, "both on b's channel");
        expect([...got.b].sort((x, y) => x.type.localeCompare(y.type))).toEqual([watch, watched]);
      });

      it('delivers nothing to an instance after it closed its channel', async () => {
        const { a, b, got } = await channels();
        await b.close();
        await a.send(ids.b, replace(1));
        await a.send(ids.a, replace(2));
        await waitFor(() => got.a.length > 0, "the marker on a's channel");
        expect(got.b).toEqual([]);
      });
    } else {
      it('delivers nothing: there is no other instance to reach', async () => {
        const { a, got } = await channels();
        await a.send(ids.b, replace(1));
        await a.send(ids.a, replace(2));
        expect(got).toEqual({ a: [], b: [] });
      });
    }
  });
}
