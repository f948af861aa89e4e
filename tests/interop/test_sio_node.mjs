// Interop: the official npm socket.io-client (4.8.1) against sio_server (tests/interop/sio_server.c).
// Run with `node --test`; SIO_SERVER names the server binary. Every suite starts its own server on a free
// port and stops it in after(), also when a test fails. With SIO_PARSER=msgpack the whole suite runs again
// with socket.io-msgpack-parser on both ends.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, Manager as ClientManager } from 'socket.io-client';
import { SioServer, within, waitEvent, ackOf, quiet, eventually, PARSER, parserOpts } from './sio_harness.mjs';

const io = (url, opts) => ioClient(url, { ...parserOpts, ...opts });
const Manager = class extends ClientManager {
  constructor(url, opts) { super(url, { ...parserOpts, ...opts }); }
};

const clients = new Set();

// A connected client (forceNew: one Engine.IO session each) or a rejection with the connect_error.
function connect(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  clients.add(socket);
  return within(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', err => reject(err));
  }), 5000, `connect ${url}`);
}

function closeAll() {
  for (const s of clients) {
    s.io.opts.reconnection = false;
    s.disconnect();
    s.io.engine?.close();
  }
  clients.clear();
}

// Rejected connections: the connect_error the client saw.
async function connectError(url, opts = {}) {
  try {
    await connect(url, opts);
  } catch (err) {
    return err;
  }
  assert.fail(`${url} connected but should have been refused`);
}

const TRANSPORTS = {
  polling: { transports: ['polling'] },
  websocket: { transports: ['websocket'] },
  upgrade: {},
};

