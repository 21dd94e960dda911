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
  image: string;
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
  executionRoleArn: string;
  taskRoleArn: string;
  containerDefinitions: Container[];
}
interface PolicyDocument {
  Statement: Array<{ Effect: string; Action: string | string[]; Resource: string | string[] }>;
}
const list = (v: string | string[]) => (Array.isArray(v) ? v : [v]);
/** IAM's wildcards: `*` any run of characters, `?` any one. */
const wildcard = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
/** Whether an Allow statement of the policy grants `action` on `resource` (there are no Deny statements). */
const allows = (policy: PolicyDocument, action: string, resource: string) =>
  policy.Statement.some(
    (s) =>
      s.Effect === 'Allow' &&
      list(s.Action).some((a) => wildcard(a).test(action)) &&
      list(s.Resource).some((r) => wildcard(r).test(resource)),
  );
type Attributes = { Attributes: Array<{ Key: string; Value: string }> };
const attribute = (file: string, key: string) =>
  Number(read<Attributes>(file).Attributes.find((a) => a.Key === key)?.Value);

/** What the container's environment resolves to, secrets filled with valid stand-ins (read as its command does). */
function configOf(c: Container) {
  const env: Record<string, string> = Object.fromEntries(c.environment.map((e) => [e.name, e.value]));
  const standIns: Record<string, string> = {
    ADMIN_TOKEN: 'a-stand-in-admin-token',
    REDIS_URL: 'rediss://redis.example.com:6379',
    JWT_SECRET: 'a-stand-in-secret-of-32-characters!',
  };
  for (const s of c.secrets ?? []) env[s.name] = standIns[s.name] ?? 'stand-in';
  // The worker checks no tokens: its task sets no token settings (loadConfig's worker role).
  return { env, config: loadConfig(env, { role: c.command.includes('worker') ? 'worker' : 'gateway' }) };
}

const taskDefinitions = ['gateway-task-definition.json', 'worker-task-definition.json'];
const EXPOSED = Number(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1]);

