import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '@livebus/test-support';
import { recordingLogger } from '../testing/recording-logger';
import { watchEcsStop } from './ecs-stop-watch';

describe('watchEcsStop', () => {
  it('calls onStop once when the task metadata says DesiredStatus STOPPED', async () => {
    let desired = 'RUNNING';
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ DesiredStatus: desired, KnownStatus: 'RUNNING' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/abc`;
    let stops = 0;
    const unwatch = watchEcsStop({ metadataUri: uri, intervalMs: 20, onStop: () => stops++ });
    try {
      // Polls answered RUNNING (counted by the server, not by time: a loaded machine polls late).
      await waitFor(() => paths.length >= 3, 'three polls while RUNNING');
      expect(stops).toBe(0);
      desired = 'STOPPED';
      await waitFor(() => stops > 0, 'onStop after STOPPED');
    } finally {
      unwatch();
      // Resolves once every poll still in flight was answered: none of them calls onStop again.
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(stops).toBe(1);
    expect(paths.every((p) => p === '/v4/abc/task')).toBe(true);
  });

  it('logs the task status once per change, so operators see whether the early stop ran', async () => {
    let status = { DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING' };
    let polls = 0;
    const server = createServer((_req, res) => {
      polls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/abc`;
    const { logger, lines } = recordingLogger();
    let stops = 0;
    const unwatch = watchEcsStop({ metadataUri: uri, intervalMs: 10, logger, onStop: () => stops++ });
    try {
      await waitFor(() => polls >= 3, 'three polls while RUNNING');
      status = { DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING' };
      await waitFor(() => polls >= 6, 'three more polls, same status');
      status = { DesiredStatus: 'STOPPED', KnownStatus: 'RUNNING' };
      await waitFor(() => stops > 0, 'onStop after STOPPED');
    } finally {
      unwatch();
      await new Promise<void>((r) => server.close(() => r()));
    }
    // Once per change: six polls or more answered RUNNING, one line for them.
    expect(lines).toEqual([
      ['info', 'ecs_task_status', { desired_status: 'RUNNING', known_status: 'RUNNING' }],
      ['info', 'ecs_task_status', { desired_status: 'STOPPED', known_status: 'RUNNING' }],
    ]);
  });

  it('does nothing off ECS, and ignores an unreachable endpoint', async () => {
    let stops = 0;
    watchEcsStop({ metadataUri: undefined, onStop: () => stops++ })();
    const unwatch = watchEcsStop({ metadataUri: 'http://127.0.0.1:9/v4', intervalMs: 10, onStop: () => stops++ });
    await new Promise((r) => setTimeout(r, 100));
    unwatch();
    expect(stops).toBe(0);
  });
});