for (const [name, topts] of Object.entries(TRANSPORTS)) {
  describe(`socket.io-client over ${name}`, () => {
    const server = new SioServer();
    let url;
    before(async () => { url = await server.start(); });
    after(() => server.stopClean());
    afterEach(closeAll);

    const open = (path = '', opts = {}) => connect(url + path, { ...topts, ...opts });

    it('connects with the expected transport, id and handshake', async () => {
      const s = await open('', { auth: { user: 'ann' }, query: { q: 'x y' } });
      if (name === 'upgrade' && s.io.engine.transport.name !== 'websocket')
        await waitEvent(s.io.engine, 'upgrade', 5000);
      const [info] = await ackOf(s, 'info');
      assert.equal(info.id, s.id);
      assert.equal(info.nsp, '/');
      assert.equal(info.transport, name === 'polling' ? 'polling' : 'websocket');
      assert.equal(s.io.engine.transport.name, info.transport);
      assert.deepEqual(info.auth, { user: 'ann' });
      assert.match(info.query, /(^|&)q=x%20y(&|$)/);
      assert.match(info.query, /(^|&)EIO=4(&|$)/);
      assert.deepEqual(info.rooms, [s.id]);
      await server.waitLine(new RegExp(`^connect / ${s.id} `));
    });

    it('echoes events with any JSON arguments', async () => {
      const s = await open();
      const args = ['héllo ✓ 😀', 42, -1.5, true, false, null, { a: [1, { b: 'c' }] }, [], {}];
      const got = waitEvent(s, 'echo');
      s.emit('echo', ...args);
      assert.deepEqual(await got, args);
      const none = waitEvent(s, 'echo');
      s.emit('echo');
      assert.deepEqual(await none, []);
    });

    it('keeps the order of many events, also across the upgrade', async () => {
      // Sent from the first moment on, in small bursts, so that with the default transports the stream
      // spans the move from polling to WebSocket in both directions.
      const s = io(url, { forceNew: true, reconnection: false, ...topts });
      clients.add(s);
      const N = 500;
      const seen = [];
      const done = new Promise(resolve => s.on('echo', n => { seen.push(n); if (seen.length === N) resolve(); }));
      for (let i = 0; i < N; i += 10) {
        for (let k = i; k < i + 10; k++) s.emit('echo', k);
        await quiet(1);
      }
      await within(done, 10000, `${N} echoes`);
      assert.deepEqual(seen, [...Array(N).keys()]);
    });

    it('gets what the server emits in its connection handler', async () => {
      const s = io(url, { forceNew: true, reconnection: false, ...topts });
      clients.add(s);
      const welcome = waitEvent(s, 'welcome');
      await waitEvent(s, 'connect');
      assert.deepEqual(await welcome, [{ id: s.id }]);
    });

    it('answers acks from the client (server acks)', async () => {
      const s = await open();
      assert.deepEqual(await ackOf(s, 'ack-me', 1, 'two', { three: [3] }), [1, 'two', { three: [3] }]);
      assert.deepEqual(await ackOf(s, 'ack-me'), []);
      assert.equal(await s.timeout(3000).emitWithAck('ack-me', 'promise'), 'promise');
    });

    it('gets acks from the client (client acks), and times out when none comes', async () => {
      const s = await open();
      s.on('question', (payload, cb) => cb(payload, 'answered', Buffer.from([7, 8]), { nested: Buffer.from('n') }));
      const answer = waitEvent(s, 'answer');
      assert.deepEqual(await ackOf(s, 'ask-client', { q: 1 }), [0]);
      assert.deepEqual(await answer, [{ q: 1 }, 'answered', Buffer.from([7, 8]), { nested: Buffer.from('n') }]);

      s.off('question');
      let asked = 0;
      s.on('question', () => { asked++; }); // never acks
      const timedOut = waitEvent(s, 'timeout');
      s.emit('ask-client', 'silent', 300);
      assert.deepEqual(await timedOut, ['timeout']);
      assert.equal(asked, 1);
    });

    it('round-trips binaries: Buffers, nested in objects and arrays, through events and acks', async () => {
      const s = await open();
      const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
      const big = Buffer.alloc(100000, 7);
      let got = waitEvent(s, 'echo');
      s.emit('echo', bytes);
      let [b] = await got;
      assert.ok(Buffer.isBuffer(b), 'a Buffer comes back');
      assert.ok(bytes.equals(b));

      got = waitEvent(s, 'echo');
      s.emit('echo', 'text', bytes, big, Buffer.alloc(0));
      const all = await got;
      assert.equal(all[0], 'text');
      assert.ok(bytes.equals(all[1]));
      assert.ok(big.equals(all[2]));
      assert.equal(all[3].length, 0);

      const nested = { file: bytes, list: ['x', Buffer.from('abc'), { deep: Buffer.from([9]) }], n: 1 };
      got = waitEvent(s, 'echo');
      s.emit('echo', nested);
      [b] = await got;
      assert.ok(Buffer.isBuffer(b.file), 'the nested Buffer comes back as a Buffer');
      assert.deepEqual(b, nested);

      const acked = await ackOf(s, 'ack-me', bytes, { inner: bytes });
      assert.ok(bytes.equals(acked[0]));
      assert.deepEqual(acked[1], { inner: bytes });
      const values = await ackOf(s, 'ack-values', 'v', big, [1]);
      assert.equal(values[0], 'v');
      assert.ok(big.equals(values[1]));
      assert.deepEqual(values[2], [1]);
    });

    it('joins and leaves rooms, and emits to a room', async () => {
      const [a, b, c] = await Promise.all([open(), open(), open()]);
      assert.deepEqual(await ackOf(a, 'join', 'r1'), [[a.id, 'r1']]);
      assert.deepEqual(await ackOf(b, 'join', 'r1'), [[b.id, 'r1']]);
      const inbox = { a: [], b: [], c: [] };
      a.on('room-msg', (...m) => inbox.a.push(m));
      b.on('room-msg', (...m) => inbox.b.push(m));
      c.on('room-msg', (...m) => inbox.c.push(m));

      assert.deepEqual(await ackOf(c, 'to-room', 'r1', 'hello'), [2]); // io.to(): the sender may be outside
      await waitUntil(() => inbox.a.length === 1 && inbox.b.length === 1);
      assert.deepEqual(inbox.a[0], ['r1', 'hello']);

      assert.deepEqual(await ackOf(a, 'to-room-others', 'r1', 'others'), [1]); // socket.to(): not the sender
      await waitUntil(() => inbox.b.length === 2);

      assert.deepEqual(await ackOf(b, 'leave', 'r1'), [[b.id]]);
      assert.deepEqual(await ackOf(c, 'to-room', 'r1', 'again'), [1]);
      await waitUntil(() => inbox.a.length === 2);
      assert.deepEqual(await ackOf(c, 'to-room', b.id, 'direct'), [1]); // every socket is in its own room
      await waitUntil(() => inbox.b.length === 3);
      await quiet(100);
      assert.equal(inbox.a.length, 2);
      assert.deepEqual(inbox.b.map(m => m[1]), ['hello', 'others', 'direct']);
      assert.equal(inbox.c.length, 0);
    });

    it('broadcasts to the others (socket.broadcast) and to all (io.emit)', async () => {
      const [a, b, c] = await Promise.all([open(), open(), open()]);
      const got = { a: [], b: [], c: [] };
      for (const [k, s] of Object.entries({ a, b, c })) {
        s.on('broadcast', (...m) => got[k].push(m));
        s.on('all', (...m) => got[k].push(['all', ...m]));
      }
      const [sent] = await ackOf(a, 'broadcast', 'hi', Buffer.from([1, 2]));
      assert.ok(sent >= 2, `broadcast reached ${sent}`);
      await waitUntil(() => got.b.length === 1 && got.c.length === 1);
      assert.equal(got.b[0][0], 'hi');
      assert.ok(Buffer.from([1, 2]).equals(got.c[0][1]));

      const [all] = await ackOf(b, 'emit-all', { x: 1 }, 'y');
      assert.ok(all >= 3, `io.emit reached ${all}`);
      await waitUntil(() => got.a.length === 1 && got.b.length === 2 && got.c.length === 2);
      assert.deepEqual(got.a[0], ['all', { x: 1 }, 'y']);
      await quiet(100);
      assert.equal(got.a.length, 1, 'the sender of a broadcast does not get it');
    });

    it('collects acks of a broadcast from every socket, and reports a timeout', async () => {
      const clientsHere = await Promise.all([open(), open(), open()]);
      for (const s of clientsHere) s.on('poll', (from, cb) => cb(s.id, from));
      const [asker] = clientsHere;
      let result = waitEvent(asker, 'bcast-result', 5000);
      const [targets] = await ackOf(asker, 'bcast-ack', 2000);
      assert.ok(targets >= 3);
      let [err, answers] = await result;
      assert.equal(err, null);
      assert.equal(answers.length, targets);
      const ids = answers.map(a => a[0]);
      for (const s of clientsHere) assert.ok(ids.includes(s.id), `answer from ${s.id}`);
      for (const a of answers) assert.equal(a[1], asker.id);

      clientsHere[2].off('poll');
      clientsHere[2].on('poll', () => {}); // stays silent
      result = waitEvent(asker, 'bcast-result', 5000);
      await ackOf(asker, 'bcast-ack', 300);
      [err, answers] = await result;
      assert.equal(err, 'timed out');
      assert.ok(!answers.map(a => a[0]).includes(clientsHere[2].id));
      assert.ok(answers.map(a => a[0]).includes(clientsHere[1].id));
    });

    it('multiplexes namespaces on one connection; middleware accepts the right token', async () => {
      const manager = new Manager(url, { ...topts, reconnection: false });
      const main = manager.socket('/');
      const admin = manager.socket('/admin', { auth: { token: 'secret' } });
      clients.add(main).add(admin);
      main.connect();
      admin.connect();
      await Promise.all([waitEvent(main, 'connect'), waitEvent(admin, 'connect')]);
      assert.equal(main.io.engine, admin.io.engine, 'one Engine.IO session');
      const [info] = await ackOf(admin, 'info');
      assert.equal(info.nsp, '/admin');
      assert.equal(info.id, admin.id);
      assert.notEqual(admin.id, main.id);
      const echoed = waitEvent(admin, 'echo');
      let mainEcho = 0;
      main.on('echo', () => mainEcho++);
      admin.emit('echo', 'in admin', Buffer.from('b'));
      const [text, bin] = await echoed;
      assert.equal(text, 'in admin');
      assert.equal(bin.toString(), 'b');
      await quiet(100);
      assert.equal(mainEcho, 0, 'events stay in their namespace');
      // Leaving one namespace keeps the other.
      admin.disconnect();
      await server.waitLine(new RegExp(`^disconnect /admin ${info.id} client namespace disconnect$`));
      assert.deepEqual(await ackOf(main, 'ack-me', 'still'), ['still']);
      // And joining it again on the same connection works.
      admin.connect();
      await waitEvent(admin, 'connect');
      assert.notEqual(admin.id, info.id);
      assert.deepEqual(await ackOf(admin, 'ack-me', 'back'), ['back']);
      // disconnect(true) from one namespace tells every namespace of the connection, then closes it.
      const adminId = admin.id;
      const reasons = Promise.all([waitEvent(main, 'disconnect'), waitEvent(admin, 'disconnect')]);
      main.emit('disconnect-me', true);
      assert.deepEqual((await reasons).map(r => r[0]), ['io server disconnect', 'io server disconnect']);
      await server.waitLine(new RegExp(`^disconnect /admin ${adminId} server namespace disconnect$`));
    });

    it('refuses a bad token with the middleware\'s error and data', async () => {
      const err = await connectError(url + '/admin', { ...topts, auth: { token: 'wrong' } });
      assert.equal(err.message, 'unauthorized');
      assert.deepEqual(err.data, { code: 401 });
      const none = await connectError(url + '/admin', topts);
      assert.equal(none.message, 'unauthorized');
    });

    it('creates dynamic namespaces that match, and refuses unknown ones', async () => {
      const s = await open('/dyn-abc');
      const [info] = await ackOf(s, 'info');
      assert.equal(info.nsp, '/dyn-abc');
      assert.deepEqual(await ackOf(s, 'ack-me', 'dyn'), ['dyn']);
      const t = await open('/dyn-abc');
      assert.equal((await ackOf(t, 'info'))[0].count, 2, 'the second client joins the same child namespace');
      const other = await open('/dyn-xyz');
      assert.equal((await ackOf(other, 'info'))[0].nsp, '/dyn-xyz');

      const unknown = await connectError(url + '/nope', topts);
      assert.equal(unknown.message, 'Invalid namespace');
      const empty = await connectError(url + '/dyn-', topts);
      assert.equal(empty.message, 'Invalid namespace');
    });

    it('disconnects on the server\'s request ("io server disconnect") and sees client disconnects', async () => {
      const s = await open();
      const id = s.id;
      const reason = waitEvent(s, 'disconnect');
      s.emit('disconnect-me');
      assert.equal((await reason)[0], 'io server disconnect');
      await server.waitLine(new RegExp(`^disconnect / ${id} server namespace disconnect$`));
      assert.equal(s.connected, false);

      const t = await open();
      const tid = t.id;
      t.disconnect();
      await server.waitLine(new RegExp(`^disconnect / ${tid} client namespace disconnect$`));

      // disconnect(true): the whole connection goes too.
      const u = await open();
      const uid = u.id;
      const closed = waitEvent(u.io.engine, 'close');
      const ureason = waitEvent(u, 'disconnect');
      u.emit('disconnect-me', true);
      assert.equal((await ureason)[0], 'io server disconnect');
      await closed;
      await server.waitLine(new RegExp(`^disconnect / ${uid} server namespace disconnect$`));
    });

    it('counts every event in onAny', async () => {
      const s = await open();
      s.emit('whatever', 1);
      s.emit('echo', 2);
      assert.deepEqual(await ackOf(s, 'count-events'), [3]);
    });

    it('calls onAny before the event\'s own handler, as socket.io does', async () => {
      const s = await open();
      s.emit('whatever', 1);
      // onAny has counted "count-seen" itself by the time its handler answers.
      assert.deepEqual(await ackOf(s, 'count-seen'), [2]);
    });
  });
}

