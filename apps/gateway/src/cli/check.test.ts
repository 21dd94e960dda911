import {
  formatReport,
  judgeFirestore,
  judgeListenerLatency,
  judgeReconnects,
  judgeRpcErrors,
  THRESHOLDS,
} from './check';

/** A /ws-metrics `metrics` body with these listener figures since start. */
const withListeners = (count: number, within: number, p50 = 8, p99 = 60) => ({
  delivery: { since_start: { listeners: { count, p50_ms: p50, p99_ms: p99, within_100ms: within } } },
});

describe('check: listener delivery p99', () => {
  it('skips below the minimum sample, with the count', () => {
    const r = judgeListenerLatency(withListeners(THRESHOLDS.latencyMinSample - 1, 1));
    expect(r.verdict).toBe('skip');
    expect(r.value).toBe('99 listener events, fewer than 100: not judged yet');
    expect(r.threshold).toBe('< 100 ms (of 100+ listener events)');
  });

  it('passes when 99 % or more were delivered within 100 ms, fails below', () => {
    expect(judgeListenerLatency(withListeners(1_000, 0.99)).verdict).toBe('pass');
    const fail = judgeListenerLatency(withListeners(1_000, 0.985, 20, 140));
    expect(fail.verdict).toBe('fail');
    expect(fail.value).toBe('140 ms, p50 20 ms (98.5 % of 1000 within 100 ms)');
  });

  it('says SKIP for a gateway that does not report delivery latency', () => {
    expect(judgeListenerLatency({}).verdict).toBe('skip');
    expect(judgeListenerLatency({}).value).toBe('not reported by this gateway');
  });
});

describe('check: RPC error rate', () => {
  const rpc = (calls: number, server_errors: number, caller_errors = 0) => ({
    rpc: { calls, server_errors, caller_errors },
  });
  it('judges server errors only: pass below 1 %, warn below 5 %, fail at 5 % and above', () => {
    expect(judgeRpcErrors(rpc(1_000, 9, 300)).verdict).toBe('pass');
    expect(judgeRpcErrors(rpc(1_000, 10)).verdict).toBe('warn');
    expect(judgeRpcErrors(rpc(1_000, 49)).verdict).toBe('warn');
    expect(judgeRpcErrors(rpc(1_000, 50)).verdict).toBe('fail');
    expect(judgeRpcErrors(rpc(1_000, 9, 300)).value).toBe("0.9 % (9 of 1000 calls; 300 refused as the caller's error)");
  });
  it('skips below 20 calls', () => {
    expect(judgeRpcErrors(rpc(19, 19)).verdict).toBe('skip');
  });
});

describe('check: reconnects', () => {
  const rec = (resumed: number, gap: number) => ({ reconnects: { resumed, gap } });
  it('warns when 5 % or more of reconnects got gap, never fails', () => {
    expect(judgeReconnects(rec(96, 4)).verdict).toBe('pass');
    expect(judgeReconnects(rec(95, 5)).verdict).toBe('warn');
    expect(judgeReconnects(rec(0, 100)).verdict).toBe('warn');
    expect(judgeReconnects(rec(96, 4)).value).toBe('100 (96 resumed, 4 gap: 4.0 %)');
  });
  it('skips below 20 reconnects', () => {
    expect(judgeReconnects(rec(10, 9)).verdict).toBe('skip');
  });
});

describe('formatReport', () => {
  it('prints the new lines with their thresholds', () => {
    const text = formatReport([judgeListenerLatency(withListeners(500, 1)), judgeRpcErrors({ rpc: { calls: 0 } })]);
    expect(text).toMatch(/^PASS {2}listener delivery p99 .* threshold: < 100 ms \(of 100\+ listener events\)$/m);
    expect(text).toMatch(/^SKIP {2}RPC error rate .* threshold: < 1\.0 % server errors/m);
  });
});

describe('check: Firestore', () => {
  it('fails on an outage, warns on refused queries, passes otherwise, skips an older gateway', () => {
    expect(judgeFirestore({ firestore: 'down', firestore_refused: 2 }).verdict).toBe('fail');
    const refused = judgeFirestore({ firestore: 'ok', firestore_refused: 2 });
    expect([refused.verdict, refused.value]).toEqual([
      'warn',
      'ok, 2 listener(s) failing on a query Firestore refuses (livebus_listener_queries_failing{kind})',
    ]);
    expect(judgeFirestore({ firestore: 'ok', firestore_refused: 0 }).verdict).toBe('pass');
    expect(judgeFirestore({ firestore: 'disabled' }).verdict).toBe('pass');
    expect(judgeFirestore({ firestore: 'ok' }).verdict).toBe('pass');
    expect(judgeFirestore({ redis: 'ok' }).verdict).toBe('skip');
  });
});
