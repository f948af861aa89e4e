// Interop: wsio's Redis adapter in a cluster with Node socket.io. One redis-server (started here on a free
// port), two wsio nodes (redis_node) and one Node socket.io 4.8 server with @socket.io/redis-adapter
// (redis_node_server.mjs), socket.io-client clients on each; REDIS_MODE=classic (createAdapter, plus
// @socket.io/redis-emitter), sharded (createShardedAdapter, Redis 7 sharded pub/sub, dynamic mode) or
// streams (@socket.io/redis-streams-adapter; its own matters are test_redis_streams.mjs).
// Ends with redis-server killed and restarted: delivery goes on locally, then across nodes again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { Emitter } from '@socket.io/redis-emitter';
import { quiet, within, ack, next, collect, until, freePort, startProc, stopProc, openClient } from './redis_harness.mjs';

const MODE = process.env.REDIS_MODE || 'classic';
const SHARDED = MODE === 'sharded';
const STREAMS = MODE === 'streams';
const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const redisPort = await freePort();
const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
const startRedis = () => startProc('redis', REDIS_SERVER,
  ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, /Ready to accept/);

describe(`Redis adapter (${MODE}): two wsio nodes and a Node socket.io node`, () => {
  let redis, A, B, C, urlA, urlB, urlC, cA, cB, cC, emitterClient;
  const clients = [];
  const open = (url, opts) => openClient(clients, url, opts);
  const wsioNode = () => startProc('wsio', NODE_BIN,
                                   ['--redis', REDIS_URL, ...(SHARDED ? ['--sharded'] : STREAMS ? ['--streams'] : [])],
                                   {}, /^listening on .*:(\d+)$/);

  before(async () => {
    redis = (await startRedis()).proc;
    let r = await wsioNode();
    A = r.proc;
    urlA = `http://127.0.0.1:${r.m[1]}`;
    r = await wsioNode();
    B = r.proc;
    urlB = `http://127.0.0.1:${r.m[1]}`;
    r = await startProc('node', process.execPath, [NODE_SERVER], { REDIS_URL, REDIS_MODE: MODE }, /^listening on .*:(\d+)$/);
    C = r.proc;
    urlC = `http://127.0.0.1:${r.m[1]}`;
    cA = await open(urlA);
    cB = await open(urlB, { transports: ['polling'] }); // one long-polling client among them
    cC = await open(urlC);
    for (const s of [cA, cB, cC]) s.on('poll', cb => cb(s.id));
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    if (emitterClient) await emitterClient.quit().catch(() => {});
    await Promise.all([stopProc(A), stopProc(B), stopProc(C)]);
    await stopProc(redis);
  });

  it('every node counts three servers', async () => {
    for (const s of [cA, cB, cC]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
  });

  it('io.emit from any node reaches the clients of every node', async () => {
    for (const [i, from] of [cA, cB, cC].entries()) {
      const got = Promise.all([cA, cB, cC].map(s => next(s, 'hi')));
      await ack(from, 'emit', 'hi', { from: i, text: 'h\u00e9llo \u{1F600}' });
      for (const [x] of await got) assert.deepEqual(x, { from: i, text: 'h\u00e9llo \u{1F600}' });
    }
  });

  it('rooms and except hold across nodes', async () => {
    assert.equal(await ack(cB, 'join', 'r1'), true);
    assert.equal(await ack(cC, 'join', 'r1'), true);
    await quiet(300); // sharded: the room's channel subscription
    if (SHARDED) {
      // dynamic mode: only the nodes with members of r1 (B and C) listen on its channel
      const probe = createClient({ url: REDIS_URL });
      await probe.connect();
      const res = await probe.sendCommand(['PUBSUB', 'SHARDNUMSUB', 'socket.io#/#r1#']);
      await probe.quit();
      assert.equal(Number(res[1]), 2);
    }
    for (const from of [cA, cC]) {
      const [inA, inB, inC] = [collect(cA, 'room-ev', 700), collect(cB, 'room-ev', 700), collect(cC, 'room-ev', 700)];
      await ack(from, 'to', 'r1', 'room-ev', 7);
      assert.deepEqual([(await inA).length, await inB, await inC], [0, [[7]], [[7]]]);
      const [xA, xB, xC] = [collect(cA, 'ex-ev', 700), collect(cB, 'ex-ev', 700), collect(cC, 'ex-ev', 700)];
      await ack(from, 'except', 'r1', 'ex-ev', 8);
      assert.deepEqual([await xA, (await xB).length, (await xC).length], [[[8]], 0, 0]);
    }
  });

  it('socket.broadcast excludes the sender only', async () => {
    for (const from of [cA, cC]) {
      const got = [cA, cB, cC].map(s => collect(s, 'b-ev', 700));
      await ack(from, 'broadcast', 'b-ev', 'x');
      const counts = (await Promise.all(got)).map(g => g.length);
      assert.deepEqual(counts, [cA, cB, cC].map(s => (s === from ? 0 : 1)));
    }
  });

  it('binary payloads cross nodes as msgpack bins', async () => {
    for (const from of [cB, cC]) {
      const got = Promise.all([cA, cB, cC].map(s => next(s, 'bin-ev')));
      await ack(from, 'emit-bin', 'bin-ev');
      for (const [b, tag] of await got) {
        assert.deepEqual([...new Uint8Array(b)], [1, 2, 3]);
        assert.deepEqual(tag, { tag: 'bin' });
      }
    }
  });

  it('a broadcast in another namespace reaches that namespace on every node, and only it', async () => {
    const chat = [await open(`${urlA}/chat`), await open(`${urlB}/chat`), await open(`${urlC}/chat`)];
    for (const [i, from] of [[0, chat[0]], [2, chat[2]]]) {
      const got = Promise.all(chat.map(s => next(s, 'chat-ev')));
      const onMain = [cA, cB, cC].map(s => collect(s, 'chat-ev', 500));
      await ack(from, 'emit', 'chat-ev', i);
      for (const args of await got) assert.equal(args[0], i);
      assert.deepEqual((await Promise.all(onMain)).map(g => g.length), [0, 0, 0]);
    }
    for (const s of chat) s.disconnect();
  });

  it('fetchSockets sees the sockets of every node', async () => {
    const all = [cA.id, cB.id, cC.id].sort();
    const r1 = [cB.id, cC.id].sort();
    for (const s of [cA, cB, cC]) {
      assert.deepEqual(await ack(s, 'fetch', null), [null, all]);
      assert.deepEqual(await ack(s, 'fetch', 'r1'), [null, r1]);
    }
  });

  it('serverSideEmit reaches the other nodes, with and without acks, both ways', async () => {
    const portOf = u => u.split(':')[2];
    for (const [from, others, names] of [
      [cA, [cB, cC], [`node:${portOf(urlC)}`, `wsio:${portOf(urlB)}`]],
      [cC, [cA, cB], [`wsio:${portOf(urlA)}`, `wsio:${portOf(urlB)}`]],
    ]) {
      const self = collect(from, 'server-hello', 700);
      const got = Promise.all(others.map(s => next(s, 'server-hello')));
      await ack(from, 'sse', 'hello', { n: 1 });
      for (const [x] of await got) assert.deepEqual(x, { n: 1 });
      assert.equal((await self).length, 0);
      const [err, answers] = await ack(from, 'sse-ack', 'whoami', 0);
      assert.equal(err, null);
      assert.deepEqual(answers.map(a => a[0]).sort(), names.sort());
    }
  });

  it('broadcast with acks collects every client of every node', async () => {
    const want = [cA.id, cB.id, cC.id].sort();
    for (const from of [cA, cC]) {
      const [err, answers] = await ack(from, 'bcast-ack', 3000);
      assert.equal(err, null, `from ${from === cA ? 'wsio' : 'node'}: ${JSON.stringify(answers)}`);
      assert.deepEqual(answers.map(a => a[0]).sort(), want);
    }
  });

  it('socketsJoin and disconnectSockets act on every node', async () => {
    await ack(cC, 'sockets-join', 'everyone');
    await quiet(300);
    const got = Promise.all([cA, cB, cC].map(s => next(s, 'j-ev')));
    await ack(cA, 'to', 'everyone', 'j-ev', 1);
    await got;
    const victim = await open(urlA);
    await ack(victim, 'join', 'kick');
    const gone = next(victim, 'disconnect');
    await ack(cC, 'kick', 'kick');
    assert.deepEqual(await gone, ['io server disconnect', undefined]);
  });

  it('@socket.io/redis-emitter reaches every node, rooms and namespaces included', { skip: (SHARDED || STREAMS) && 'the emitter publishes on classic channels only' }, async () => {
    emitterClient = createClient({ url: REDIS_URL });
    emitterClient.on('error', () => {});
    await emitterClient.connect();
    const emitter = new Emitter(emitterClient);
    let got = Promise.all([cA, cB, cC].map(s => next(s, 'em')));
    emitter.emit('em', { from: 'emitter' });
    for (const [x] of await got) assert.deepEqual(x, { from: 'emitter' });
    const room = [cA, cB, cC].map(s => collect(s, 'em-room', 700));
    emitter.to('r1').emit('em-room', 2);
    assert.deepEqual((await Promise.all(room)).map(g => g.length), [0, 1, 1]);
    const chatA = await open(`${urlA}/chat`);
    const chatC = await open(`${urlC}/chat`);
    got = Promise.all([chatA, chatC].map(s => next(s, 'em-chat')));
    const onMain = collect(cA, 'em-chat', 500);
    emitter.of('/chat').emit('em-chat', 3);
    for (const [x] of await got) assert.equal(x, 3);
    assert.equal((await onMain).length, 0);
  });

  it('Redis killed: local delivery goes on; restarted: delivery across nodes resumes', async () => {
    await stopProc(redis, 'SIGKILL');
    await until('node A sees Redis down', async () => (await ack(cA, 'redis-stats')).connected === false, 5000);
    const far = collect(cB, 'local-only', 800);
    const near = next(cA, 'local-only');
    await ack(cA, 'emit', 'local-only', 5);
    assert.deepEqual(await near, [5]);
    assert.equal((await far).length, 0);
    if (STREAMS) assert.ok((await ack(cA, 'redis-stats')).queued > 0, 'stream entries wait for Redis');
    else assert.ok((await ack(cA, 'redis-stats')).dropped > 0, 'messages for other nodes were counted as dropped');
    redis = (await startRedis()).proc;
    for (const s of [cA, cB])
      await until('wsio reconnected', async () => (await ack(s, 'redis-stats')).connected === true, 15000);
    await until('every node subscribed again', async () => (await ack(cA, 'server-count')) === 3, 15000);
    const got = Promise.all([cA, cB, cC].map(s => next(s, 'after')));
    await ack(cB, 'emit', 'after', 6);
    for (const [x] of await got) assert.equal(x, 6);
    const got2 = Promise.all([cA, cB, cC].map(s => next(s, 'after2')));
    await ack(cC, 'emit', 'after2', 7);
    for (const [x] of await got2) assert.equal(x, 7);
  });
});
