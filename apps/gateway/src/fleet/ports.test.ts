import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every port's interface file, relative to src/. */
const PORT_FILES = [
  'fleet/bus/event-bus.ts',
  'fleet/presence/presence.ts',
  'fleet/lease/lease.ts',
  'fleet/registry/registry-store.ts',
  'fleet/detach/detach-decision.ts',
  'fleet/instances/instance-channel.ts',
  'listeners/watermark-store.ts',
  'listeners/workflow-watch-store.ts',
  'tasks/task-store.ts',
  'tasks/task-queue.ts',
  'auth/authenticator.ts',
];

/** The file's code without its comments: the TSDoc may name the implementations. */
function code(file: string): string {
  return readFileSync(join(__dirname, '..', file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
}

describe('ports carry no storage detail', () => {
  it.each(PORT_FILES)('%s names no backend, separator, BullMQ counter or registry-time cleanup', (file) => {
    const text = code(file);
    expect(text).not.toMatch(/\bkind\s*:\s*'(memory|redis|bullmq)'/);
    expect(text).not.toMatch(/ioredis|bullmq|\bRedis\b/i);
    expect(text).not.toMatch(/'\|'/);
    expect(text).not.toMatch(/attemptsStarted/);
    expect(text).not.toMatch(/cleanupUser/);
  });
});