describe('docker/ecs', () => {
  it('every file is JSON', () => {
    const files = readdirSync(ecs).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(
      [
        'ecs-tasks-trust-policy.json',
        'execution-role-policy.json',
        'gateway-listener-rule.json',
        'gateway-listener.json',
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

  it('the target group checks readiness on the HEALTH_PORT the gateway task sets and maps', () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    expect(config.healthPort).toBeDefined();
    expect(read('gateway-target-group.json')).toMatchObject({ HealthCheckPort: String(config.healthPort) });
    expect(c.portMappings?.map((m) => m.containerPort)).toContain(config.healthPort);
  });

  it('the worker serves /healthz on the default WORKER_HTTP_PORT, apart from the gateway’s ports, here and in compose', () => {
    const [gateway] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const [worker] = read<TaskDefinition>('worker-task-definition.json').containerDefinitions as [Container];
    const gatewayConfig = configOf(gateway).config;
    const workerPort = configOf(worker).config.workerHttpPort;
    expect(workerPort).toBe(defaultConfig().workerHttpPort);
    expect([gatewayConfig.port, gatewayConfig.healthPort]).not.toContain(workerPort);
    expect(worker.healthCheck.command.join(' ')).toContain(`process.env.WORKER_HTTP_PORT||${workerPort})`);
    // compose.yaml sets no WORKER_HTTP_PORT: its worker's health check probes the default.
    const compose = readFileSync(join(root, 'docker', 'compose.yaml'), 'utf8');
    expect(compose).not.toContain('WORKER_HTTP_PORT:');
    const composeWorker = compose.split(/^ {2}worker:$/m)[1] ?? '';
    expect([...composeWorker.matchAll(/127\.0\.0\.1:(\d+)\/healthz/g)].map((m) => Number(m[1]))).toEqual([workerPort]);
  });

  it('the listener forwards to the service’s target group, on the load balancer whose attributes are set', () => {
    const listener = read<{
      LoadBalancerArn: string;
      Protocol: string;
      Certificates?: Array<{ CertificateArn: string }>;
      DefaultActions: Array<{ Type: string; TargetGroupArn: string }>;
    }>('gateway-listener.json');
    const service = read<{ loadBalancers: Array<{ targetGroupArn: string }> }>('gateway-service.json');
    const targetGroupArn = service.loadBalancers[0]?.targetGroupArn;
    expect(read<{ TargetGroupArn: string }>('gateway-target-group-attributes.json').TargetGroupArn).toBe(
      targetGroupArn,
    );
    const rule = read<{ Actions: Array<{ Type: string; TargetGroupArn: string }> }>('gateway-listener-rule.json');
    expect(rule.Actions).toEqual([{ Type: 'forward', TargetGroupArn: targetGroupArn }]);
    expect(listener.LoadBalancerArn).toBe(
      read<{ LoadBalancerArn: string }>('gateway-load-balancer-attributes.json').LoadBalancerArn,
    );
    expect(listener.Protocol).toBe('HTTPS');
    expect(listener.Certificates?.length).toBe(1);
  });

  it('the internet-facing listener forwards the public paths only: the admin endpoints get a 404 from the ALB', () => {
    type Action = { Type: string; TargetGroupArn?: string; FixedResponseConfig?: { StatusCode: string } };
    const listener = read<{ DefaultActions: Action[] }>('gateway-listener.json');
    const rule = read<{
      Conditions: Array<{ Field: string; PathPatternConfig: { Values: string[] } }>;
      Actions: Action[];
    }>('gateway-listener-rule.json');
    expect(listener.DefaultActions).toEqual([
      expect.objectContaining({
        Type: 'fixed-response',
        FixedResponseConfig: expect.objectContaining({ StatusCode: '404' }),
      }),
    ]);
    expect(rule.Conditions.map((c) => c.Field)).toEqual(['path-pattern']);
    // ALB path patterns: case-sensitive, `*` any run of characters, `?` any one; the query is not part of the path.
    const patterns = rule.Conditions[0]?.PathPatternConfig.Values.map(wildcard) ?? [];
    const forwarded = (path: string) => patterns.some((p) => p.test(path));
    const admin = ['/metrics', '/ws-metrics', '/debug', '/cluster', '/dashboard', '/dashboard/stream'];
    const paths = [...admin, '/ws', '/rpc', '/publish', '/healthz', '/health/readiness', '/health/liveness'];
    expect(paths.filter(forwarded)).toEqual(['/ws', '/rpc', '/publish']);
  });

  it('the execution role may pull the image, create and write the log groups, and read the secrets', () => {
    const policy = read<PolicyDocument>('execution-role-policy.json');
    for (const file of taskDefinitions) {
      const task = read<TaskDefinition>(file);
      const [c] = task.containerDefinitions as [Container];
      expect(task.executionRoleArn).toBe(read<TaskDefinition>(taskDefinitions[0] as string).executionRoleArn);
      const [account, region, repository] =
        /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(c.image)?.slice(1) ?? [];
      const repoArn = `arn:aws:ecr:${region}:${account}:repository/${repository}`;
      expect(allows(policy, 'ecr:GetAuthorizationToken', '*')).toBe(true);
      for (const action of ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage']) {
        expect([action, allows(policy, action, repoArn)]).toEqual([action, true]);
      }
      const o = c.logConfiguration.options;
      const group = `arn:aws:logs:${o['awslogs-region']}:${account}:log-group:${o['awslogs-group']}`;
      if (o['awslogs-create-group'] === 'true') {
        // CloudWatch Logs names a group with and without the trailing `:*`; either must pass.
        expect([
          allows(policy, 'logs:CreateLogGroup', group),
          allows(policy, 'logs:CreateLogGroup', `${group}:*`),
        ]).toEqual([true, true]);
      }
      const stream = `${group}:log-stream:${o['awslogs-stream-prefix']}/${c.name}/0123456789abcdef`;
      expect([allows(policy, 'logs:CreateLogStream', stream), allows(policy, 'logs:PutLogEvents', stream)]).toEqual([
        true,
        true,
      ]);
      // A secret's full ARN is the name plus `-` and six random characters.
      for (const s of c.secrets ?? []) {
        expect([s.name, allows(policy, 'secretsmanager:GetSecretValue', `${s.valueFrom}-AbC123`)]).toEqual([
          s.name,
          true,
        ]);
      }
    }
  });

  it('the runbook creates every role the task definitions name, trusting ECS tasks of their account, and uses every file', () => {
    const runbook = readFileSync(join(root, 'docs', 'runbook.md'), 'utf8');
    const trust = read<{
      Statement: Array<{
        Principal: { Service: string };
        Action: string;
        Condition?: Record<string, Record<string, string>>;
      }>;
    }>('ecs-tasks-trust-policy.json').Statement[0];
    expect(trust).toMatchObject({ Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' });
    for (const file of taskDefinitions) {
      const task = read<TaskDefinition>(file);
      for (const arn of [task.executionRoleArn, task.taskRoleArn]) {
        const [, account, role] = /^arn:aws:iam::(\d{12}):role\/(.+)$/.exec(arn) ?? [];
        expect(trust?.Condition?.StringEquals?.['aws:SourceAccount']).toBe(account);
        expect(runbook).toContain(
          `aws iam create-role --role-name ${role} --assume-role-policy-document file://docker/ecs/ecs-tasks-trust-policy.json`,
        );
      }
      const execution = task.executionRoleArn.split('/').at(-1);
      expect(runbook).toMatch(
        new RegExp(
          `put-role-policy --role-name ${execution} .*--policy-document file://docker/ecs/execution-role-policy.json`,
        ),
      );
    }
    for (const f of readdirSync(ecs)) expect(runbook).toContain(`file://docker/ecs/${f}`);
  });

  it('the deregistration delay covers the ECS stop poll plus SHUTDOWN_GRACE_MS', () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    const delayMs = attribute('gateway-target-group-attributes.json', 'deregistration_delay.timeout_seconds') * 1000;
    // Configured values, not measured ones: the files as shipped, and the rule they keep.
    const covers = delayMs >= ECS_STOP_POLL_MS + config.shutdownGraceMs + 1_000;
    expect({ delayMs, shutdownGraceMs: config.shutdownGraceMs, covers }).toEqual({
      delayMs: 15_000,
      shutdownGraceMs: 10_000,
      covers: true,
    });
  });

  it('the ALB idle timeout is at least twice the ping interval, and shorter than the keep-alive of the gateway', async () => {
    const [c] = read<TaskDefinition>('gateway-task-definition.json').containerDefinitions as [Container];
    const { config } = configOf(c);
    const idleMs = attribute('gateway-load-balancer-attributes.json', 'idle_timeout.timeout_seconds') * 1000;
    // The ALB, not the gateway, must close idle keep-alive HTTP connections (else: 502s).
    const gw = createGateway(defaultConfig());
    const keepAliveMs = gw.server.keepAliveTimeout;
    expect({ idleMs, pingIntervalMs: config.pingIntervalMs, keepAliveMs }).toEqual({
      idleMs: 60_000,
      pingIntervalMs: 20_000,
      keepAliveMs: 65_000,
    });
    expect([idleMs >= 2 * config.pingIntervalMs, idleMs < keepAliveMs]).toEqual([true, true]);
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