describe('reconnection, heartbeats and many clients', () => {
  afterEach(closeAll);

  it('reconnects after the server restarts on the same port', async () => {
    const server = new SioServer();
    try {
      const url = await server.start();
      const s = io(url, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300 });
      clients.add(s);
      await waitEvent(s, 'connect');
      // Killed once upgraded: socket.io-client leaves its polling paused for good when the WebSocket probe
      // fails after the pause began (the server dying in between), and then only its ping timeout tells it
      // the server is gone.
      await eventually(() => assert.equal(s.io.engine.transport.name, 'websocket'));
      const firstId = s.id;
      const dropped = waitEvent(s, 'disconnect');
      server.kill();
      const [reason] = await dropped;
      assert.ok(['transport close', 'transport error'].includes(reason), reason);
      await quiet(300); // a few failed attempts while nothing listens
      const back = waitEvent(s, 'connect', 10000);
      await server.start(server.port);
      await back;
      assert.notEqual(s.id, firstId);
      assert.deepEqual(await ackOf(s, 'ack-me', 'after restart'), ['after restart']);
      await server.stopClean();
    } finally {
      await server.stop();
    }
  });

  for (const transport of ['polling', 'websocket']) {
    it(`closes a ${transport} client that stops answering pings ("ping timeout")`, async () => {
      const server = new SioServer(['--ping-interval', '200', '--ping-timeout', '300']);
      try {
        const url = await server.start();
        const healthy = await connect(url, { transports: [transport] });
        const s = await connect(url, { transports: [transport] });
        const engine = s.io.engine;
        assert.equal(engine.transport.name, transport);
        // The engine still sees the pings (its own timer stays happy) but never sends a pong.
        const send = engine._sendPacket.bind(engine);
        let pongs = 0;
        engine._sendPacket = (type, ...rest) => (type === 'pong' ? void pongs++ : send(type, ...rest));
        const gone = waitEvent(s, 'disconnect', 5000);
        await server.waitLine(new RegExp(`^disconnect / ${s.id} ping timeout$`), 5000);
        await gone;
        assert.ok(pongs >= 1, 'the server pinged');
        // The other client kept answering: still there after several intervals.
        await quiet(700);
        assert.equal(healthy.connected, true);
        assert.deepEqual(await ackOf(healthy, 'ack-me', 'alive'), ['alive']);
        await server.stopClean();
      } finally {
        await server.stop();
      }
    });
  }

  it('delivers a broadcast to 200 concurrent clients', async () => {
    const server = new SioServer();
    try {
      const url = await server.start();
      const N = 200;
      const opts = i => ({ transports: i % 4 === 0 ? ['polling'] : ['websocket'] });
      const all = [];
      for (let i = 0; i < N; i += 50)
        all.push(...await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) => connect(url, opts(i + k)))));
      assert.equal(new Set(all.map(s => s.id)).size, N);
      const got = all.map(s => waitEvent(s, 'all', 10000));
      const [reached] = await ackOf(all[0], 'emit-all', 'to everyone');
      assert.equal(reached, N);
      for (const g of got) assert.deepEqual(await g, ['to everyone']);

      const others = all.slice(1).map(s => waitEvent(s, 'broadcast', 10000));
      let selfGot = 0;
      all[0].on('broadcast', () => selfGot++);
      assert.deepEqual(await ackOf(all[0], 'broadcast', Buffer.from('bin')), [N - 1]);
      for (const g of others) assert.equal((await g)[0].toString(), 'bin');
      assert.equal(selfGot, 0);
      await server.stopClean();
    } finally {
      await server.stop();
    }
  });
});

