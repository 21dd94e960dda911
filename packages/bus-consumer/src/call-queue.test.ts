// The client's RPC call queue on its own: what it sends and when, how answers, timeouts and drops
// settle its calls, and its counters. Sockets are send functions that record frames; fake clock.
import type { RpcErrorCode } from '@livebus/protocol';
import { CallQueue, type CallQueueOptions, type RpcCounters } from './call-queue';
import { RpcError } from './errors';

/** A valid result of `REGISTRY.get_sessions` (the method every call below makes). */
const SESSIONS = { user_id: 'u', sessions: [] };

function rig(options: Partial<CallQueueOptions> = {}) {
  const counters: RpcCounters = { ok: 0, error: 0, timeout: 0 };
  const q = new CallQueue(
    { rpcTimeoutMs: 1_000, whileDisconnected: 'queue', maxQueuedCalls: 100, ...options },
    counters,
  );
  return { q, counters };
}

/** A socket as the queue sees it: a send function that records what it took, or refuses when closed. */
function wire(open = true) {
  const sent: string[] = [];
  const w = {
    open,
    sent,
    send: (frame: string): boolean => {
      if (!w.open) return false;
      sent.push(frame);
      return true;
    },
    /** The first argument of each `rpc` frame sent, in order: the calls below are told apart by it. */
    args: (): unknown[] => sent.map((text) => JSON.parse(text).args[0]),
    /** The id of the call sent with this first argument. */
    id: (arg: string): number => JSON.parse(sent.find((text) => JSON.parse(text).args[0] === arg) ?? '{}').id,
  };
  return w;
}

type Outcome = { state: 'pending' } | { state: 'resolved'; value: unknown } | { state: 'rejected'; error: RpcError };

/** What a call's promise came to, read after the microtasks have run ({@link flush}). */
function outcome(promise: Promise<unknown>): { current: Outcome } {
  const box: { current: Outcome } = { current: { state: 'pending' } };
  promise.then(
    (value) => {
      box.current = { state: 'resolved', value };
    },
    (error: RpcError) => {
      box.current = { state: 'rejected', error };
    },
  );
  return box;
}

const flush = () => jest.advanceTimersByTimeAsync(0);

const result = (id: number, value: unknown = SESSIONS) => ({ type: 'rpc_result' as const, id, result: value as never });
const failure = (id: number, code: RpcErrorCode, message = 'm', data?: unknown) => ({
  type: 'rpc_error' as const,
  id,
  error: { code, message, ...(data === undefined ? {} : { data: data as never }) },
});

beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
afterEach(() => jest.useRealTimers());

