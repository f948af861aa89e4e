// Reference node for bench/cluster.sh: the same behaviour as bench/cluster_server.c, written the way a user
// of npm socket.io and @socket.io/redis-adapter would write it:
//   "bcast"(...args) from a client -> io.serverSideEmit("relay", ...args) to the other node;
//   server-side "relay"(...args)  -> io.emit("bcast", ...args) to every client of every node.
// WebSocket transport only; socket.io's defaults otherwise.
//   node cluster_server.mjs --redis URL [--sharded] --host H --port P
// Prints "listening on HOST:PORT" on stderr when ready.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// The npm packages are installed in tests/node_modules by scripts/deps.
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'tests', 'package.json'));
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');

const opts = { host: '127.0.0.1', port: 3000, redis: 'redis://127.0.0.1:6379', sharded: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = argv[i + 1];
  switch (argv[i]) {
    case '--host': opts.host = v; i++; break;
    case '--port': opts.port = Number(v); i++; break;
    case '--redis': opts.redis = v; i++; break;
    case '--sharded': opts.sharded = true; break;
    default:
      console.error(`cluster_server: unknown option ${argv[i]}`);
      process.exit(2);
  }
}

const pub = createClient({ url: opts.redis });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  adapter: opts.sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub),
});

io.on('connection', (socket) => {
  socket.on('bcast', (...args) => io.serverSideEmit('relay', ...args));
});
io.on('relay', (...args) => io.emit('bcast', ...args));

httpServer.listen({ host: opts.host, port: opts.port, backlog: 4096 }, () => {
  console.error(`listening on ${opts.host}:${opts.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
