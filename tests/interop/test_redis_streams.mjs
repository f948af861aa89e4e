// Interop: what the streams mode adds to test_redis.mjs (which runs the common operations in that mode too).
// One redis-server started here, two wsio nodes (redis_node --streams, with STREAMS_WORKERS=2 each made of
// two workers, every worker a node) and one Node socket.io 4.8 server with @socket.io/redis-streams-adapter
// 0.3 (redis_node_server.mjs), all with connection state recovery; socket.io-client 4.8 clients on each.
// With STREAMS_PROGRAM set, the wsio program itself with --workers 2 and [redis] mode = streams joins too.
//
// Checked: a broadcast's offset is its stream entry's id on every node; wsio writes entries as the package
// does; clients recover across nodes in every direction (id, rooms, data, exactly the broadcasts they
// missed); a client without an offset is not recovered (as with socket.io); MAXLEN ~ trims the stream;
// malformed entries are counted and skipped; Redis killed and restarted loses no broadcast.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createClient } from 'redis';
import { decode } from '@msgpack/msgpack';
import { io as connectClient } from 'socket.io-client';
import { quiet, within, ack, next, collect, until, freePort, startProc, stopProc, openClient, spawnTracked }
  from './redis_harness.mjs';

const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const WORKERS = Number(process.env.STREAMS_WORKERS || 0);
const PROGRAM = process.env.STREAMS_PROGRAM;
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const RECOVERY_MS = 60000;
const redisPort = await freePort();
const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
const startRedis = () => startProc('redis', REDIS_SERVER,
  ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, /Ready to accept/);
const OFFSET = /^\d+-\d+$/;
const SERVERS = 2 * (WORKERS || 1) + 1 + (PROGRAM ? 2 : 0);