describe('sending', () => {
  it('a call made while open goes out at once, as an rpc frame with its method and arguments', () => {
    const { q } = rig();
    const w = wire();
    q.call('REGISTRY.get_sessions', ['a'], true, w.send).catch(() => {});
    expect(w.sent.map((text) => JSON.parse(text))).toEqual([
      { type: 'rpc', id: expect.any(Number), method: 'REGISTRY.get_sessions', args: ['a'] },
    ]);
  });

  it('calls made while disconnected are sent at sendQueued, in the order they were made, each with its own id', () => {
    const { q, counters } = rig();
    const w = wire();
    for (const arg of ['a', 'b', 'c']) q.call('REGISTRY.get_sessions', [arg], false, w.send).catch(() => {});
    expect(w.sent).toEqual([]);
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['a', 'b', 'c']);
    expect(new Set(['a', 'b', 'c'].map(w.id)).size).toBe(3);
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 0 });
  });

  it('a call sent is never sent again: not by a later sendQueued, not on the next socket', () => {
    const { q } = rig();
    const first = wire();
    q.call('REGISTRY.get_sessions', ['sent'], true, first.send).catch(() => {});
    q.call('REGISTRY.get_sessions', ['queued'], false, first.send).catch(() => {});
    q.sendQueued(first.send);
    q.sendQueued(first.send);
    expect(first.args()).toEqual(['sent', 'queued']);
    const next = wire();
    q.sendQueued(next.send);
    expect(next.sent).toEqual([]);
  });

  it('a call the send function refused (no socket open) stays queued for the next sendQueued', async () => {
    const { q, counters } = rig();
    const w = wire(false);
    const call = outcome(q.call('REGISTRY.get_sessions', ['refused'], true, w.send));
    q.sendQueued(w.send); // still closed
    expect(w.sent).toEqual([]);
    // Not sent, so not failed by a drop either.
    q.fail('sent', () => new RpcError('unavailable', 'connection lost before the answer'));
    await flush();
    expect(call.current).toEqual({ state: 'pending' });
    w.open = true;
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['refused']);
    q.settle(result(w.id('refused')));
    await flush();
    expect(call.current).toEqual({ state: 'resolved', value: SESSIONS });
    expect(counters).toEqual({ ok: 1, error: 0, timeout: 0 });
  });

  it('arguments that are not JSON reject the call before anything is sent or counted', async () => {
    const { q, counters } = rig();
    const w = wire();
    const error = await q.call('REGISTRY.get_sessions', [undefined], true, w.send).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'FrameError' });
    expect(w.sent).toEqual([]);
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('while disconnected', () => {
  it("whileDisconnected 'fail': rejects unavailable at once, and nothing is queued", async () => {
    const { q, counters } = rig({ whileDisconnected: 'fail' });
    const w = wire();
    const error = await q.call('REGISTRY.get_sessions', ['a'], false, w.send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ code: 'unavailable', message: 'not connected' });
    expect(counters).toEqual({ ok: 0, error: 1, timeout: 0 });
    expect(jest.getTimerCount()).toBe(0);
    q.sendQueued(w.send);
    expect(w.sent).toEqual([]);
  });

  it("whileDisconnected 'fail': a call made while open still goes out", () => {
    const { q } = rig({ whileDisconnected: 'fail' });
    const w = wire();
    q.call('REGISTRY.get_sessions', ['a'], true, w.send).catch(() => {});
    expect(w.args()).toEqual(['a']);
  });

  it('maxQueuedCalls: one call past the bound rejects unavailable and is never sent', async () => {
    const { q, counters } = rig({ maxQueuedCalls: 2 });
    const w = wire();
    q.call('REGISTRY.get_sessions', ['a'], false, w.send).catch(() => {});
    q.call('REGISTRY.get_sessions', ['b'], false, w.send).catch(() => {});
    const error = await q.call('REGISTRY.get_sessions', ['c'], false, w.send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ code: 'unavailable', message: 'not connected and 2 calls already queued' });
    expect(counters).toEqual({ ok: 0, error: 1, timeout: 0 });
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['a', 'b']);
  });

  it('maxQueuedCalls counts only the calls not sent yet: those awaiting an answer leave room', async () => {
    const { q, counters } = rig({ maxQueuedCalls: 2 });
    const w = wire();
    q.call('REGISTRY.get_sessions', ['sent-1'], true, w.send).catch(() => {});
    q.call('REGISTRY.get_sessions', ['queued-1'], false, w.send).catch(() => {});
    q.sendQueued(w.send);
    // Two calls sent and unanswered, none queued: two more may queue, not three.
    q.call('REGISTRY.get_sessions', ['queued-2'], false, w.send).catch(() => {});
    q.call('REGISTRY.get_sessions', ['queued-3'], false, w.send).catch(() => {});
    const error = await q.call('REGISTRY.get_sessions', ['over'], false, w.send).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unavailable', message: 'not connected and 2 calls already queued' });
    expect(counters.error).toBe(1);
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['sent-1', 'queued-1', 'queued-2', 'queued-3']);
  });

  it('maxQueuedCalls counts a call the send function refused', async () => {
    const { q } = rig({ maxQueuedCalls: 1 });
    const w = wire(false);
    q.call('REGISTRY.get_sessions', ['refused'], true, w.send).catch(() => {});
    const error = await q.call('REGISTRY.get_sessions', ['over'], false, w.send).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unavailable', message: 'not connected and 1 calls already queued' });
  });

  it('maxQueuedCalls 0: every call while disconnected fails at once; calls while open go out', async () => {
    const { q, counters } = rig({ maxQueuedCalls: 0 });
    const w = wire();
    const error = await q.call('REGISTRY.get_sessions', ['a'], false, w.send).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unavailable' });
    q.call('REGISTRY.get_sessions', ['b'], true, w.send).catch(() => {});
    expect(w.args()).toEqual(['b']);
    expect(counters).toEqual({ ok: 0, error: 1, timeout: 0 });
  });
});

