// Reference server for bench/run.sh: the same endpoints as `wsio --ws-echo /echo --ws-broadcast /bcast`, written
// the way a user of npm `ws` would write them. Takes wsio's flags:
//   node ws_server.mjs --host H --port P [--ws-echo /echo] [--ws-broadcast /bcast] [--deflate off|shared|context]
// --deflate shared: permessage-deflate without context takeover either way; context: ws's defaults (context
// takeover). ws compresses only messages of at least 1024 bytes (its default threshold).
// Prints "listening on HOST:PORT" on stderr when ready.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// ws is installed in tests/node_modules by scripts/deps.
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'tests', 'package.json'));
const { WebSocketServer, WebSocket } = require('ws');

const opts = { host: '127.0.0.1', port: 3000, echo: '/echo', bcast: '/bcast', deflate: 'off' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = argv[i + 1];
  switch (argv[i]) {
    case '--host': opts.host = v; i++; break;
    case '--port': opts.port = Number(v); i++; break;
    case '--ws-echo': opts.echo = v; i++; break;
    case '--ws-broadcast': opts.bcast = v; i++; break;
    case '--deflate': opts.deflate = v; i++; break;
    default:
      console.error(`ws_server: unknown option ${argv[i]}`);
      process.exit(2);
  }
}

let perMessageDeflate = false;
if (opts.deflate === 'shared') {
  perMessageDeflate = { serverNoContextTakeover: true, clientNoContextTakeover: true };
} else if (opts.deflate === 'context') {
  perMessageDeflate = true;
} else if (opts.deflate !== 'off') {
  console.error(`ws_server: --deflate must be off, shared or context`);
  process.exit(2);
}

const echo = new WebSocketServer({ noServer: true, perMessageDeflate });
const bcast = new WebSocketServer({ noServer: true, perMessageDeflate });

echo.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

bcast.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    for (const client of bcast.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

const server = createServer((req, res) => {
  res.writeHead(404);
  res.end();
});

server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  const wss = pathname === opts.echo ? echo : pathname === opts.bcast ? bcast : null;
  if (!wss) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen({ host: opts.host, port: opts.port, backlog: 4096 }, () => {
  console.error(`listening on ${opts.host}:${opts.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