async function waitUntil(cond, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await quiet(10);
  }
}

// socket.io-msgpack-parser only: what notepack.io writes beyond JSON, and what the server does with
// packets that parser's decoder refuses (raw WebSocket clients speaking Engine.IO by hand).
if (PARSER === 'msgpack') {
  const { WebSocket } = await import('ws');
  const notepack = (await import('notepack.io')).default;

  // An Engine.IO WebSocket session by hand: resolves once the open packet came; frames go to onFrame.
  function rawSession(url) {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    let wake = null;
    ws.on('message', (data, isBinary) => { frames.push({ data, isBinary }); if (wake) wake(); });
    const closed = new Promise(resolve => ws.on('close', code => resolve(code)));
    const nextFrame = async (ms = 3000) => {
      const end = Date.now() + ms;
      while (!frames.length) {
        if (Date.now() > end) assert.fail('no frame in time');
        await within(new Promise(resolve => { wake = resolve; }), ms, 'a frame').catch(() => {});
      }
      return frames.shift();
    };
    return { ws, nextFrame, closed };
  }

  describe('socket.io-msgpack-parser: values and refusals', () => {
    const server = new SioServer();
    let url;
    before(async () => { url = await server.start(); });
    after(() => server.stopClean());
    afterEach(closeAll);

    it('carries Dates, undefined and typed arrays as JSON.stringify and Buffers would', async () => {
      const s = await connect(url, { transports: ['websocket'] });
      const got = waitEvent(s, 'echo');
      s.emit('echo', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), undefined, { a: undefined, b: 1 },
             new Uint8Array([1, 2, 3]));
      const [date, undef, obj, bytes] = await got;
      assert.equal(date, '2024-01-02T03:04:05.678Z');
      assert.equal(undef, null);
      assert.deepEqual(obj, { b: 1 });
      assert.ok(Buffer.isBuffer(bytes) && bytes.equals(Buffer.from([1, 2, 3])), 'an ArrayBuffer view comes back as bytes');
    });

    it('sends every packet as one binary message, and closes a client that sends text or a bad packet', async () => {
      const healthy = await connect(url, { transports: ['websocket'] });
      const bad = [
        '40',                                                  // a text message: the default parser's form
        notepack.encode({ type: 2, nsp: '/', data: 'x' }),     // an event whose data is no array
        notepack.encode({ type: 7, nsp: '/', data: [] }),      // no such type
        notepack.encode({ type: 2, data: ['echo'] }),          // no namespace
        notepack.encode({ type: 1, nsp: '/', data: [1] }),     // DISCONNECT with data
        notepack.encode({ type: 2, nsp: '/', data: ['echo'], id: 1.5 }), // not an integer id
        Buffer.from([0x93, 0x01]),                             // truncated msgpack
      ];
      for (const frame of bad) {
        const r = rawSession(url);
        const open = await r.nextFrame();
        assert.equal(open.isBinary, false);
        assert.match(open.data.toString(), /^0\{"sid"/);
        r.ws.send(notepack.encode({ type: 0, nsp: '/' }));
        const ok = await r.nextFrame();
        assert.equal(ok.isBinary, true, 'CONNECT comes back as a binary message');
        const pkt = notepack.decode(ok.data);
        assert.equal(pkt.type, 0);
        assert.equal(pkt.nsp, '/');
        assert.match(pkt.data.sid, /^[\w-]{20}$/);
        r.ws.send(frame);
        await within(r.closed, 3000, `the server closes after ${Buffer.isBuffer(frame) ? frame.toString('hex') : frame}`);
      }
      // A well-formed event by hand, with an ack id: the ack comes back as msgpack.
      const r = rawSession(url);
      await r.nextFrame();
      r.ws.send(notepack.encode({ type: 0, nsp: '/', data: undefined }));
      await r.nextFrame();
      r.ws.send(notepack.encode({ type: 2, nsp: '/', data: ['ack-me', 'x', Buffer.from([5])], id: 7, options: { compress: true } }));
      let f;
      do f = await r.nextFrame(); while (!f.isBinary || notepack.decode(f.data).type !== 3);
      const ack = notepack.decode(f.data);
      assert.equal(ack.id, 7);
      assert.equal(ack.nsp, '/');
      assert.deepEqual(ack.data, ['x', Buffer.from([5])]);
      r.ws.close();
      // Everyone else was served all along.
      assert.deepEqual(await ackOf(healthy, 'ack-me', 'still here'), ['still here']);
    });
  });
}