describe(`Redis streams adapter${WORKERS ? ` (wsio nodes of ${WORKERS} workers)` : ''}: wsio and Node nodes`, () => {
  let redis, probe, A, B, C, P, urlA, urlB, urlC, urlP, cA, cB, cC;
  const clients = [];
  const open = (url, opts) => openClient(clients, url, opts);
  const wsioNode = (...extra) => startProc('wsio', NODE_BIN,
    ['--redis', REDIS_URL, '--streams', '--recovery', String(RECOVERY_MS), ...(WORKERS ? ['--workers', String(WORKERS)] : []),
     ...extra], {}, /^listening on .*:(\d+)$/);
  const stats = s => ack(s, 'redis-stats');
  const xlen = async () => Number(await probe.sendCommand(['XLEN', 'socket.io']));
  // An event's arguments without the offset recovery appends (returned too).
  const split = args => [args.slice(0, -1), args.at(-1)];

  before(async () => {
    redis = (await startRedis()).proc;
    probe = createClient({ url: REDIS_URL });
    probe.on('error', () => {});
    await probe.connect();
    let r = await wsioNode('--max-len', '100'); // A trims the stream (MAXLEN ~ 100)
    A = r.proc;
    urlA = `http://127.0.0.1:${r.m[1]}`;
    r = await wsioNode();
    B = r.proc;
    urlB = `http://127.0.0.1:${r.m[1]}`;
    r = await startProc('node', process.execPath, [NODE_SERVER],
                        { REDIS_URL, REDIS_MODE: 'streams', RECOVERY_MS: String(RECOVERY_MS) }, /^listening on .*:(\d+)$/);
    C = r.proc;
    urlC = `http://127.0.0.1:${r.m[1]}`;
    if (PROGRAM) {
      P = spawnTracked('program', PROGRAM, ['--host', '127.0.0.1', '--port', '0', '--workers', '2', '--redis-url', REDIS_URL,
                                            '--redis-mode', 'streams', '--socketio-recovery', `${RECOVERY_MS}ms`]);
      const m = await within(new Promise((resolve, reject) => {
        createInterface({ input: P.stderr }).on('line', line => { const x = line.match(/listening on .*:(\d+)/); if (x) resolve(x); });
        P.once('exit', code => reject(new Error(`wsio exited (${code})`)));
      }), 10000, 'the wsio program to start');
      urlP = `http://127.0.0.1:${m[1]}`;
    }
    cA = await open(urlA);
    cB = await open(urlB, { transports: ['polling'] });
    cC = await open(urlC);
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await probe.quit().catch(() => {});
    await Promise.all([stopProc(A), stopProc(B), stopProc(C), stopProc(P)]);
    await stopProc(redis);
  });

  it(`every node counts ${SERVERS} servers`, async () => {
    for (const s of [cA, cB, cC]) await until(`server count ${SERVERS}`, async () => (await ack(s, 'server-count')) === SERVERS);
  });

  it('a broadcast carries the same offset on every node: its stream entry id', async () => {
    for (const from of [cA, cC]) {
      const got = Promise.all([cA, cB, cC].map(s => next(s, 'off-ev')));
      await ack(from, 'emit', 'off-ev', { n: 1 });
      const offsets = (await got).map(args => { const [rest, off] = split(args); assert.deepEqual(rest, [{ n: 1 }]); return off; });
      assert.match(offsets[0], OFFSET);
      assert.deepEqual(offsets, [offsets[0], offsets[0], offsets[0]]);
      const entry = await probe.xRange('socket.io', offsets[0], offsets[0]);
      assert.equal(entry.length, 1);
      assert.equal(entry[0].message.type, '3');
    }
  });

  it('wsio writes stream entries as the package does', async () => {
    const fieldsOf = async off => (await probe.sendCommand(['XRANGE', 'socket.io', off, off]))[0][1];
    const plain = {}, bin = {};
    for (const [name, s] of [['wsio', cA], ['node', cC]]) {
      let got = next(cB, 'fmt-ev');
      await ack(s, 'emit', 'fmt-ev', { x: [1, 'two', null] });
      plain[name] = await fieldsOf(split(await got)[1]);
      got = next(cB, 'fmt-bin');
      await ack(s, 'emit-bin', 'fmt-bin');
      bin[name] = await fieldsOf(split(await got)[1]);
    }
    for (const f of [plain, bin]) {
      assert.deepEqual(f.wsio.filter((_, i) => i % 2 === 0), ['uid', 'nsp', 'type', 'data']);
      assert.deepEqual(f.node.filter((_, i) => i % 2 === 0), ['uid', 'nsp', 'type', 'data']);
      assert.deepEqual(f.wsio.slice(2, 6), f.node.slice(2, 6)); // nsp "/", type "3"
    }
    // The package's packet has no nsp (the adapter sets it after publishing); wsio's says it, and readers of
    // either kind take the entry's namespace when it is missing.
    const w = JSON.parse(plain.wsio[7]);
    assert.equal(w.packet.nsp, '/');
    delete w.packet.nsp;
    assert.deepEqual(w, JSON.parse(plain.node[7]));
    assert.deepEqual(w, { packet: { type: 2, data: ['fmt-ev', { x: [1, 'two', null] }] }, opts: { rooms: [], except: [], flags: {} } });
    // binaries: base64 of msgpack, the bytes as a bin
    const unpack = s => decode(Buffer.from(s, 'base64'));
    assert.ok(!bin.wsio[7].startsWith('{'));
    const [wb, nb] = [unpack(bin.wsio[7]), unpack(bin.node[7])];
    assert.deepEqual([...wb.packet.data[1]], [1, 2, 3]);
    assert.deepEqual({ ...wb, packet: { ...wb.packet, data: null, nsp: undefined } }, { ...nb, packet: { ...nb.packet, data: null, nsp: undefined } });
    assert.deepEqual([wb.packet.data[0], [...wb.packet.data[1]], wb.packet.data[2]],
                     [nb.packet.data[0], [...nb.packet.data[1]], nb.packet.data[2]]);
  });

  // A new client of url `from` that does not reconnect by itself, once connected.
  async function connectOnce(from, label) {
    const s = connectClient(from, { forceNew: true, transports: ['websocket'], reconnection: false });
    clients.push(s);
    await within(new Promise(resolve => s.once('connect', resolve)), 5000, `${label}: connect`);
    assert.equal(s.recovered, false);
    return s;
  }

  // s gets a broadcast (so it has an offset), then loses its transport; resolves once its session is in
  // Redis (the server saves it when it sees the transport go).
  async function dropWithOffset(s, label) {
    const first = next(s, 'tick');
    await ack(cC, 'emit', 'tick', 0);
    assert.match(split(await first)[1], OFFSET);
    const gone = next(s, 'disconnect');
    s.io.engine.close();
    await gone;
    await until(`${label}: session saved`, async () => (await probe.keys('sio:session:*')).length > 0, 5000);
  }

  // A client on url `from` with a room, data and an offset drops; broadcasts go out while it is away; it
  // comes back to url `to` (it sends its pid and offset) and must be recovered with exactly what it missed.
  async function recoverAcross(from, to, label) {
    const s = await connectOnce(from, label);
    const chatS = await open(`${from}/chat`);
    await ack(s, 'join', 'rr');
    await ack(s, 'set-data', { label });
    const before = await ack(s, 'me');
    await dropWithOffset(s, label);
    const seen = [];
    s.on('missed', (...args) => seen.push(split(args)));
    const emits = [
      [cA, 'emit', 'missed', 'everyone-from-wsio'],
      [cC, 'to', 'rr', 'missed', 'room-from-node'],
      [cB, 'except', 'rr', 'missed', 'not-for-rr'],
      [cC, 'to', 'elsewhere', 'missed', 'other-room'],
      [chatS, 'emit', 'missed', 'other-namespace'],
      [cB, 'emit', 'missed', 'everyone-from-wsio-b'],
    ];
    // One at a time, each in the stream before the next: their order is the stream's.
    for (const [i, [c, ...args]] of emits.entries()) {
      await ack(c, ...args);
      await until(`${label}: entry ${i} in the stream`, async () =>
        (await probe.xRevRange('socket.io', '+', '-', { COUNT: 1 }))[0]?.message.data.includes(args.at(-1)), 5000);
    }
    s.io.uri = to;
    s.connect();
    await within(new Promise(resolve => s.once('connect', resolve)), 5000, `${label}: reconnect`);
    assert.equal(s.recovered, true, `${label}: recovered`);
    assert.equal(s.id, before.id);
    await until(`${label}: the missed broadcasts`, async () => seen.length >= 3, 3000).catch(() => {});
    await quiet(300);
    assert.deepEqual(seen.map(([a]) => a), [['everyone-from-wsio'], ['room-from-node'], ['everyone-from-wsio-b']],
                     `${label}: exactly the broadcasts it missed, in order`);
    for (const [, off] of seen) assert.match(off, OFFSET);
    const after = await ack(s, 'me');
    assert.deepEqual(after, { ...before, recovered: true });
    // live again: a broadcast after the recovery arrives once
    const live = collect(s, 'live', 600);
    await ack(cA, 'emit', 'live', label);
    assert.deepEqual((await live).map(a => a[0]), [label]);
    s.disconnect();
    chatS.disconnect();
  }

  it('a client of a wsio node comes back recovered on the Node node', () => recoverAcross(urlA, urlC, 'wsio to node'));
  it('a client of the Node node comes back recovered on a wsio node', () => recoverAcross(urlC, urlB, 'node to wsio'));
  it('a client of a wsio node comes back recovered on the other wsio node', () => recoverAcross(urlB, urlA, 'wsio to wsio'));
  // The same through the wsio program, whose built-in routes know none of the test's events: the
  // broadcasts come from the Node node's clients, and the program's own demo route (serverMsg).
  async function recoverProgram(from, to, label) {
    const s = await connectOnce(from, label);
    const id = s.id;
    await dropWithOffset(s, label);
    const seen = [];
    s.on('missed', (...args) => seen.push(split(args)[0]));
    s.on('clientMsg', (...args) => seen.push(split(args)[0]));
    await ack(cC, 'emit', 'missed', label);
    // the program's route: serverMsg from a client of it -> clientMsg to everyone else, every node
    const sender = await open(urlP);
    const relayed = next(cA, 'clientMsg');
    sender.emit('serverMsg', { text: label });
    await relayed;
    s.io.uri = to;
    s.connect();
    await within(new Promise(resolve => s.once('connect', resolve)), 5000, `${label}: reconnect`);
    assert.equal(s.recovered, true, `${label}: recovered`);
    assert.equal(s.id, id);
    await until(`${label}: the missed broadcasts`, async () => seen.length >= 2, 3000).catch(() => {});
    await quiet(300);
    assert.deepEqual(seen.map(a => a[0]), [label, { text: label }]);
    s.disconnect();
    sender.disconnect();
  }

  it('the wsio program (--workers 2, mode streams) recovers clients both ways', { skip: !PROGRAM && 'STREAMS_PROGRAM not set' }, async () => {
    await recoverProgram(urlP, urlC, 'program to node');
    await recoverProgram(urlC, urlP, 'node to program');
    // its metrics, summed over the workers: a session saved (the first), one restored (the second)
    const text = await (await fetch(`${urlP}/metrics`)).text();
    const value = name => Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1]);
    assert.ok(value('wsio_redis_sessions_saved_total') >= 1, 'sessions saved');
    assert.ok(value('wsio_redis_sessions_restored_total') >= 1, 'sessions restored');
    assert.ok(value('wsio_redis_stream_entries_total') > 0, 'entries read');
    assert.equal(value('wsio_redis_queued'), 0);
  });

  it('a client that has no offset yet comes back as a new session, as socket.io does', async () => {
    const s = connectClient(urlA, { forceNew: true, transports: ['websocket'], reconnection: false });
    clients.push(s);
    await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'connect');
    const id = s.id;
    const gone = next(s, 'disconnect');
    s.io.engine.close();
    await gone;
    s.io.uri = urlC;
    s.connect();
    await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'reconnect');
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, id);
    s.disconnect();
  });

  it('the stream is trimmed to about maxLen (MAXLEN ~)', async () => {
    // Node B's reader has them all once its client gets the last one. Not a count of entries read: a reader
    // that lags (a loaded machine) loses what MAXLEN trimmed before it got there, as the package's does.
    const last = within(new Promise(resolve => cB.on('bulk', function on(i) {
      if (i === 399) { cB.off('bulk', on); resolve(); }
    })), 15000, 'the last bulk broadcast on node B');
    for (let i = 0; i < 400; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => ack(cA, 'emit', 'bulk', i + k)));
    await last;
    const n = await xlen();
    assert.ok(n >= 100 && n < 400, `XLEN ${n}: trimmed, about 100 kept`);
  });

  it('malformed stream entries are counted and skipped; serving goes on', async () => {
    const before = await Promise.all([stats(cA), stats(cB)]);
    const huge = '{' + 'x'.repeat(2 << 20);
    const bad = [
      ['foo', 'bar'],                                            // no nsp
      ['uid', 'x', 'nsp', '/', 'type', '3', 'data', '{oops'],    // data not JSON
      ['uid', 'x', 'nsp', '/', 'type', '3', 'data', Buffer.from([0xc1]).toString('base64')], // not msgpack
      ['uid', 'x', 'nsp', '/', 'type', '3', 'data', huge],       // a huge value that is not JSON either
    ];
    for (const f of bad) await probe.sendCommand(['XADD', 'socket.io', '*', ...f]);
    // and entries the package ignores as well: an unknown type, a namespace no node has
    await probe.sendCommand(['XADD', 'socket.io', '*', 'uid', 'x', 'nsp', '/', 'type', '999', 'data', '{}']);
    await probe.sendCommand(['XADD', 'socket.io', '*', 'uid', 'x', 'nsp', '/nowhere', 'type', '3', 'data',
                             JSON.stringify({ packet: { type: 2, data: ['x'], nsp: '/nowhere' }, opts: { rooms: [], except: [] } })]);
    for (const [i, s] of [cA, cB].entries())
      await until('malformed entries counted', async () => (await stats(s)).malformed >= before[i].malformed + bad.length, 5000);
    for (const from of [cC, cA]) {
      const got = Promise.all([cA, cB, cC].map(s => next(s, 'still')));
      await ack(from, 'emit', 'still', 1);
      for (const args of await got) assert.equal(args[0], 1);
    }
  });

  it('Redis killed and restarted: no broadcast is lost', async () => {
    await stopProc(redis, 'SIGKILL');
    await until('the wsio nodes see Redis down', async () =>
      (await stats(cA)).connected === false && (await stats(cB)).connected === false, 10000);
    const seen = [[], [], []];
    const got = [cA, cB, cC].map((s, i) => new Promise(resolve => {
      s.on('outage', x => { seen[i].push(x); if (seen[i].length === 4) resolve(); });
    }));
    // During the outage, from every node: local clients get them now (wsio) or once Redis is back (Node).
    await ack(cA, 'emit', 'outage', 'a');
    await ack(cB, 'emit', 'outage', 'b');
    cC.emit('emit', 'outage', 'c'); // Node answers once its XADD is through, after the restart
    assert.ok((await stats(cA)).queued > 0, 'entries wait for Redis');
    redis = (await startRedis()).proc;
    for (const s of [cA, cB]) await until('wsio reconnected', async () => (await stats(s)).connected === true, 15000);
    await ack(cA, 'emit', 'outage', 'after');
    await within(Promise.all(got), 15000, 'every broadcast on every node');
    await quiet(500); // and each once
    for (const g of seen) assert.deepEqual([...g].sort(), ['a', 'after', 'b', 'c']);
    assert.equal((await stats(cA)).queued, 0);
  });
});
