// A TCP proxy that holds every chunk for a fixed delay in each direction, for a Redis that
// is a network hop away rather than on loopback (BENCH_REDIS_DELAY_MS in run.mjs).
//   node delay-proxy.mjs <listen port> <target host> <target port> <delay ms>
// Order is kept: every chunk of a direction waits the same delay, and timers of one delay fire in order.
import net from 'node:net';

const [listenPort, host, port, delayMs] = process.argv.slice(2);
const delay = Number(delayMs);

function pipeDelayed(from, to) {
  from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
  from.on('error', () => to.destroy());
}

const server = net.createServer((client) => {
  client.setNoDelay(true);
  const upstream = net.connect(Number(port), host);
  upstream.setNoDelay(true);
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(Number(listenPort), '127.0.0.1', () => process.send?.({ cmd: 'ready' }));