// Long-polling responses compressed as engine.io's httpCompression does (default parser only: the
// transport's behaviour is the same with either).
if (!PARSER) {
  const http = await import('node:http');
  const zlib = await import('node:zlib');

  // One HTTP request; resolves with the status, headers and raw (still encoded) body.
  function request(url, { method = 'GET', headers = {}, body } = {}) {
    return within(new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: false }, res => {
        const chunks = [];
        res.on('data', c => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    }), 5000, `${method} ${url}`);
  }

  // A polling session joined to "/", and a function that has the server echo text back and GETs it.
  async function pollingSession(base) {
    const url = `${base}/socket.io/?EIO=4&transport=polling`;
    const open = await request(url);
    const sid = JSON.parse(open.body.toString().slice(1)).sid;
    const at = `${url}&sid=${sid}`;
    assert.equal((await request(at, { method: 'POST', body: '40' })).status, 200);
    assert.match((await request(at)).body.toString(), /^40\{"sid":/);
    return async (text, headers) => {
      assert.equal((await request(at, { method: 'POST', body: `42${JSON.stringify(['echo', text])}` })).status, 200);
      return request(at, { headers });
    };
  }

  describe('long-polling responses compressed for clients that accept it', () => {
    const big = 'compressible '.repeat(300); // 3.9 KB
    const want = `42${JSON.stringify(['echo', big])}`;

    it('uses gzip, else deflate, from 1 KB on, and never against the client\'s Accept-Encoding', async () => {
      const server = new SioServer();
      try {
        const echo = await pollingSession(await server.start());
        let r = await echo(big, { 'Accept-Encoding': 'gzip, deflate, br' });
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.equal(r.headers['vary'], 'Accept-Encoding');
        assert.ok(r.body.length < want.length / 4, `compressed to ${r.body.length} bytes`);
        assert.equal(Number(r.headers['content-length']), r.body.length);
        assert.equal(zlib.gunzipSync(r.body).toString(), want);

        r = await echo(big, { 'Accept-Encoding': 'gzip;q=0, DEFLATE' });
        assert.equal(r.headers['content-encoding'], 'deflate');
        assert.equal(zlib.inflateSync(r.body).toString(), want);

        for (const ae of [undefined, 'identity', 'gzip;q=0, deflate;q=0.0', 'br']) {
          r = await echo(big, ae ? { 'Accept-Encoding': ae } : {});
          assert.equal(r.headers['content-encoding'], undefined, `Accept-Encoding: ${ae}`);
          assert.equal(r.headers['vary'], 'Accept-Encoding');
          assert.equal(r.body.toString(), want);
        }

        r = await echo('small', { 'Accept-Encoding': 'gzip' }); // under the threshold
        assert.equal(r.headers['content-encoding'], undefined);
        assert.equal(r.body.toString(), '42["echo","small"]');
        await server.stopClean();
      } finally {
        await server.stop();
      }
    });

    it('follows the threshold it is given, 0 being off', async () => {
      for (const [threshold, compressed] of [['0', false], ['16', true]]) {
        const server = new SioServer(['--http-compression', threshold]);
        try {
          const echo = await pollingSession(await server.start());
          const r = await echo('twenty bytes or so.', { 'Accept-Encoding': 'gzip' });
          assert.equal(r.headers['content-encoding'], compressed ? 'gzip' : undefined, `threshold ${threshold}`);
          const body = compressed ? zlib.gunzipSync(r.body) : r.body;
          assert.equal(body.toString(), '42["echo","twenty bytes or so."]');
          await server.stopClean();
        } finally {
          await server.stop();
        }
      }
    });
  });
}

