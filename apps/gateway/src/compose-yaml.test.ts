import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// docker/compose.yaml, the local stack: read as text (no YAML parser among the dependencies), one
// block per service (its lines indented under `  name:`). The worker's health check port is
// checked with the ECS files (test/ecs-files.int.test.ts).
const compose = readFileSync(join(__dirname, '..', '..', '..', 'docker', 'compose.yaml'), 'utf8');

/** The services' blocks by name, comments left out. */
function services(): Map<string, string> {
  const body = compose.split(/^services:$/m)[1] ?? '';
  const blocks = new Map<string, string>();
  for (const part of body.split(/^ {2}(?=[a-z][\w-]*:$)/m).slice(1)) {
    const [head = '', ...rest] = part.split('\n');
    blocks.set(head.replace(/:$/, ''), rest.filter((l) => !/^\s*#/.test(l)).join('\n'));
  }
  return blocks;
}

/** The value of a key of a service (`    key: value`), without a comment after it. */
const serviceValue = (block: string, key: string) =>
  new RegExp(`^ {4}${key}: *([^#\\n]*?) *(?:#.*)?$`, 'm').exec(block)?.[1];

describe('docker/compose.yaml', () => {
  it('builds the image once: the gateway builds and tags it, the worker runs that tag and never pulls it', () => {
    const all = services();
    expect([...all.keys()]).toEqual(['redis', 'gateway', 'worker']);
    const built = [...all].filter(([, block]) => /^ {4}build:/m.test(block)).map(([name]) => name);
    expect(built).toEqual(['gateway']);
    const gateway = all.get('gateway') ?? '';
    const worker = all.get('worker') ?? '';
    expect(gateway).toMatch(/^ {6}dockerfile: docker\/Dockerfile$/m);
    const image = serviceValue(gateway, 'image');
    expect(image).toMatch(/^livebus-[\w-]+:local$/);
    // The tag is local: Compose must build it, not look it up in a registry (pull_policy
    // missing would try Docker Hub first), and the worker must wait for that build.
    expect(serviceValue(gateway, 'pull_policy')).toBe('build');
    expect(serviceValue(worker, 'image')).toBe(image);
    expect(serviceValue(worker, 'pull_policy')).toBe('never');
    expect(serviceValue(worker, 'command')).toBe('["node", "dist/main.js", "worker"]');
    expect(serviceValue(all.get('redis') ?? '', 'image')).toBe('redis:7-alpine');
  });
});
