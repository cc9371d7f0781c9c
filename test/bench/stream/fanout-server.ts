import { createServer, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';

/*
 * The minimal fan-out, the stream's ceiling (run as a child of the stream bench): keeps every GET
 * open as text/event-stream, sends each the snapshot first, and writes every frame it is told of
 * on stdin (one JSON line each) to all of them, what arrived in one tick as one write per
 * response. No database, no poll, no Redis.
 */

const clients = new Set<ServerResponse>();
let snapshot = '';
let pending = '';

const flush = (): void => {
  const text = pending;
  pending = '';
  for (const res of clients) res.write(text);
};

const server = createServer((req, res) => {
  if (req.url === '/health') return void res.end('ok');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(snapshot);
  clients.add(res);
  res.on('close', () => clients.delete(res));
});
server.keepAliveTimeout = 600_000;
server.requestTimeout = 0;
server.headersTimeout = 120_000;

createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line) as { snapshot?: string; frame?: string };
  if (message.snapshot !== undefined) snapshot = message.snapshot;
  else {
    if (pending === '') setImmediate(flush);
    pending += message.frame;
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1');