describe('namespaces made by a matcher are capped', () => {
  afterEach(closeAll);

  it('refuses new names past the cap, as unknown namespaces, and keeps serving the ones made', async () => {
    // One worker even in the workers run: each worker's io counts its own namespaces.
    const server = new SioServer(['--max-dynamic', '2', '--workers', '1']);
    try {
      const url = await server.start();
      const a = await connect(url + '/dyn-a');
      const b = await connect(url + '/dyn-b');
      for (let i = 0; i < 3; i++) {
        const err = await connectError(url + `/dyn-new-${i}`);
        assert.equal(err.message, 'Invalid namespace');
      }
      const again = await connect(url + '/dyn-a'); // a name made before: still there
      assert.equal((await ackOf(again, 'info'))[0].count, 2);
      for (const s of [a, b]) assert.deepEqual(await ackOf(s, 'ack-me', 'still'), ['still']);
      await server.stopClean();
    } finally {
      await server.stop();
    }
  });
});

describe('allowRequest (wsio_io_allow_request)', () => {
  const server = new SioServer();
  let url;
  before(async () => { url = await server.start(); });
  after(() => server.stopClean());
  afterEach(closeAll);

  for (const transport of ['polling', 'websocket']) {
    it(`refuses a ${transport} session the callback refuses, and lets others in`, async () => {
      let err = await connectError(url, { transports: [transport], query: { deny: 'query' } });
      assert.equal(err.message, transport === 'polling' ? 'xhr poll error' : 'websocket error');
      err = await connectError(url, { transports: [transport], extraHeaders: { 'X-Deny': '1' } });
      assert.equal(err.message, transport === 'polling' ? 'xhr poll error' : 'websocket error');
      const ok = await connect(url, { transports: [transport], query: { deny: 'no' } });
      assert.deepEqual(await ackOf(ok, 'ack-me', 'in'), ['in']);
    });
  }

  it('answers 403 with the Engine.IO error body, before any session exists', async () => {
    let res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&deny=query`);
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { code: 4, message: 'denied by query' });
    res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { 'X-Deny': 'yes' } });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { code: 4, message: 'Forbidden' });
    // A direct WebSocket handshake gets the same answer instead of the 101.
    const { request } = await import('node:http');
    const upgrade = await within(new Promise((resolve, reject) => {
      const req = request(`${url}/socket.io/?EIO=4&transport=websocket&deny=query`, {
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
                   'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
      req.on('response', r => {
        let body = '';
        r.on('data', d => { body += d; });
        r.on('end', () => resolve({ status: r.statusCode, body }));
      });
      req.on('upgrade', () => reject(new Error('upgraded although refused')));
      req.on('error', reject);
      req.end();
    }), 5000, 'the refused upgrade');
    assert.equal(upgrade.status, 403);
    assert.deepEqual(JSON.parse(upgrade.body), { code: 4, message: 'denied by query' });
    // Requests of an existing session are not asked about again.
    res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
    const { sid } = JSON.parse((await res.text()).slice(1));
    res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}&deny=query`, { method: 'POST', body: '40' });
    assert.equal(res.status, 200);
    const [stats] = await ackOf(await connect(url), 'server-stats');
    assert.ok(stats, 'the server still serves');
  });

  it('reports every Engine.IO error answer to connection_error, with its code and message', async () => {
    const mark = server.lines.length;
    const seen = re => eventually(() => assert.ok(server.lines.slice(mark).some(l => re.test(l)), `a line ${re}`), 3000);
    const cases = [
      ['transport=polling&deny=query', 'GET', 403, 4, 'denied by query'],
      ['transport=polling', 'GET', 403, 4, 'Forbidden', { 'X-Deny': '1' }],
      ['transport=carrier-pigeon', 'GET', 400, 0, 'Transport unknown'],
      ['transport=polling&sid=AAAAAAAAAAAAAAAAAAAA', 'GET', 400, 1, 'Session ID unknown'],
      ['transport=polling', 'PUT', 400, 2, 'Bad handshake method'],
    ];
    for (const [query, method, status, code, message, headers] of cases) {
      const res = await fetch(`${url}/socket.io/?EIO=4&${query}`, { method, headers });
      assert.equal(res.status, status, query);
      assert.deepEqual(await res.json(), { code, message });
      await seen(new RegExp(`^eio-error ${code} ${message}$`));
    }
    const v3 = await fetch(`${url}/socket.io/?EIO=3&transport=polling`);
    assert.equal(v3.status, 400);
    await seen(/^eio-error 5 Unsupported protocol version$/);
    // A connection that goes well reports nothing.
    const before = server.lines.slice(mark).filter(l => l.startsWith('eio-error')).length;
    await connect(url, { transports: ['polling'] });
    await quiet(100);
    assert.equal(server.lines.slice(mark).filter(l => l.startsWith('eio-error')).length, before);
  });
});