describe('answers', () => {
  it('rpc_result resolves the call with the result and counts it ok', async () => {
    const { q, counters } = rig();
    const w = wire();
    const call = outcome(q.call('REGISTRY.get_sessions', ['a'], true, w.send));
    q.settle(result(w.id('a')));
    await flush();
    expect(call.current).toEqual({ state: 'resolved', value: SESSIONS });
    expect(counters).toEqual({ ok: 1, error: 0, timeout: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it("rpc_error rejects the call with an RpcError of the gateway's code, message and data, counted error", async () => {
    const { q, counters } = rig();
    const w = wire();
    const call = q.call('REGISTRY.get_sessions', ['a'], true, w.send);
    q.settle(failure(w.id('a'), 'forbidden', 'not your sessions', { user_id: 'a' }));
    const error = await call.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ code: 'forbidden', message: 'not your sessions', data: { user_id: 'a' } });
    expect(counters).toEqual({ ok: 0, error: 1, timeout: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('each answer settles the call of its id, whatever the order', async () => {
    const { q, counters } = rig();
    const w = wire();
    const a = outcome(q.call('REGISTRY.get_sessions', ['a'], true, w.send));
    const b = outcome(q.call('REGISTRY.get_sessions', ['b'], true, w.send));
    const c = outcome(q.call('REGISTRY.get_sessions', ['c'], true, w.send));
    q.settle(result(w.id('c'), { user_id: 'c', sessions: [] }));
    q.settle(failure(w.id('a'), 'rate_limited'));
    await flush();
    expect(a.current).toMatchObject({ state: 'rejected', error: { code: 'rate_limited' } });
    expect(b.current).toEqual({ state: 'pending' });
    expect(c.current).toEqual({ state: 'resolved', value: { user_id: 'c', sessions: [] } });
    expect(counters).toEqual({ ok: 1, error: 1, timeout: 0 });
  });

  it('answers to no call in flight are ignored: unknown ids, string ids, a second answer', async () => {
    const { q, counters } = rig();
    const w = wire();
    const call = outcome(q.call('REGISTRY.get_sessions', ['a'], true, w.send));
    const id = w.id('a');
    q.settle(result(id + 1));
    q.settle({ type: 'rpc_result', id: String(id), result: SESSIONS });
    q.settle(failure(id + 1, 'internal'));
    await flush();
    expect(call.current).toEqual({ state: 'pending' });
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 0 });
    q.settle(result(id));
    q.settle(failure(id, 'internal'));
    q.settle(result(id));
    await flush();
    expect(call.current).toEqual({ state: 'resolved', value: SESSIONS });
    expect(counters).toEqual({ ok: 1, error: 0, timeout: 0 });
  });

  it("a result of a shape the method does not return rejects with RpcError 'internal' listing the issues, counted error", async () => {
    const { q, counters } = rig();
    const w = wire();
    const call = q.call('REGISTRY.get_sessions', ['a'], true, w.send);
    q.settle(result(w.id('a'), { user_id: 'a', sessions: 'none' }));
    const error = await call.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({
      code: 'internal',
      message: 'the gateway answered REGISTRY.get_sessions with an unexpected shape',
    });
    expect((error as RpcError).data).toEqual([expect.objectContaining({ path: 'sessions' })]);
    // The call failed: it counts as an error, not as a call that went well.
    expect(counters).toEqual({ ok: 0, error: 1, timeout: 0 });
  });

  it("a result with a key the method's strict result does not have is refused too", async () => {
    const { q } = rig();
    const w = wire();
    const call = q.call('REGISTRY.get_sessions', ['a'], true, w.send);
    q.settle(result(w.id('a'), { ...SESSIONS, extra: 1 }));
    await expect(call).rejects.toMatchObject({ code: 'internal' });
  });
});

describe('timeouts', () => {
  it("a call not answered in rpcTimeoutMs rejects with RpcError 'timeout', counted timeout", async () => {
    const { q, counters } = rig({ rpcTimeoutMs: 1_000 });
    const w = wire();
    const call = outcome(q.call('REGISTRY.get_sessions', ['a'], true, w.send));
    await jest.advanceTimersByTimeAsync(999);
    expect(call.current).toEqual({ state: 'pending' });
    await jest.advanceTimersByTimeAsync(1);
    expect(call.current).toMatchObject({
      state: 'rejected',
      error: { name: 'RpcError', code: 'timeout', message: 'REGISTRY.get_sessions timed out after 1000 ms' },
    });
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 1 });
  });

  it('an answer to a call that timed out is ignored', async () => {
    const { q, counters } = rig({ rpcTimeoutMs: 1_000 });
    const w = wire();
    const call = outcome(q.call('REGISTRY.get_sessions', ['a'], true, w.send));
    await jest.advanceTimersByTimeAsync(1_000);
    q.settle(result(w.id('a')));
    q.settle(failure(w.id('a'), 'internal'));
    await flush();
    expect(call.current).toMatchObject({ state: 'rejected', error: { code: 'timeout' } });
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 1 });
  });

  it('the time is counted from the call: time queued counts, and a call that timed out queued is never sent', async () => {
    const { q, counters } = rig({ rpcTimeoutMs: 1_000 });
    const w = wire();
    const early = outcome(q.call('REGISTRY.get_sessions', ['early'], false, w.send));
    await jest.advanceTimersByTimeAsync(600);
    const late = outcome(q.call('REGISTRY.get_sessions', ['late'], false, w.send));
    await jest.advanceTimersByTimeAsync(400);
    expect(early.current).toMatchObject({ state: 'rejected', error: { code: 'timeout' } });
    expect(late.current).toEqual({ state: 'pending' });
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['late']);
    await jest.advanceTimersByTimeAsync(600);
    expect(late.current).toMatchObject({ state: 'rejected', error: { code: 'timeout' } });
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 2 });
  });

  it('a call that timed out leaves room under maxQueuedCalls', async () => {
    const { q } = rig({ rpcTimeoutMs: 1_000, maxQueuedCalls: 1 });
    const w = wire();
    q.call('REGISTRY.get_sessions', ['a'], false, w.send).catch(() => {});
    await jest.advanceTimersByTimeAsync(1_000);
    const call = outcome(q.call('REGISTRY.get_sessions', ['b'], false, w.send));
    await flush();
    expect(call.current).toEqual({ state: 'pending' });
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['b']);
  });
});

