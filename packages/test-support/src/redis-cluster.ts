import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { sleep } from './wait';

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Replicas per master (`--cluster-replicas`); with 1, a killed master's replica takes over. @default 0 */
  replicas?: number;
  /** `cluster-node-timeout`: how long a master may be unreachable before its replica is promoted. @default 2000 */
  nodeTimeoutMs?: number;
  /** Every node requires this password (`requirepass`, and `masterauth` for replicas); `url` carries it. */
  password?: string;
}

/** One node as `CLUSTER NODES` describes it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | undefined;
  /** Slot ranges served, inclusive (masters only). */
  slots: Array<[number, number]>;
  /** Flagged `fail` (or `fail?`) by the node asked. */
  failing: boolean;
}

/** A real Redis Cluster owned by a test (three masters, optionally with replicas), nothing persisted. */
export interface RedisClusterHandle {
  /** Every node started (masters first), as `{ host, port }` for ioredis `Cluster` seeds. */
  readonly nodes: Array<{ host: string; port: number }>;
  /** `redis://127.0.0.1:<port>` of the first node, a seed for clients that take a URL. */
  readonly url: string;
  /** The topology as a live node sees it (`CLUSTER NODES`). */
  topology(): Promise<ClusterNodeView[]>;
  /** The master serving `key`'s slot now. */
  masterOf(key: string): Promise<ClusterNodeView>;
  /** SIGKILLs one node (a master dies: its replica is promoted after the node timeout). */
  kill(port: number): Promise<void>;
  /** Starts a killed node again with its cluster config; a replaced master rejoins as a replica. */
  restart(port: number): Promise<void>;
  /**
   * A planned failover: `CLUSTER FAILOVER` on `replicaPort`, which waits for the
   * master to hand over every write it acknowledged, then promotes the replica.
   */
  failover(replicaPort: number): Promise<void>;
  /**
   * Waits until every live node reports `cluster_state:ok` and sees every slot
   * served by a live master (after a kill: once the replica was promoted), and
   * every replica of a live master has its replication link up.
   */
  waitStable(timeoutMs?: number): Promise<void>;
  /**
   * The last `lines` lines of each node's own log (`--logfile`: roles taken, failovers
   * voted and timed out, replication links and syncs), for a failure report.
   */
  logs(lines?: number): string;
  /** Kills every node and removes their cluster config files. */
  stop(): Promise<void>;
}

const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const cli = process.env.REDIS_CLI_BIN ?? 'redis-cli';
const SLOTS = 16_384;
const run = promisify(execFile);

/** The password of the nodes on each port (a cluster started with one), for redis-cli. */
const passwords = new Map<number, string>();

/** redis-cli's environment for a node: its password, if any, in REDISCLI_AUTH. */
function cliEnv(port: number | undefined): NodeJS.ProcessEnv {
  const password = port === undefined ? undefined : passwords.get(port);
  return password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: password };
}

