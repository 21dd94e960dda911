// Listener failover and WORKFLOW.watch figures (issue 22 items 3 and 4), with real processes:
// Google's Firestore emulator, a private redis-server, one survivor gateway and, per round, a
// holder gateway (apps/gateway/dist/main.js; build first). Each round: a user with a tab on the
// holder (which takes the user's listeners) and a tab on the survivor (standby);
//  - watch: the survivor's tab calls WORKFLOW.watch on a job of the user (the survivor does not
//    hold the lease: the holder attaches it), timed from the call to the job's initial state on
//    the tab, and to the reply;
//  - failover: the holder is SIGKILLed while a writer changes the user's documents every
//    --every ms; timed from the kill to the first change written after it reaching the tab.
// Every write is checked to reach the tab once. Prints JSON with p50 / max over the rounds.
//
//   node bench/listener-failover.mjs [--rounds 10] [--every 100]
//
// LISTENER_FAILOVER_MS and LISTENER_LEASE_TTL_MS in the environment reach both gateways
// (defaults: 2000 and 15000). Needs the Debian package google-cloud-cli-firestore-emulator
// (or FIRESTORE_EMULATOR_JAR) and redis-server.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { freePort, now, sleep, startRedis } from './lib/common.mjs';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '10' }, every: { type: 'string', default: '100' } },
});
const rounds = Number(values.rounds);
const everyMs = Number(values.every);
const children = [];
const stopAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('exit', stopAll);

async function waitUntil(what, check, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Firestore emulator.
const jar =
  process.env.FIRESTORE_EMULATOR_JAR ??
  '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';
const emuPort = await freePort();
const host = `127.0.0.1:${emuPort}`;
children.push(
  spawn(
    'java',
    [
      '-cp',
      jar,
      'com.google.cloud.datastore.emulator.firestore.CloudFirestore',
      '--host=127.0.0.1',
      `--port=${emuPort}`,
    ],
    { stdio: 'ignore' },
  ),
);
await waitUntil(
  'the emulator',
  async () =>
    (
      await fetch(`http://${host}/`).then(
        (r) => r.text(),
        () => '',
      )
    ).trim() === 'Ok',
  60_000,
);
const project = 'livebus-failover-bench';
const write = (path, fields) =>
  fetch(`http://${host}/v1/projects/${project}/databases/(default)/documents/${path}`, {
    method: 'PATCH',
    headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
    body: JSON.stringify({ fields }),
  }).then((r) => {
    if (!r.ok) throw new Error(`write ${path}: ${r.status}`);
  });

const redis = await startRedis();
children.push(redis.proc);
const listenersFile = join(tmpdir(), `livebus-failover-bench-${process.pid}.json`);
writeFileSync(
  listenersFile,
  JSON.stringify({
    user: [{ name: 'notifications', collection: 'users/{uid}/notifications' }],
    workflow: { document: 'jobs/{job_id}', owner_field: 'owner_id' },
  }),
);
const main = fileURLToPath(new URL('../apps/gateway/dist/main.js', import.meta.url));

async function gateway(instanceId) {
  const port = await freePort();
  const proc = spawn(process.execPath, [main], {
    stdio: 'ignore',
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      INSTANCE_ID: instanceId,
      REDIS_URL: redis.url,
      AUTH_MODE: 'none',
      LISTENERS_FILE: listenersFile,
      FIREBASE_PROJECT_ID: project,
      FIRESTORE_EMULATOR_HOST: host,
      METADATA_SERVER_DETECTION: 'none',
      RATE_LIMIT_FRAMES_PER_S: '0',
      LOG_LEVEL: 'error',
    },
  });
  children.push(proc);
  await waitUntil('a gateway', () =>
    fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    ),
  );
  return { proc, port, url: `ws://127.0.0.1:${port}/ws` };
}

