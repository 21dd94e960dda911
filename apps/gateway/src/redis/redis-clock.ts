import { isCluster, type RedisClient } from '@livebus/publisher/redis';
import type { Redis } from 'ioredis';

/** Round trips per node; the shortest one's reading is kept (the least uncertain). */
const SAMPLES = 3;

/** One node's clock minus ours (ms), read with `TIME` halfway through the shortest of a few round trips. */
async function offsetOf(node: Redis): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < SAMPLES; i++) {
    const before = performance.now();
    const [s, us] = await node.time();
    const after = performance.now();
    // Date.now(), not performance's clock: the latency compares stamps with Date.now(), whose
    // wall clock NTP may have stepped since the process started.
    const localMs = Date.now() - (after - before) / 2;
    const redisMs = Number(s) * 1000 + Number(us) / 1000;
    if (after - before < best.rttMs) best = { offsetMs: redisMs - localMs, rttMs: after - before };
  }
  return best;
}

/**
 * The Redis clock minus this process's clock, in ms: what the `ts` of a stored event
 * (Redis `TIME` at append) must be moved by before it is compared with `Date.now()`. A
 * Cluster's masters each stamp their own users' events: the median of their offsets
 * (a spread between masters shows as the error of the delivery latency, docs/operations.md).
 */
export async function redisClockOffset(client: RedisClient): Promise<{ offsetMs: number; rttMs: number }> {
  const nodes = isCluster(client) ? client.nodes('master') : [client];
  const readings = (await Promise.all(nodes.map(offsetOf))).sort((a, b) => a.offsetMs - b.offsetMs);
  const median = readings[Math.floor(readings.length / 2)];
  if (!median) throw new Error('no Redis node to read the time of');
  return median;
}
