import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, EnvSchema, loadConfig } from '../src/config';
import { ECS_STOP_POLL_MS } from '../src/ecs/ecs-stop-watch';
import { createGateway } from '../src/gateway';
import { startGateway } from './helpers';

// docker/ecs holds examples that operators copy: each must name variables the gateway
// reads, the port it listens on, the files the image contains, and timeouts that agree
// with SHUTDOWN_GRACE_MS and PING_INTERVAL_MS.
const root = join(__dirname, '..', '..', '..');
const ecs = join(root, 'docker', 'ecs');
const read = <T = Record<string, unknown>>(name: string): T => JSON.parse(readFileSync(join(ecs, name), 'utf8')) as T;
const dockerfile = readFileSync(join(root, 'docker', 'Dockerfile'), 'utf8');

interface Container {
  name: string;
  command: string[];
  portMappings?: Array<{ containerPort: number }>;
  environment: Array<{ name: string; value: string }>;
  secrets?: Array<{ name: string; valueFrom: string }>;
  healthCheck: { command: string[] };
  stopTimeout: number;
  logConfiguration: { logDriver: string; options: Record<string, string> };
}
interface TaskDefinition {
  family: string;
  containerDefinitions: Container[];
}
type Attributes = { Attributes: Array<{ Key: string; Value: string }> };
const attribute = (file: string, key: string) =>
  Number(read<Attributes>(file).Attributes.find((a) => a.Key === key)?.Value);

/** What the container's environment resolves to, secrets filled with valid stand-ins. */
function configOf(c: Container) {
  const env: Record<string, string> = Object.fromEntries(c.environment.map((e) => [e.name, e.value]));
  const standIns: Record<string, string> = {
    ADMIN_TOKEN: 'a-stand-in-admin-token',
    REDIS_URL: 'rediss://redis.example.com:6379',
    JWT_SECRET: 'a-stand-in-secret-of-32-characters!',
  };
  for (const s of c.secrets ?? []) env[s.name] = standIns[s.name] ?? 'stand-in';
  return { env, config: loadConfig(env) };
}

const taskDefinitions = ['gateway-task-definition.json', 'worker-task-definition.json'];
const EXPOSED = Number(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1]);

describe('docker/ecs', () => {
  it('every file is JSON', () => {
    const files = readdirSync(ecs).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(
      [
        'gateway-load-balancer-attributes.json',
        'gateway-service.json',
        'gateway-target-group-attributes.json',
        'gateway-target-group.json',
        'gateway-task-definition.json',
        'worker-service.json',
        'worker-task-definition.json',
      ].sort(),
    );
    for (const f of files) expect(() => read(f)).not.toThrow();
  });

  describe.each(taskDefinitions)('%s', (file) => {
    const [c] = read<TaskDefinition>(file).containerDefinitions as [Container];

    it('sets only variables of the EnvSchema, with values loadConfig accepts in production', () => {
      const known = Object.keys(EnvSchema.shape);
      for (const name of [...c.environment.map((e) => e.name), ...(c.secrets ?? []).map((s) => s.name)]) {
        expect(known).toContain(name);
      }
      const { config } = configOf(c);
      expect(config.production).toBe(true);
    });

    it('runs the image entry point: node dist/main.js from the deployed gateway', () => {
      expect(c.command.slice(0, 2)).toEqual(['node', 'dist/main.js']);
      expect(dockerfile).toContain('CMD ["node", "dist/main.js"]');
      // The image's /app is `pnpm deploy` of apps/gateway: its dist/main.js is this package's build.
      expect(existsSync(join(__dirname, '..', 'dist', 'main.js'))).toBe(true);
      // The worker's subcommand comes with the task queue (`livebus-gateway worker`).
      expect(c.command.slice(2)).toEqual(file.startsWith('worker') ? ['worker'] : []);
    });

    it('checks liveness on /healthz (never readiness) at PORT, or WORKER_HTTP_PORT for the worker', () => {
      const probe = c.healthCheck.command.join(' ');
      expect(probe).toContain('/healthz');
      expect(probe).not.toContain('readiness');
      expect(probe).toContain(file.startsWith('worker') ? 'process.env.WORKER_HTTP_PORT' : 'process.env.PORT');
    });

    it('gives the graceful shutdown its SHUTDOWN_GRACE_MS plus the hard-exit second before SIGKILL', () => {
      const { config } = configOf(c);
      expect(c.stopTimeout * 1000).toBeGreaterThanOrEqual(config.shutdownGraceMs + 1_000 + 2_000);
      expect(c.stopTimeout).toBeLessThanOrEqual(120); // the Fargate maximum
    });

    it('logs to CloudWatch', () => {
      expect(c.logConfiguration.logDriver).toBe('awslogs');
      for (const key of ['awslogs-group', 'awslogs-region', 'awslogs-stream-prefix']) {
        expect(c.logConfiguration.options[key]).toBeTruthy();
      }
    });
  });

  it('the gateway listens on the port the image exposes, the service maps and the target group checks', () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    expect(config.port).toBe(EXPOSED);
    expect(c.portMappings?.[0]?.containerPort).toBe(config.port);
    const service = read<{
      taskDefinition: string;
      loadBalancers: Array<{ containerName: string; containerPort: number }>;
    }>('gateway-service.json');
    expect(service.taskDefinition).toBe('livebus-gateway');
    expect(service.loadBalancers[0]).toMatchObject({ containerName: c.name, containerPort: config.port });
    expect(read('gateway-target-group.json')).toMatchObject({
      Port: config.port,
      HealthCheckPath: '/health/readiness',
    });
    expect(read<{ taskDefinition: string }>('worker-service.json').taskDefinition).toBe('livebus-worker');
  });

  it('the deregistration delay covers the ECS stop poll plus SHUTDOWN_GRACE_MS', () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    const delayMs = attribute('gateway-target-group-attributes.json', 'deregistration_delay.timeout_seconds') * 1000;
    expect(delayMs).toBeGreaterThanOrEqual(ECS_STOP_POLL_MS + config.shutdownGraceMs + 1_000);
  });

  it('the ALB idle timeout is at least twice the ping interval, and shorter than the keep-alive of the gateway', async () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    const idleMs = attribute('gateway-load-balancer-attributes.json', 'idle_timeout.timeout_seconds') * 1000;
    expect(idleMs).toBeGreaterThanOrEqual(2 * config.pingIntervalMs);
    // The ALB, not the gateway, must close idle keep-alive HTTP connections (else: 502s).
    const gw = createGateway(defaultConfig());
    expect(idleMs).toBeLessThan(gw.server.keepAliveTimeout);
  });

  it('the Dockerfile copies every workspace manifest before its frozen install', () => {
    for (const dir of ['apps', 'packages']) {
      for (const name of readdirSync(join(root, dir))) {
        if (existsSync(join(root, dir, name, 'package.json'))) {
          expect(dockerfile).toContain(`COPY ${dir}/${name}/package.json ${dir}/${name}/`);
        }
      }
    }
  });

  it('the probed paths exist on a running gateway', async () => {
    const g = await startGateway();
    try {
      for (const path of ['/healthz', '/health/readiness']) expect((await fetch(`${g.http}${path}`)).status).toBe(200);
    } finally {
      await g.close();
    }
  });
});
