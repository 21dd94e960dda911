// Socket.IO 4 with @socket.io/redis-adapter; events come from @socket.io/redis-emitter.
// Each client joins the room of its user. GET /healthz for the probes.
//   PORT=... REDIS_URL=... node targets/sio-server.mjs
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const pub = new Redis(process.env.REDIS_URL);
const sub = pub.duplicate();
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  } else if (!req.url.startsWith('/socket.io')) {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(server, { adapter: createAdapter(pub, sub), transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  socket.join(`u:${socket.handshake.auth.u}`);
});
await Promise.all([pub, sub].map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r)))));
server.listen(Number(process.env.PORT), '127.0.0.1');
