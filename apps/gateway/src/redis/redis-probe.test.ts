import type { RedisClient } from '@livebus/publisher';
import { LOADING_WHY, RedisProbe } from './redis-probe';

/** An error reply of Redis, as ioredis rejects with it. */
const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

/**
 * A client whose PINGs are answered when the test says (`answer`, `refuse`: an error reply), or
 * never; its INFOs likewise (`answerInfo`), or never (a frozen Redis).
 */
function fakeClient() {
  const pending: Array<(error?: Error) => void> = [];
  const infos: Array<(text: string) => void> = [];
  const client = {
    status: 'ready',
    ping: () =>
      new Promise<string>((resolve, reject) => pending.push((error) => (error ? reject(error) : resolve('PONG')))),
    info: jest.fn(() => new Promise<string>((resolve) => infos.push(resolve))),
    disconnect: jest.fn(),
  };
  const answer = () => {
    for (const resolve of pending.splice(0)) resolve();
  };
  const refuse = (message: string) => {
    for (const settle of pending.splice(0)) settle(replyError(message));
  };
  const answerInfo = (text: string) => {
    for (const resolve of infos.splice(0)) resolve(text);
  };
  return {
    client: client as unknown as RedisClient & { status: string; info: jest.Mock },
    pending,
    answer,
    refuse,
    answerInfo,
  };
}

const LOADING = '# Persistence\r\nloading:1\r\nloading_eta_seconds:3\r\n';
const LOADED = '# Persistence\r\nloading:0\r\n';

