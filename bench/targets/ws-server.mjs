// The ceiling for Node: plain `ws`, one Redis SUBSCRIBE per connected user,
// each message written as is to that user's sockets. GET /healthz for the probes.
//   PORT=... REDIS_URL=... node targets/ws-server.mjs
import http from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const sub = new Redis(process.env.REDIS_URL);
const byUser = new Map();
sub.on('message', (channel, message) => {
  const set = byUser.get(channel.slice(2));
  if (set) for (const ws of set) ws.send(message);
});

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  } else {
    res.writeHead(404);
    res.end();
  }
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws, req) => {
  const u = new URL(req.url, 'http://x').searchParams.get('u');
  let set = byUser.get(u);
  if (!set) {
    set = new Set();
    byUser.set(u, set);
    sub.subscribe(`u:${u}`);
  }
  set.add(ws);
  ws.on('error', () => {});
  ws.on('close', () => {
    set.delete(ws);
    if (set.size === 0 && byUser.get(u) === set) {
      byUser.delete(u);
      sub.unsubscribe(`u:${u}`);
    }
  });
  ws.send('{"type":"welcome"}');
});
sub.once('ready', () => server.listen(Number(process.env.PORT), '127.0.0.1'));