function redisCli(args: string[], port?: number): string {
  const res = spawnSync(cli, args, { encoding: 'utf8', env: cliEnv(port) });
  if (res.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${res.stderr || res.stdout}`);
  return res.stdout;
}

/**
 * redis-cli on the node on `port` without blocking the test's event loop (the clients under test
 * run in it), with the node's password when its cluster has one.
 */
export async function askRedis(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(cli, ['-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 2_000,
    env: cliEnv(port),
  });
  return stdout;
}

/** Parses `CLUSTER NODES`. */
export function parseClusterNodes(text: string): ClusterNodeView[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-', , , , , ...slotFields] = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(address)?.[1]);
      const flagList = flags.split(',');
      const slots = slotFields
        .filter((s) => !s.startsWith('['))
        .map((s): [number, number] => {
          const [from, to] = s.split('-').map(Number);
          return [from as number, to ?? (from as number)];
        });
      return {
        id,
        port,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        slots,
        failing: flagList.includes('fail') || flagList.includes('fail?'),
      };
    });
}

/**
 * Starts three masters (and `replicas` replicas of each) as `redis-server
 * --cluster-enabled yes` on free ports, joins them with `redis-cli --cluster
 * create` and waits until the cluster is stable (see {@link RedisClusterHandle.waitStable}).
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  if (spawnSync(bin, ['--version']).status !== 0 || spawnSync(cli, ['--version']).status !== 0) {
    throw new Error(
      `redis-server / redis-cli not found (looked for "${bin}", "${cli}"); install the Debian package redis-server`,
    );
  }
  const replicas = options.replicas ?? 0;
  const count = 3 * (1 + replicas);
  // A free port is free when probed, not when the node binds it: another process (a parallel
  // test) can take it in between, and that node exits at once. Then start again on new ports.
  for (let attempt = 1; ; attempt++) {
    // Each node's client port and its cluster bus port (set explicitly: the
    // default, port + 10000, may not exist for a high free port).
    const taken: number[] = [];
    while (taken.length < 2 * count) {
      const p = await freePort();
      if (!taken.includes(p)) taken.push(p);
    }
    const cluster = new LocalCluster(
      taken.slice(0, count),
      taken.slice(count),
      options.nodeTimeoutMs ?? 2_000,
      options.password,
    );
    try {
      const deadline = Date.now() + 15_000;
      for (const port of cluster.ports) await cluster.waitPong(port, deadline);
      redisCli(
        [
          '--cluster',
          'create',
          ...cluster.ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        cluster.ports[0],
      );
      await cluster.waitStable();
      // Every node must know every other before a failover can be voted.
      await waitForKnown(cluster.ports, count, deadline);
      return cluster;
    } catch (error) {
      const lostPort = cluster.ports.some((p) => !cluster.isAlive(p));
      await cluster.stop();
      if (!lostPort || attempt === 3) throw error;
    }
  }
}

/** The nodes' processes, their ports and their config folder: the handle {@link startRedisCluster} returns. */
class LocalCluster implements RedisClusterHandle {
  readonly nodes: Array<{ host: string; port: number }>;
  readonly url: string;
  readonly #dir = mkdtempSync(join(tmpdir(), 'livebus-cluster-'));
  readonly #children = new Map<number, ChildProcess>();

  constructor(
    readonly ports: number[],
    private readonly busPorts: number[],
    private readonly nodeTimeoutMs: number,
    private readonly password?: string,
  ) {
    this.nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
    const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
    this.url = `redis://${auth}127.0.0.1:${ports[0]}`;
    if (password !== undefined) for (const port of ports) passwords.set(port, password);
    for (let i = 0; i < ports.length; i++) this.#launch(i);
  }

  #launch(i: number): void {
    const port = this.ports[i] as number;
    const args = [
      ...['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'],
      ...['--cluster-port', String(this.busPorts[i]), '--cluster-config-file', join(this.#dir, `nodes-${port}.conf`)],
      ...['--cluster-node-timeout', String(this.nodeTimeoutMs)],
      // A replica cut off from its master for long (a loaded test host) may still take over.
      ...['--cluster-replica-validity-factor', '0'],
      ...['--save', '', '--appendonly', 'no', '--dir', this.#dir],
      ...['--logfile', this.#logOf(port)],
      ...(this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password]),
    ];
    this.#children.set(port, spawn(bin, args, { stdio: 'ignore' }));
  }

  #logOf(port: number): string {
    return join(this.#dir, `node-${port}.log`);
  }

  logs(lines = 60): string {
    return this.ports
      .map((port) => {
        const file = this.#logOf(port);
        const tail = existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines) : [];
        return [`--- redis node ${port} ---`, ...tail].join('\n');
      })
      .join('\n');
  }

  /** Whether the node's process runs (a node that could not bind its port exits at once). */
  isAlive(port: number): boolean {
    return this.#alive(port);
  }

  #alive(port: number): boolean {
    const c = this.#children.get(port);
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  async waitPong(port: number, deadline: number): Promise<void> {
    while ((await askRedis(port, 'ping').catch(() => '')).trim() !== 'PONG') {
      if (!this.#alive(port)) throw new Error(`cluster node on port ${port} exited (its port taken?)`);
      if (Date.now() > deadline) throw new Error(`cluster node on port ${port} did not answer`);
      await sleep(20);
    }
  }

  async topology(): Promise<ClusterNodeView[]> {
    for (const port of this.ports.filter((p) => this.#alive(p))) {
      const text = await askRedis(port, 'cluster', 'nodes').catch(() => undefined);
      if (text) return parseClusterNodes(text);
    }
    throw new Error('no cluster node answers');
  }

  async masterOf(key: string): Promise<ClusterNodeView> {
    const any = this.ports.find((p) => this.#alive(p)) as number;
    const slot = Number((await askRedis(any, 'cluster', 'keyslot', key)).trim());
    const master = (await this.topology()).find(
      (n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!master) throw new Error(`no master serves slot ${slot} (${key})`);
    return master;
  }

  async kill(port: number): Promise<void> {
    const c = this.#children.get(port);
    if (c) await killProcess(c);
  }

  async restart(port: number): Promise<void> {
    if (this.#alive(port)) return;
    this.#launch(this.ports.indexOf(port));
    await this.waitPong(port, Date.now() + 15_000);
    await this.waitStable();
  }

  async failover(replicaPort: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    // A manual failover the master does not complete in 5 s (Redis' CLUSTER_MF_TIMEOUT:
    // a loaded host, a replica still syncing after the last one) is abandoned by Redis
    // without a word: ask again until it takes.
    for (;;) {
      const answer = (await askRedis(replicaPort, 'cluster', 'failover')).trim();
      if (answer !== 'OK') throw new Error(`CLUSTER FAILOVER on ${replicaPort}: ${answer}`);
      const attemptEnd = Math.min(deadline, Date.now() + 6_000);
      while (!(await askRedis(replicaPort, 'role')).startsWith('master') && Date.now() < attemptEnd) await sleep(20);
      if ((await askRedis(replicaPort, 'role')).startsWith('master')) break;
      if (Date.now() > deadline) throw new Error(`${replicaPort} was not promoted`);
    }
    await this.waitStable();
  }

  async waitStable(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = await this.#unstable();
    while (why !== undefined) {
      if (Date.now() > deadline) throw new Error(`the cluster did not settle in ${timeoutMs} ms: ${why}`);
      await sleep(50);
      why = await this.#unstable();
    }
  }

  /** Why the cluster is not stable yet, or undefined when it is. */
  async #unstable(): Promise<string | undefined> {
    for (const port of this.ports.filter((p) => this.#alive(p))) {
      const info = await askRedis(port, 'cluster', 'info').catch(() => '');
      if (!info.includes('cluster_state:ok')) return `node ${port} is not ok`;
      const view = parseClusterNodes(await askRedis(port, 'cluster', 'nodes'));
      let served = 0;
      for (const node of view) {
        if (node.role !== 'master' || node.slots.length === 0) continue;
        if (node.failing || !this.#alive(node.port)) return `node ${port} sees slots on ${node.port}, which is down`;
        for (const [from, to] of node.slots) served += to - from + 1;
      }
      if (served !== SLOTS) return `node ${port} sees ${served} slots served`;
      const me = view.find((n) => n.port === port);
      const master = view.find((n) => n.id === me?.masterId);
      if (me?.role === 'replica' && master && this.#alive(master.port)) {
        const replication = await askRedis(port, 'info', 'replication');
        if (!replication.includes('master_link_status:up')) return `replica ${port} is not in sync`;
      }
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#children.values()].map(killProcess));
    for (const port of this.ports) passwords.delete(port);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

function killProcess(c: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

async function waitForKnown(ports: number[], count: number, deadline: number): Promise<void> {
  for (const port of ports) {
    while (!(await askRedis(port, 'cluster', 'info')).includes(`cluster_known_nodes:${count}`)) {
      if (Date.now() > deadline) throw new Error(`cluster node on port ${port} does not know every node`);
      await sleep(50);
    }
  }
}