describe('RedisProbe, on fake timers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('says not answering when a PING gets no answer within the timeout, answering again at the next answer, once each', async () => {
    const { client, pending, answer } = fakeClient();
    const changes: Array<[boolean, string]> = [];
    const probe = new RedisProbe(client, { timeoutMs: 2_000, onChange: (a, why) => changes.push([a, why]) });
    const first = probe.probe();
    answer();
    await first;
    expect([probe.answering, changes]).toEqual([true, []]);
    const frozen = probe.probe();
    // A second probe while one waits sends nothing more.
    await probe.probe();
    expect(pending).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(2_000);
    await frozen;
    expect(probe.answering).toBe(false);
    const again = probe.probe();
    await jest.advanceTimersByTimeAsync(2_000);
    await again;
    expect(probe.answering).toBe(false);
    const last = probe.probe();
    answer();
    await last;
    expect(probe.answering).toBe(true);
    expect(changes).toEqual([
      [false, 'no answer to a PING within 2000 ms'],
      [true, 'answered a PING'],
    ]);
  });

  it('replaces a standalone connection unanswered for reconnectAfterRounds rounds in a row (an address that swallows packets), and counts again after', async () => {
    const { client } = fakeClient();
    const probe = new RedisProbe(client, { timeoutMs: 2_000, reconnectAfterRounds: 3 });
    const round = async () => {
      const p = probe.probe();
      await jest.advanceTimersByTimeAsync(2_000);
      await p;
    };
    for (let i = 0; i < 2; i++) await round();
    expect(client.disconnect).not.toHaveBeenCalled();
    await round();
    expect(client.disconnect).toHaveBeenCalledTimes(1);
    expect(client.disconnect).toHaveBeenCalledWith(true);
    for (let i = 0; i < 2; i++) await round();
    expect(client.disconnect).toHaveBeenCalledTimes(1);
  });

  it('counts again after a late answer (Redis or this loop slow, the connection alive) and after a reconnect', async () => {
    const { client, answer } = fakeClient();
    const probe = new RedisProbe(client, { timeoutMs: 2_000, reconnectAfterRounds: 3 });
    const round = async () => {
      const p = probe.probe();
      await jest.advanceTimersByTimeAsync(2_000);
      await p;
    };
    await round();
    await round();
    answer(); // the two PINGs answer late
    await jest.advanceTimersByTimeAsync(0);
    await round();
    await round();
    client.status = 'reconnecting';
    await probe.probe();
    client.status = 'ready';
    await round();
    await round();
    expect(client.disconnect).not.toHaveBeenCalled();
  });

  it('on a Cluster PINGs every master each round: one frozen master is not answering, every round', async () => {
    const [a, b] = [fakeClient(), fakeClient()];
    const cluster = { isCluster: true, status: 'ready', nodes: () => [a.client, b.client] };
    const probe = new RedisProbe(cluster as unknown as RedisClient, { timeoutMs: 2_000 });
    for (let round = 0; round < 3; round++) {
      const p = probe.probe();
      a.answer(); // b stays frozen
      await jest.advanceTimersByTimeAsync(2_000);
      await p;
      expect(probe.answering).toBe(false);
    }
    const p = probe.probe();
    a.answer();
    b.answer();
    await p;
    expect(probe.answering).toBe(true);
  });

  it('replaces a standalone connection whose ready check goes unanswered for reconnectAfterRounds rounds (a frozen Redis accepts connections), not a Cluster', async () => {
    const { client, pending, answer } = fakeClient();
    const probe = new RedisProbe(client, { timeoutMs: 2_000, reconnectAfterRounds: 3 });
    client.status = 'connect';
    for (let i = 0; i < 2; i++) await probe.probe();
    expect(client.disconnect).not.toHaveBeenCalled();
    await probe.probe();
    expect(client.disconnect).toHaveBeenCalledWith(true);
    expect(pending).toHaveLength(0);
    // A connection that turns ready and answers starts the count again.
    await probe.probe();
    client.status = 'ready';
    const ready = probe.probe();
    answer();
    await ready;
    client.status = 'connect';
    for (let i = 0; i < 2; i++) await probe.probe();
    expect(client.disconnect).toHaveBeenCalledTimes(1);
    const cluster = Object.assign(fakeClient().client, { isCluster: true, status: 'connect' });
    const onCluster = new RedisProbe(cluster, { reconnectAfterRounds: 1 });
    for (let i = 0; i < 3; i++) await onCluster.probe();
    expect(cluster.disconnect).not.toHaveBeenCalled();
  });

  it('replaces a watched subscriber waiting in connect for reconnectAfterRounds rounds of its own (a frozen Redis never answers its ready check or name), while the main connection answers; counts again after', async () => {
    const main = fakeClient();
    const subscriber = fakeClient().client;
    subscriber.status = 'connect';
    const probe = new RedisProbe(main.client, { timeoutMs: 2_000, reconnectAfterRounds: 3 });
    probe.watch(subscriber);
    const round = async () => {
      const p = probe.probe();
      main.answer();
      await p;
    };
    for (let i = 0; i < 2; i++) await round();
    expect(subscriber.disconnect).not.toHaveBeenCalled();
    await round();
    expect(subscriber.disconnect).toHaveBeenCalledTimes(1);
    expect(subscriber.disconnect).toHaveBeenCalledWith(true);
    // Its new connection counts from nothing: reconnecting, then two rounds in connect again.
    subscriber.status = 'reconnecting';
    await round();
    subscriber.status = 'connect';
    for (let i = 0; i < 2; i++) await round();
    expect(subscriber.disconnect).toHaveBeenCalledTimes(1);
    // Ready in between starts the count again too.
    subscriber.status = 'ready';
    await round();
    subscriber.status = 'connect';
    for (let i = 0; i < 2; i++) await round();
    expect(subscriber.disconnect).toHaveBeenCalledTimes(1);
    expect(main.client.disconnect).not.toHaveBeenCalled();
  });

  it('replaces the watched subscribers that are ready with the main connection, whether it waited in connect or its PINGs went unanswered; not one reconnecting, nor one no longer watched', async () => {
    const main = fakeClient();
    const [ready, reconnecting, unwatched] = [fakeClient().client, fakeClient().client, fakeClient().client];
    reconnecting.status = 'reconnecting';
    const probe = new RedisProbe(main.client, { timeoutMs: 2_000, reconnectAfterRounds: 2 });
    probe.watch(ready);
    probe.watch(reconnecting);
    probe.watch(unwatched)();
    main.client.status = 'connect';
    await probe.probe();
    expect(ready.disconnect).not.toHaveBeenCalled();
    await probe.probe();
    expect(main.client.disconnect).toHaveBeenCalledTimes(1);
    expect(ready.disconnect).toHaveBeenCalledTimes(1);
    expect(ready.disconnect).toHaveBeenCalledWith(true);
    // The next connection ready, its PINGs unanswered (an address that swallows packets).
    main.client.status = 'ready';
    for (let i = 0; i < 2; i++) {
      const p = probe.probe();
      await jest.advanceTimersByTimeAsync(2_000);
      await p;
    }
    expect(main.client.disconnect).toHaveBeenCalledTimes(2);
    expect(ready.disconnect).toHaveBeenCalledTimes(2);
    expect(reconnecting.disconnect).not.toHaveBeenCalled();
    expect(unwatched.disconnect).not.toHaveBeenCalled();
  });

  it("leaves a Cluster's subscriber to ioredis, as the Cluster itself", async () => {
    const main = fakeClient();
    const cluster = Object.assign(fakeClient().client, { isCluster: true, status: 'connect' });
    const probe = new RedisProbe(main.client, { reconnectAfterRounds: 1 });
    probe.watch(cluster);
    main.client.status = 'connect';
    for (let i = 0; i < 3; i++) await probe.probe();
    expect(main.client.disconnect).toHaveBeenCalledTimes(3);
    cluster.status = 'ready';
    await probe.probe();
    expect(cluster.disconnect).not.toHaveBeenCalled();
  });

  it('keeps a standalone connection waiting in connect while Redis answers its INFO loading (ready check waiting), told loading every round; counts the rounds again once INFO says loading:0', async () => {
    const { client, answerInfo } = fakeClient();
    const told: string[] = [];
    const probe = new RedisProbe(client, {
      timeoutMs: 2_000,
      reconnectAfterRounds: 3,
      onLoading: (why) => told.push(why),
    });
    client.status = 'connect';
    for (let round = 0; round < 6; round++) {
      await probe.probe();
      answerInfo(LOADING);
      await jest.advanceTimersByTimeAsync(0);
    }
    expect(client.disconnect).not.toHaveBeenCalled();
    expect(client.info).toHaveBeenCalledTimes(6);
    expect(client.info).toHaveBeenCalledWith('persistence');
    expect([probe.answering, probe.loading, told.length, told[0]]).toEqual([false, true, 6, LOADING_WHY]);
    // Loaded, the client still waiting (ioredis asks again after loading_eta_seconds): counted, replaced at the bound.
    for (let round = 0; round < 3; round++) {
      await probe.probe();
      answerInfo(LOADED);
      await jest.advanceTimersByTimeAsync(0);
    }
    expect(client.disconnect).toHaveBeenCalledTimes(1);
    expect(told).toHaveLength(6);
    // A frozen Redis answers no INFO: one asked at a time, the rounds counted as before.
    for (let round = 0; round < 3; round++) await probe.probe();
    expect(client.disconnect).toHaveBeenCalledTimes(2);
    expect(client.info).toHaveBeenCalledTimes(10);
  });

  it('keeps a watched subscriber waiting in connect while Redis answers it loading, and replaces it at its bound otherwise', async () => {
    const main = fakeClient();
    const subscriber = fakeClient();
    subscriber.client.status = 'connect';
    const probe = new RedisProbe(main.client, { timeoutMs: 2_000, reconnectAfterRounds: 3 });
    probe.watch(subscriber.client);
    const round = async (info: string) => {
      const p = probe.probe();
      main.answer();
      await p;
      subscriber.answerInfo(info);
      await jest.advanceTimersByTimeAsync(0);
    };
    for (let i = 0; i < 6; i++) await round(LOADING);
    expect(subscriber.client.disconnect).not.toHaveBeenCalled();
    for (let i = 0; i < 3; i++) await round(LOADED);
    expect(subscriber.client.disconnect).toHaveBeenCalledTimes(1);
    expect(main.client.disconnect).not.toHaveBeenCalled();
  });

  it('takes an error reply to a PING as an answer: LOADING says not answering (loading) without replacing, any reply resets the unanswered rounds', async () => {
    const { client, answer, refuse } = fakeClient();
    const changes: Array<[boolean, string]> = [];
    const told: string[] = [];
    const probe = new RedisProbe(client, {
      timeoutMs: 2_000,
      reconnectAfterRounds: 3,
      onChange: (a, why) => changes.push([a, why]),
      onLoading: (why) => told.push(why),
    });
    const unanswered = async () => {
      const p = probe.probe();
      await jest.advanceTimersByTimeAsync(2_000);
      await p;
    };
    const refused = async (message: string) => {
      const p = probe.probe();
      refuse(message);
      await p;
    };
    for (let i = 0; i < 5; i++) await refused('LOADING Redis is loading the dataset in memory');
    expect([probe.answering, probe.loading, told.length]).toEqual([false, true, 5]);
    await unanswered();
    await unanswered();
    await refused('BUSY Redis is busy running a script');
    await unanswered();
    await unanswered();
    expect(client.disconnect).not.toHaveBeenCalled();
    const last = probe.probe();
    answer();
    await last;
    expect([probe.answering, probe.loading]).toEqual([true, false]);
    expect(changes).toEqual([
      [false, LOADING_WHY],
      [true, 'answered a PING'],
    ]);
  });

  it('sends no PING while the connection is not ready (the client says so itself)', async () => {
    const { client, pending } = fakeClient();
    client.status = 'reconnecting';
    await new RedisProbe(client).probe();
    expect(pending).toHaveLength(0);
  });
});
