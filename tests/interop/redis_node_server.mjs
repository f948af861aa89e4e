// The reference node of the Redis interop test: Node's socket.io 4.8 with @socket.io/redis-adapter
// (createAdapter, or createShardedAdapter when REDIS_MODE=sharded) or @socket.io/redis-streams-adapter
// (REDIS_MODE=streams, with connection state recovery for RECOVERY_MS), answering the same events as
// tests/interop/redis_node.c. Env: REDIS_URL, REDIS_MODE, REDIS_CLUSTER (1: the URL is a node of a Redis
// Cluster, reached with node-redis createCluster), REDIS_TLS_CA (a PEM file: rediss:// servers are verified
// against it), STREAM_COUNT (streams: the package's streamCount), PORT (0: any). Prints "listening on HOST:PORT".
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createClient, createCluster } from 'redis';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';

const sharded = process.env.REDIS_MODE === 'sharded';
const streams = process.env.REDIS_MODE === 'streams';
if (process.env.REDIS_CLUSTER === '1') {
  // node-redis 4.7 (@redis/client 1.6) never resubscribes a sharded channel whose slot moved: its client
  // emits 'sharded-channel-moved' while its cluster listens for 'server-sunsubscribe'. Forwarded here so
  // that this reference node follows a slot move as the protocol intends.
  const RedisClient = (await import('@redis/client/dist/lib/client/index.js')).default.default;
  const emit = RedisClient.prototype.emit;
  RedisClient.prototype.emit = function (ev, ...args) {
    if (ev === 'sharded-channel-moved') emit.call(this, 'server-sunsubscribe', ...args);
    return emit.call(this, ev, ...args);
  };
  // ...and its resubscription's own promise is left unhandled when it meets a -MOVED: logged, not fatal.
  process.on('unhandledRejection', e => console.error(`unhandled: ${e?.message ?? e}`));
}
const socket = process.env.REDIS_TLS_CA ? { tls: true, ca: [readFileSync(process.env.REDIS_TLS_CA)] } : undefined;
const pub = process.env.REDIS_CLUSTER === '1'
  ? createCluster({ rootNodes: [{ url: process.env.REDIS_URL }], defaults: { socket } })
  : createClient({ url: process.env.REDIS_URL, socket });
const sub = pub.duplicate();
// Redis going away is part of the test: the clients reconnect by themselves.
pub.on('error', () => {});
sub.on('error', () => {});
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: streams ? createStreamsAdapter(pub, { streamCount: Number(process.env.STREAM_COUNT || 1) }) : sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub),
  pingInterval: 2000,
  pingTimeout: 5000,
  ...(streams && process.env.RECOVERY_MS
    ? { connectionStateRecovery: { maxDisconnectionDuration: Number(process.env.RECOVERY_MS) } } : {}),
});
let port = 0;

const sortedIds = sockets => sockets.map(s => s.id).sort();

io.on('connection', socket => {
  socket.on('join', (room, cb) => { socket.join(room); cb?.(true); });
  socket.on('emit', (ev, x, cb) => { io.emit(ev, x); cb?.(0); });
  socket.on('to', (room, ev, x, cb) => { io.to(room).emit(ev, x); cb?.(0); });
  socket.on('except', (room, ev, x, cb) => { io.except(room).emit(ev, x); cb?.(0); });
  socket.on('broadcast', (ev, x, cb) => { socket.broadcast.emit(ev, x); cb?.(0); });
  socket.on('emit-bin', (ev, cb) => { io.emit(ev, Buffer.from([1, 2, 3]), { tag: 'bin' }); cb?.(0); });
  socket.on('fetch', async (room, cb) => {
    try {
      cb([null, sortedIds(await (room ? io.in(room) : io).fetchSockets())]);
    } catch (e) {
      cb([e.message, []]);
    }
  });
  socket.on('sockets-join', (room, cb) => { io.socketsJoin(room); cb?.(0); });
  socket.on('kick', (room, cb) => { io.in(room).disconnectSockets(true); cb?.(0); });
  socket.on('sse', (ev, x, cb) => { io.serverSideEmit(ev, x); cb?.(0); });
  socket.on('sse-ack', async (ev, x, cb) => {
    try {
      const answers = await io.serverSideEmitWithAck(ev, x);
      cb([null, answers.map(a => [a])]);
    } catch (e) {
      cb([e.message, []]);
    }
  });
  socket.on('bcast-ack', async (ms, cb) => {
    try {
      const answers = await io.timeout(ms).emitWithAck('poll');
      cb([null, answers.map(a => [a])]);
    } catch (e) {
      cb([e.message, []]);
    }
  });
  socket.on('server-count', async cb => cb(await io.of('/').adapter.serverCount()));
  socket.on('me', cb => cb(me(socket)));
  socket.on('set-data', (x, cb) => { socket.data = x; cb?.(true); });
});
// What the tests ask a socket: as redis_node.c's "me" (socket.data's default {} reads as null there).
const me = socket => ({
  id: socket.id,
  recovered: socket.recovered,
  rooms: [...socket.rooms].sort(),
  data: socket.data && Object.keys(socket.data).length ? socket.data : null,
});
for (const name of ['/chat', '/news']) {
  io.of(name).on('connection', socket => {
    socket.on('join', (room, cb) => { socket.join(room); cb?.(true); });
    socket.on('me', cb => cb(me(socket)));
    socket.on('emit', (ev, x, cb) => { io.of(name).emit(ev, x); cb?.(0); });
    socket.on('to', (room, ev, x, cb) => { io.of(name).to(room).emit(ev, x); cb?.(0); });
  });
}

io.on('hello', x => io.local.emit('server-hello', x));
io.on('whoami', (x, cb) => cb(`node:${port}`));

httpServer.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  port = httpServer.address().port;
  console.log(`listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => { io.close(); pub.quit().catch(() => {}); sub.quit().catch(() => {}); process.exit(0); });
