// Events delivered per gateway CPU-second: the gateway runs in this process
// (createGateway from the built package), N clients in a child process; every
// client's user gets E events; the figure is events over this process's CPU time.
//
//   node bench/fanout.mjs [--clients 1000] [--events 100]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    events: { type: 'string', default: '100' },
    role: { type: 'string' },
    url: { type: 'string' },
  },
});
const clients = Number(values.clients);
const events = Number(values.events);

if (values.role === 'clients') {
  let received = 0;
  await Promise.all(
    Array.from(
      { length: clients },
      (_, i) =>
        new Promise((resolve) => {
          const ws = new WebSocket(values.url);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, user_id: `fan-${i}` })));
          let welcomed = false;
          ws.on('message', () => {
            if (welcomed) received++;
            else {
              welcomed = true;
              resolve();
            }
          });
        }),
    ),
  );
  process.send({ ready: true });
  setInterval(() => process.send({ received }), 100);
} else {
  const { createGateway, createLogger, defaultConfig } = await import('@livebus/gateway');
  const logger = createLogger({ level: 'error', format: 'json', instanceId: 'bench' });
  const gateway = createGateway(defaultConfig({ port: 0, host: '127.0.0.1', rateLimitFramesPerS: 0 }), { logger });
  const { port } = await gateway.listen();
  const child = fork(fileURLToPath(import.meta.url), [
    '--role',
    'clients',
    '--url',
    `ws://127.0.0.1:${port}/ws`,
    '--clients',
    String(clients),
  ]);
  let received = 0;
  await new Promise((resolve) =>
    child.on('message', (m) => {
      if (m.ready) resolve();
      if (m.received !== undefined) received = m.received;
    }),
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let e = 0; e < events; e++) {
    for (let i = 0; i < clients; i++) {
      await gateway.publish(`fan-${i}`, { event: 'session.notice', data: { level: 'info', message: `m${e}` } });
    }
    await new Promise((r) => setImmediate(r)); // let the sockets drain between rounds
  }
  const total = clients * events;
  while (received < total) await new Promise((r) => setTimeout(r, 20));
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(`livebus fan-out: ${clients} clients x ${events} events (one user each, validated and cursor-stamped)`);
  console.log(
    `  ${total} delivered in ${((performance.now() - t0) / 1000).toFixed(2)} s, gateway CPU ${cpuS.toFixed(2)} s: ${Math.round(total / cpuS)} events per CPU-second`,
  );
  child.kill();
  await gateway.shutdown();
  process.exit(0);
}
