// What a hello (upgrade to welcome) allocates in the server, per connection, by module and by
// function: V8's sampling heap profiler, with the objects the minor and major collectors free
// counted too (a hello's are nearly all short-lived), while the real client connects N users
// (200 at a time, from a separate load process as in bench/run.mjs). The livebus gateway runs as
// in the harness (JWT, a private redis-server, LOG_LEVEL=warn); the plain `ws` target
// (bench/targets/ws-server.mjs) is measured the same way for comparison. Bytes are sampled (one
// sample per `--interval` bytes on average): read them as shares and as before/after figures in
// the same conditions. Unlike CPU time they do not move with the machine's load.
//
//   node bench/hello-alloc.mjs [--clients 2000] [--warmup 400] [--interval 1024] [--top 30]
//     [--targets livebus,ws] [--survivors]
//
// `--survivors` leaves out what the young-generation collector freed: what is left outlived a
// scavenge (the connection's own state, and the garbage still alive when a scavenge came, which
// is copied and then promoted to the old generation).
//
// Per target it prints: bytes per connection by module (the innermost frame outside Node's own
// modules; a livebus source file, or the npm package), the same split by the livebus function
// that called into the package, and the functions that allocated the most (function, original
// file:line of the function, through the bundle's source map).
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, gatewayEnv, get, sleep, startRedis } from './lib/common.mjs';

const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '400' },
    interval: { type: 'string', default: '1024' },
    survivors: { type: 'boolean', default: false },
    top: { type: 'string', default: '30' },
    targets: { type: 'string', default: 'livebus,ws' },
  },
});
const clients = Number(opt.clients);
const warmup = Number(opt.warmup);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const dir = mkdtempSync(path.join(os.tmpdir(), 'livebus-hello-alloc-'));
const probe = path.join(here, 'lib', 'alloc-probe.cjs');

/** Waits for one IPC message `cmd` from `proc`, at most `ms`. */
function reply(proc, cmd, ms = 60_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${cmd} within ${ms} ms`)), ms);
    const on = (m) => {
      if (m?.cmd !== cmd) return;
      clearTimeout(timer);
      proc.off('message', on);
      resolve(m);
    };
    proc.on('message', on);
  });
}

async function measure(target) {
  const redis = await startRedis();
  const port = await freePort();
  const script =
    target === 'livebus'
      ? (process.env.GATEWAY_MAIN ?? path.join(root, 'apps/gateway/dist/main.js'))
      : path.join(here, 'targets', 'ws-server.mjs');
  // --expose-gc: with --survivors the probe collects the young generation before it stops, so
  // garbage not yet reached by a scavenge is not counted as having outlived one.
  const server = spawn(process.execPath, ['--expose-gc', '--require', probe, script], {
    cwd: dir,
    env: gatewayEnv(port, redis.url, SECRET),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let load;
  try {
    const base = `http://127.0.0.1:${port}`;
    const ready = target === 'livebus' ? `${base}/health/readiness` : `${base}/healthz`;
    const until = Date.now() + 30_000;
    while ((await get(ready, 500)).status !== 200) {
      if (Date.now() > until) throw new Error(`${target} not ready within 30 s`);
      await sleep(20);
    }
    load = fork(
      path.join(here, 'lib', 'load.mjs'),
      ['--target', target, '--url', base, '--secret', SECRET, '--users', String(warmup + clients)],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    await reply(load, 'up');
    // Warm-up: the JIT, the first Redis connections and scripts.
    let done = reply(load, 'connected', 120_000);
    load.send({ cmd: 'connect', from: 0, to: warmup });
    await done;
    await sleep(500);
    let started = reply(server, 'alloc-started');
    server.send({ cmd: 'alloc-start', interval: Number(opt.interval), survivors: opt.survivors });
    await started;
    const cpu0 = cpuSeconds(server.pid);
    done = reply(load, 'connected', 300_000);
    load.send({ cmd: 'connect', from: warmup, to: warmup + clients });
    const c = await done;
    await sleep(300); // the last welcomes' bookkeeping
    const cpu1 = cpuSeconds(server.pid);
    const file = path.join(dir, `${target}.heapprofile`);
    started = reply(server, 'alloc-stopped');
    server.send({ cmd: 'alloc-stop', file });
    await started;
    return {
      profile: JSON.parse(readFileSync(file, 'utf8')),
      open: c.open,
      cpuUsPerConn: ((cpu1 - cpu0) * 1e6) / clients,
    };
  } finally {
    load?.kill('SIGKILL');
    server.kill('SIGKILL');
    redis.stop();
  }
}