/** A tab of `uid`: every event with the time it arrived, and RPC answers. */
async function tab(url, uid) {
  const ws = new WebSocket(url);
  const events = [];
  const answers = new Map();
  ws.on('message', (raw) => {
    const f = JSON.parse(raw.toString());
    if (f.type === 'event') events.push({ at: now(), ...f });
    if (f.type === 'rpc_result' || f.type === 'rpc_error') answers.set(f.id, { at: now(), ...f });
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const welcome = new Promise((resolve) => ws.once('message', resolve));
  ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: uid }));
  await welcome;
  let id = 0;
  return {
    events,
    changes: (path) => events.filter((e) => e.event === 'listener.change' && e.data.path === path),
    call: async (method, args) => {
      const mine = ++id;
      ws.send(JSON.stringify({ type: 'rpc', id: mine, method, args }));
      return waitUntil(`the answer to ${method}`, () => answers.get(mine));
    },
    close: () => ws.close(),
  };
}

const quantile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const round1 = (x) => Math.round(x * 10) / 10;

const survivor = await gateway('gw-survivor');
const figures = { failover: [], watchInitial: [], watchReply: [], duplicates: 0, missing: 0 };
for (let r = 1; r <= rounds; r++) {
  const uid = `fo-${r}`;
  const holder = await gateway(`gw-holder-${r}`);
  const path = (n) => `users/${uid}/notifications/w${String(n).padStart(4, '0')}`;
  await write(path(0), { n: { integerValue: '0' } });
  const onHolder = await tab(holder.url, uid);
  await waitUntil('the initial state on the holder', () => onHolder.changes(path(0))[0]);
  const onSurvivor = await tab(survivor.url, uid);

  // WORKFLOW.watch on the instance without the lease.
  const job = `job-${r}`;
  await write(`jobs/${job}`, { owner_id: { stringValue: uid }, status: { stringValue: 'queued' } });
  const called = now();
  const answer = await onSurvivor.call('WORKFLOW.watch', [job]);
  if (answer.type !== 'rpc_result') throw new Error(`WORKFLOW.watch: ${JSON.stringify(answer)}`);
  const initial = await waitUntil('the job initial state', () =>
    onSurvivor.changes(`jobs/${job}`).find((e) => e.data.source === 'workflow'),
  );
  figures.watchInitial.push(initial.at - called);
  figures.watchReply.push(answer.at - called);

  // SIGKILL the holder while writing.
  let n = 1;
  const written = [];
  await write(path(n), { n: { integerValue: String(n) } });
  written.push(n++);
  await waitUntil('a write before the kill', () => onSurvivor.changes(path(1))[0]);
  holder.proc.kill('SIGKILL');
  const killedAt = now();
  const firstAfter = n;
  let after = 0;
  while (!onSurvivor.changes(path(firstAfter))[0] || after < 5) {
    if (onSurvivor.changes(path(firstAfter))[0]) after++;
    await write(path(n), { n: { integerValue: String(n) } });
    written.push(n++);
    if (now() - killedAt > 60_000) throw new Error('no failover within 60 s');
    await sleep(everyMs);
  }
  figures.failover.push(onSurvivor.changes(path(firstAfter))[0].at - killedAt);
  await waitUntil('every write on the survivor', () => written.every((w) => onSurvivor.changes(path(w))[0]), 20_000);
  await sleep(500); // a late second copy, were there one
  figures.duplicates += written.filter((w) => onSurvivor.changes(path(w)).length > 1).length;
  figures.missing += written.filter((w) => onSurvivor.changes(path(w)).length === 0).length;
  onSurvivor.close();
  onHolder.close();
  process.stderr.write(
    `round ${r}: failover ${Math.round(figures.failover.at(-1))} ms, watch initial ${Math.round(figures.watchInitial.at(-1))} ms\n`,
  );
  await sleep(300); // the survivor's detach delay is not what is measured; let the user go
}

const summary = (xs) => ({ p50: round1(quantile(xs, 0.5)), max: round1(Math.max(...xs)), all: xs.map(Math.round) });
console.log(
  JSON.stringify(
    {
      rounds,
      write_every_ms: everyMs,
      listener_failover_ms: process.env.LISTENER_FAILOVER_MS ?? '2000 (default)',
      listener_lease_ttl_ms: process.env.LISTENER_LEASE_TTL_MS ?? '15000 (default)',
      sigkill_to_next_change_ms: summary(figures.failover),
      watch_elsewhere_to_initial_state_ms: summary(figures.watchInitial),
      watch_elsewhere_to_reply_ms: summary(figures.watchReply),
      duplicates: figures.duplicates,
      missing: figures.missing,
    },
    null,
    2,
  ),
);
stopAll();
process.exit(0);
