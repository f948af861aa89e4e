// Reference server for bench/run.sh's sio-* scenarios: the same behaviour as bench/sio_server.c, written the
// way a user of npm socket.io would write it:
//   "echo"  -> socket.emit("echo", ...args) back to the sender;
//   "bcast" -> io.emit("bcast", ...args) to every socket of "/", the sender included.
// WebSocket transport only; socket.io's defaults otherwise (no permessage-deflate, pingInterval 25 s,
// pingTimeout 20 s).
//   node sio_server.mjs --host H --port P
// Prints "listening on HOST:PORT" on stderr when ready.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// socket.io is installed in tests/node_modules by scripts/deps.
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'tests', 'package.json'));
const { Server } = require('socket.io');

const opts = { host: '127.0.0.1', port: 3000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = argv[i + 1];
  switch (argv[i]) {
    case '--host': opts.host = v; i++; break;
    case '--port': opts.port = Number(v); i++; break;
    default:
      console.error(`sio_server: unknown option ${argv[i]}`);
      process.exit(2);
  }
}

const httpServer = createServer();
const io = new Server(httpServer, { transports: ['websocket'] });

io.on('connection', (socket) => {
  socket.on('echo', (...args) => socket.emit('echo', ...args));
  socket.on('bcast', (...args) => io.emit('bcast', ...args));
});

httpServer.listen({ host: opts.host, port: opts.port, backlog: 4096 }, () => {
  console.error(`listening on ${opts.host}:${opts.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
