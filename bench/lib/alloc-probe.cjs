// Preloaded into a server by bench/hello-alloc.mjs (`node --require alloc-probe.cjs`, spawned with
// an IPC channel): V8's sampling heap profiler through an in-process inspector session, started
// and stopped by the parent ({ cmd: 'alloc-start' } / { cmd: 'alloc-stop', file }). Objects
// that the minor and major collectors free are counted too (most of a hello's are), or only
// those that outlived a scavenge ({ survivors: true }). On stop the
// profile is written to `file` and the parent is told ({ cmd: 'alloc-stopped' }).
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');

let session;
let survivors = false;
const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));

process.on('message', async (m) => {
  if (m?.cmd === 'alloc-start') {
    survivors = m.survivors === true;
    session = new Session();
    session.connect();
    await post('HeapProfiler.startSampling', {
      samplingInterval: m.interval,
      includeObjectsCollectedByMajorGC: true,
      // `survivors`: only what outlived a scavenge (bench/hello-alloc.mjs --survivors).
      includeObjectsCollectedByMinorGC: m.survivors !== true,
    });
    process.send({ cmd: 'alloc-started' });
  } else if (m?.cmd === 'alloc-stop') {
    // Counting survivors only: what is still in the young generation has not met a scavenge
    // yet, live or not. One now frees its garbage (left out, like every scavenge's) and
    // leaves what is live. (`gc` is there when the server runs with --expose-gc.)
    if (survivors && typeof globalThis.gc === 'function') globalThis.gc({ type: 'minor' });
    const { profile } = await post('HeapProfiler.stopSampling');
    session.disconnect();
    writeFileSync(m.file, JSON.stringify(profile));
    process.send({ cmd: 'alloc-stopped' });
  }
});