describe('fail', () => {
  it("'sent' fails the calls sent, with one error, and leaves the queued ones for the next socket", async () => {
    const { q, counters } = rig();
    const before = wire();
    const sentA = q.call('REGISTRY.get_sessions', ['sent-a'], true, before.send).catch((e: unknown) => e);
    const sentB = q.call('REGISTRY.get_sessions', ['sent-b'], true, before.send).catch((e: unknown) => e);
    const queued = outcome(q.call('REGISTRY.get_sessions', ['queued'], false, before.send));
    const made: RpcError[] = [];
    q.fail('sent', () => {
      made.push(new RpcError('unavailable', 'connection lost before the answer'));
      return made[0] as RpcError;
    });
    expect(made).toHaveLength(1);
    expect(await sentA).toBe(made[0]);
    expect(await sentB).toBe(made[0]);
    await flush();
    expect(queued.current).toEqual({ state: 'pending' });
    expect(counters).toEqual({ ok: 0, error: 2, timeout: 0 });
    expect(jest.getTimerCount()).toBe(1); // the queued call's timeout

    // An answer to a failed call on the old socket changes nothing; the queued call goes out next.
    q.settle(result(before.id('sent-a')));
    const after = wire();
    q.sendQueued(after.send);
    expect(after.args()).toEqual(['queued']);
    q.settle(result(after.id('queued')));
    await flush();
    expect(queued.current).toEqual({ state: 'resolved', value: SESSIONS });
    expect(counters).toEqual({ ok: 1, error: 2, timeout: 0 });
  });

  it("'all' fails sent and queued calls alike; nothing is sent afterwards and no timer is left", async () => {
    const { q, counters } = rig();
    const w = wire();
    const sent = outcome(q.call('REGISTRY.get_sessions', ['sent'], true, w.send));
    const queued = outcome(q.call('REGISTRY.get_sessions', ['queued'], false, w.send));
    q.fail('all', () => new RpcError('unavailable', 'client closed'));
    await flush();
    for (const call of [sent, queued]) {
      expect(call.current).toMatchObject({
        state: 'rejected',
        error: { code: 'unavailable', message: 'client closed' },
      });
    }
    expect(counters).toEqual({ ok: 0, error: 2, timeout: 0 });
    expect(jest.getTimerCount()).toBe(0);
    q.sendQueued(w.send);
    expect(w.args()).toEqual(['sent']);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(counters).toEqual({ ok: 0, error: 2, timeout: 0 });
  });

  it('makes no error when there is no call to fail', () => {
    const { q, counters } = rig();
    const w = wire();
    const never = () => {
      throw new Error('made an error with nothing to fail');
    };
    q.fail('all', never);
    q.fail('sent', never);
    q.call('REGISTRY.get_sessions', ['queued'], false, w.send).catch(() => {});
    q.fail('sent', never); // only a queued call: nothing sent to fail
    expect(counters).toEqual({ ok: 0, error: 0, timeout: 0 });
  });
});