/** A script URL (file:// for ES modules, a plain path for CommonJS) as a path. */
const toPath = (url) => (url.startsWith('file://') ? fileURLToPath(url) : url);

// Source maps of the bundle (dist/main.js, dist/cli/*.js), by script URL.
const maps = new Map();
function mapOf(url) {
  if (!maps.has(url)) {
    let map = null;
    if (url.startsWith('file://')) {
      const file = `${fileURLToPath(url)}.map`;
      if (existsSync(file)) map = new SourceMap(JSON.parse(readFileSync(file, 'utf8')));
    }
    maps.set(url, map);
  }
  return maps.get(url);
}

/** A frame as { fn, file, line, module }: original source through the source map when there is one. */
const frames = new Map();
function frameOf(f) {
  const key = `${f.functionName}|${f.url}|${f.lineNumber}|${f.columnNumber}`;
  let r = frames.get(key);
  if (r) return r;
  let file = f.url;
  let line = f.lineNumber + 1;
  const map = f.url ? mapOf(f.url) : null;
  if (map) {
    const e = map.findEntry(f.lineNumber, f.columnNumber);
    if (e?.originalSource) {
      file = e.originalSource;
      line = e.originalLine + 1;
    }
  }
  file = file.replace(/^file:\/\//, '');
  let module;
  const nm = file.lastIndexOf('node_modules/');
  if (!file) module = '(native)';
  else if (file.startsWith('node:')) module = 'node';
  else if (nm >= 0) {
    const parts = file.slice(nm + 'node_modules/'.length).split('/');
    module = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    file = `${module}/${parts.slice(parts[0].startsWith('@') ? 2 : 1).join('/')}`;
  } else {
    const rel = path.relative(root, path.resolve(path.dirname(toPath(f.url)), file));
    file = rel.startsWith('..') ? file : rel;
    module = file;
  }
  r = { fn: f.functionName || '(anonymous)', file, line, module };
  frames.set(key, r);
  return r;
}
/** The project's own code (the gateway and its packages, or the bench's target). */
const ours = (fr) => /^(apps|packages|bench)\//.test(fr.file);

/** The summary's groups: a module (npm package, project file, Node module) to what it is. */
const GROUPS = [
  ['ioredis (commands, replies)', /^(ioredis|redis-parser|denque|standard-as-callback|cluster-key-slot)$/],
  ['ws (upgrade, frames)', /^ws$/],
  [
    'Node: TCP socket, HTTP request parsing, streams',
    /^node: (net|_http_|internal\/streams|stream|internal\/stream_base)/,
  ],
  [
    'Node: promises, nextTick, async hooks, timers',
    /^node: (internal\/process|internal\/async_hooks|internal\/timers|timers)/,
  ],
  ['zod, protocol (hello parse, frames)', /^(zod|packages\/protocol\/)/],
  ['token (hs256, principal)', /^(jose|apps\/gateway\/src\/auth\/)/],
  ['presence', /^apps\/gateway\/src\/(fleet\/presence\/|core\/presence)/],
  ['bus subscribe, stream head', /^(apps\/gateway\/src\/fleet\/bus\/|packages\/publisher\/)/],
  ['session hub, session', /^apps\/gateway\/src\/core\/(session-hub|session)\.ts/],
  ['the welcome (resume.ts)', /^apps\/gateway\/src\/core\/resume\.ts/],
  ['hello, admission, auth call (handshake.ts)', /^apps\/gateway\/src\/core\/(handshake|connection-handler)\.ts/],
  ['transport (adapter, sliced queue, header deadline)', /^apps\/gateway\/src\/transport\//],
  ['listeners manager', /^apps\/gateway\/src\/listeners\//],
  ['logging (logger.ts, winston)', /^(apps\/gateway\/src\/logger\.ts|winston|logform|triple-beam|@colors\/colors)$/],
  ['other gateway code', /^(apps|packages)\//],
  ['the ws target (ws-server.mjs)', /^bench\//],
  ['V8 / Node, other', /./],
];
const groupOf = (module) => GROUPS.find(([, re]) => re.test(module))[0];

function report(target, { profile, open, cpuUsPerConn }) {
  const byModule = new Map();
  const byGroup = new Map();
  const byCaller = new Map();
  const byFunction = new Map();
  const add = (m, k, b) => m.set(k, (m.get(k) ?? 0) + b);
  let total = 0;
  let probeBytes = 0;
  const stack = [];
  const walk = (node) => {
    stack.push(frameOf(node.callFrame));
    const b = node.selfSize;
    // The probe's own work (the profile it returns at stop) is not the server's.
    if (b > 0 && stack.some((fr) => fr.file.endsWith('alloc-probe.cjs'))) probeBytes += b;
    else if (b > 0) {
      total += b;
      // The innermost frame outside Node's own modules, and the innermost of the project's.
      let owner;
      let caller;
      for (let i = stack.length - 1; i >= 0 && !(owner && caller); i--) {
        const fr = stack[i];
        if (!owner && fr.module !== 'node' && fr.module !== '(native)' && fr.fn !== '(root)') owner = fr;
        if (!caller && ours(fr)) caller = fr;
      }
      const leaf = stack[stack.length - 1];
      const nodeLeaf = stack.findLast((fr) => fr.module === 'node');
      const mod = owner
        ? owner.module
        : nodeLeaf
          ? `node: ${nodeLeaf.file.replace(/^node:/, '')}`
          : `(${leaf.fn.replace(/[()]/g, '')})`;
      add(byModule, mod, b);
      add(byGroup, groupOf(mod), b);
      if (owner && owner !== caller && caller)
        add(byCaller, `${owner.module} <- ${caller.fn} ${caller.file}:${caller.line}`, b);
      add(
        byFunction,
        `${leaf.fn} ${leaf.file}:${leaf.line}${owner && owner !== leaf ? ` (in ${owner.fn} ${owner.file}:${owner.line})` : ''}`,
        b,
      );
    }
    for (const child of node.children) walk(child);
    stack.pop();
  };
  walk(profile.head);
  const per = (b) => (b / clients).toFixed(0).padStart(7);
  const top = Number(opt.top);
  console.log(
    `\n## ${target}: ${clients} hellos (${open} open), ${(total / clients / 1024).toFixed(1)} KB ${opt.survivors ? 'outliving a scavenge' : 'allocated'} per connection (sampled), server CPU ${cpuUsPerConn.toFixed(0)} µs per connection`,
  );
  console.log(`(left out: ${(probeBytes / clients).toFixed(0)} B per connection allocated by the profiler's probe)`);
  console.log('\nbytes per connection by module (innermost frame outside Node; else the Node module):');
  for (const [k, b] of [...byModule].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${per(b)}  ${k}`);
  console.log('\npackage allocations by the livebus function that called into the package:');
  for (const [k, b] of [...byCaller].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${per(b)}  ${k}`);
  console.log('\nby allocating function (function file:line of its definition):');
  for (const [k, b] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${per(b)}  ${k}`);
  return { total: total / clients, byGroup };
}

const results = {};
try {
  for (const target of opt.targets.split(',')) results[target] = report(target, await measure(target));
  const names = Object.keys(results);
  console.log(`\n## by group, bytes per connection (sampled)\n`);
  console.log(`| group | ${names.join(' | ')} |`);
  console.log(`| --- |${names.map(() => ' ---: |').join('')}`);
  for (const [g] of GROUPS) {
    const cells = names.map((t) => results[t].byGroup.get(g) ?? 0);
    if (cells.some((c) => c / clients >= 1))
      console.log(`| ${g} | ${cells.map((c) => (c / clients).toFixed(0)).join(' | ')} |`);
  }
  console.log(`| **total** | ${names.map((t) => results[t].total.toFixed(0)).join(' | ')} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