// The adapter's room events (wsio_nsp_on_room) against those of Node socket.io itself: the same clients do
// the same things to both servers, and both report the same events in the same order.
if (!PARSER) {
  const { Server } = await import('socket.io');
  const { createServer } = await import('node:http');

  // A connects, joins and leaves r1; B connects and joins r1; A leaves; B leaves. The ids come back.
  async function roomScenario(url) {
    const a = await connect(url, { transports: ['websocket'] });
    await ackOf(a, 'join', 'r1');
    await ackOf(a, 'leave', 'r1');
    const b = await connect(url, { transports: ['websocket'] });
    await ackOf(b, 'join', 'r1');
    const ids = [a.id, b.id];
    a.disconnect();
    await quiet(100);
    b.disconnect();
    await quiet(100);
    return ids;
  }
  const named = (events, [a, b]) => events.map(e => e.map(x => (x === a ? 'A' : x === b ? 'B' : x)));

  describe('room events, as socket.io\'s adapter emits them', () => {
    it('reports create, join, leave and delete as Node socket.io does, own rooms included', async () => {
      // Node socket.io 4.8, in this process, with the same "join" and "leave" events as sio_server.
      const http = createServer();
      const ref = new Server(http);
      const refEvents = [];
      for (const ev of ['create', 'delete', 'join', 'leave'])
        ref.of('/').adapter.on(`${ev}-room`, (...args) => refEvents.push([ev, ...args]));
      ref.on('connection', s => {
        s.on('join', (room, ack) => { s.join(room); ack([...s.rooms]); });
        s.on('leave', (room, ack) => { s.leave(room); ack([...s.rooms]); });
      });
      await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
      let want;
      try {
        want = named(refEvents, await roomScenario(`http://127.0.0.1:${http.address().port}`));
      } finally {
        ref.close();
        closeAll();
      }
      assert.equal(want.length, 16, JSON.stringify(want)); // the scenario's worth, so the comparison means something

      const server = new SioServer();
      try {
        const url = await server.start();
        const mark = server.lines.length;
        const ids = await roomScenario(url);
        await server.waitLine(new RegExp(`^disconnect / ${ids[1]} `));
        const got = server.lines.slice(mark).filter(l => l.startsWith('room ')).map(l => l.split(' ').slice(1));
        assert.deepEqual(named(got, ids), want);
        await server.stopClean();
      } finally {
        await server.stop();
      }
    });
  });
}
