// allowEIO3: the real socket.io-client 2.5.0 (Engine.IO v3, Socket.IO protocol 4) against sio_server
// --allow-eio3, over polling, WebSocket and the upgrade; v2 and v4 clients sharing rooms and broadcasts;
// the reversed heartbeat; the v3 polling payloads (text, binary, b64, JSONP) at the byte level. Where the
// behaviour is subtle (open packet, socket ids, error packets, protocol mismatch, JSONP) the same requests
// go to Node's socket.io 4.8 with allowEIO3: true, and both servers must agree.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import ioV2 from 'socket.io-client-v2';
import { io as ioV4 } from 'socket.io-client';
import { Server } from 'socket.io';
import WebSocket from 'ws';
import { SioServer, within, waitEvent, eventually, quiet, SCALE } from './sio_harness.mjs';

const PING_INTERVAL = 300, PING_TIMEOUT = 200;
const v2 = (url, opts = {}) => ioV2(url, { forceNew: true, reconnection: false, ...opts });
const v4 = (url, opts = {}) => ioV4(url, { forceNew: true, reconnection: false, ...opts });
const open = [];
const keep = s => (open.push(s), s);

function ack(socket, event, ...args) {
  return within(new Promise(resolve => socket.emit(event, ...args, (...res) => resolve(res))), 5000,
                `ack of ${event}`);
}

async function connected(s) {
  if (!s.connected) await waitEvent(s, 'connect');
  return s;
}

// A v3 text payload: <UTF-16 length>:<packet>...
const textPayload = (...packets) => packets.map(p => `${p.length}:${p}`).join('');
function parseTextPayload(body) {
  const out = [];
  for (let i = 0; i < body.length;) {
    const colon = body.indexOf(':', i);
    assert.ok(colon > i, `length before ':' in ${JSON.stringify(body)}`);
    const n = Number(body.slice(i, colon));
    out.push(body.slice(colon + 1, colon + 1 + n));
    i = colon + 1 + n;
  }
  return out;
}
// A v3 binary payload: 0|1, length digits one per byte, 255, packet.
function parseBinaryPayload(buf) {
  const out = [];
  for (let i = 0; i < buf.length;) {
    const kind = buf[i++];
    let len = '';
    while (buf[i] !== 255) len += String(buf[i++]);
    i++;
    const pkt = buf.subarray(i, i + Number(len));
    out.push(kind === 0 ? pkt.toString('utf8') : pkt);
    i += Number(len);
  }
  return out;
}
function binaryPayload(...packets) {
  return Buffer.concat(packets.map(p => {
    const data = typeof p === 'string' ? Buffer.from(p) : p;
    const digits = [...String(data.length)].map(Number);
    return Buffer.from([typeof p === 'string' ? 0 : 1, ...digits, 255, ...data]);
  }));
}

async function handshake(base, extra = '') {
  const res = await fetch(`${base}/socket.io/?EIO=3&transport=polling${extra}`);
  const body = await res.text();
  return { res, body };
}

// Node's socket.io 4.8 with allowEIO3, set up as sio_server's parts the tests compare.
async function nodeServer() {
  const http = createServer();
  const io = new Server(http, { allowEIO3: true, pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });
  io.on('connection', s => {
    s.on('info', cb => cb({ id: s.id }));
    s.on('echo', (...a) => s.emit('echo', ...a));
  });
  io.of('/admin').use((s, next) => {
    if (s.handshake.auth.token === 'secret') return next();
    const err = new Error('unauthorized');
    err.data = { code: 401 };
    next(err);
  }).on('connection', s => s.on('info', cb => cb({ id: s.id, auth: s.handshake.auth })));
  io.of('/nodata').use((s, next) => next(new Error('no entry')));
  await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${http.address().port}`, close: () => new Promise(r => io.close(() => r())) };
}

describe('socket.io-client 2.x (allowEIO3)', () => {
  let server, url, node;
  before(async () => {
    server = new SioServer(['--allow-eio3', '--ping-interval', String(PING_INTERVAL), '--ping-timeout',
                            String(PING_TIMEOUT)]);
    url = await server.start();
    node = await nodeServer();
  });
  after(async () => {
    for (const s of open) s.close();
    await node.close();
    await server.stop();
  });

  for (const transports of [['polling'], ['websocket'], undefined]) {
    const name = transports ? transports[0] : 'polling then upgrade';
    it(`${name}: connects to "/" at once, events, acks and binaries both ways`, async () => {
      const s = keep(v2(url, { transports }));
      const [welcome] = await waitEvent(s, 'welcome');
      await connected(s);
      assert.equal(welcome.id, s.id, 'the socket id in "/" is the Engine.IO id');
      assert.equal(s.id, s.io.engine.id);
      if (!transports) await eventually(() => assert.equal(s.io.engine.transport.name, 'websocket'));
      // server -> client event, with binaries top-level and nested
      const echoed = waitEvent(s, 'echo');
      s.emit('echo', 'hé 😀', Buffer.from([0, 1, 255]), { deep: [Buffer.from('xy')] });
      const [text, bin, nested] = await echoed;
      assert.equal(text, 'hé 😀');
      assert.deepEqual([...bin], [0, 1, 255]);
      assert.equal(Buffer.from(nested.deep[0]).toString(), 'xy');
      // client -> server ack with a binary, answered with it
      const [a0, a1] = await ack(s, 'ack-me', 'x', Buffer.from([7, 8]));
      assert.equal(a0, 'x');
      assert.deepEqual([...a1], [7, 8]);
      // server -> client ack: the server asks, the client answers with a binary, the server sends it back
      s.once('question', (payload, cb) => cb(payload, Buffer.from([42])));
      const answered = waitEvent(s, 'answer');
      await ack(s, 'ask-client', { q: 1 });
      const [p, b] = await answered;
      assert.deepEqual(p, { q: 1 });
      assert.deepEqual([...b], [42]);
      s.close();
    });
  }

  it('a namespace query becomes auth; ids are nsp#engine id, as socket.io gives them', async () => {
    for (const base of [url, node.url]) {
      const root = keep(v2(base, { transports: ['websocket'] }));
      await connected(root);
      const admin = keep(v2(`${base}/admin`, { transports: ['websocket'], query: { token: 'secret', 'a b': 'c+d' } }));
      await connected(admin);
      const [info] = await ack(admin, 'info');
      assert.equal(info.id, `/admin#${admin.io.engine.id}`, base);
      assert.equal(info.auth.token, 'secret');
      assert.equal(info.auth['a b'], 'c+d');
      root.close();
      admin.close();
    }
  });

  it("refusals: the v2 'error' event gets what socket.io sends protocol 3", async () => {
    const seen = {};
    for (const [key, base] of [['wsio', url], ['node', node.url]]) {
      seen[key] = {};
      for (const nsp of ['/admin', '/nodata', '/nowhere']) {
        const s = keep(v2(`${base}${nsp}`, { transports: ['websocket'] }));
        const [err] = await waitEvent(s, 'error');
        seen[key][nsp] = err;
        s.close();
      }
    }
    assert.deepEqual(seen.wsio, seen.node);
    assert.deepEqual(seen.wsio['/admin'], { code: 401 });
    assert.equal(seen.wsio['/nodata'], 'no entry');
    assert.deepEqual(seen.wsio['/nowhere'], { message: 'Invalid namespace' });
  });

  it('v2 and v4 clients in one room get each other\'s broadcasts, binary ones too', async () => {
    const clients = {
      v2ws: keep(v2(url, { transports: ['websocket'] })),
      v2poll: keep(v2(url, { transports: ['polling'] })),
      v4ws: keep(v4(url, { transports: ['websocket'] })),
      v4poll: keep(v4(url, { transports: ['polling'] })),
    };
    for (const s of Object.values(clients)) {
      await connected(s);
      await ack(s, 'join', 'mixed');
    }
    for (const [from, sender] of Object.entries(clients)) {
      const others = Object.entries(clients).filter(([k]) => k !== from);
      const got = others.map(([, s]) => waitEvent(s, 'room-msg'));
      const [n] = await ack(sender, 'to-room-others', 'mixed', from, Buffer.from([1, 2, 3]), { b: Buffer.from([9]) });
      assert.equal(n, 3);
      for (const [room, who, bin, obj] of await Promise.all(got)) {
        assert.equal(room, 'mixed');
        assert.equal(who, from);
        assert.deepEqual([...Buffer.from(bin)], [1, 2, 3]);
        assert.deepEqual([...Buffer.from(obj.b)], [9]);
      }
      // and a text-only one, shared by every receiver
      const texts = others.map(([, s]) => waitEvent(s, 'broadcast'));
      await ack(sender, 'broadcast', `text from ${from}`);
      for (const [t] of await Promise.all(texts)) assert.equal(t, `text from ${from}`);
    }
    for (const s of Object.values(clients)) s.close();
  });

  it('a server-side disconnect reaches the v2 client', async () => {
    const s = keep(v2(url, { transports: ['polling'] }));
    await connected(s);
    const id = s.id;
    const gone = waitEvent(s, 'disconnect');
    s.emit('disconnect-me');
    assert.deepEqual(await gone, ['io server disconnect']);
    await server.waitLine(new RegExp(`^disconnect / ${id} server namespace disconnect$`));
  });

  it('the client pings and stays connected over many ping intervals; a disconnect from it is seen', async () => {
    for (const transports of [['polling'], ['websocket']]) {
      const s = keep(v2(url, { transports }));
      await connected(s);
      let pongs = 0;
      s.io.engine.on('pong', () => pongs++);
      let dropped = null;
      s.on('disconnect', r => { dropped = r; });
      await quiet(6 * (PING_INTERVAL + PING_TIMEOUT) * SCALE);
      assert.equal(dropped, null, `${transports}: still connected`);
      assert.ok(pongs >= 5, `${transports}: ${pongs} pongs`);
      const id = s.id;
      s.close();
      await server.waitLine(new RegExp(`^disconnect / ${id} (transport close|client namespace disconnect)$`));
    }
  });

  it('a silent v3 client is closed after pingInterval + pingTimeout, not before', async () => {
    // polling: the handshake, then nothing
    const { body } = await handshake(url);
    const sid = JSON.parse(parseTextPayload(body)[0].slice(1)).sid;
    const t0 = Date.now();
    const polled = await server.waitLine(new RegExp(`^disconnect / ${sid} ping timeout$`), 5000);
    const elapsed = Date.now() - t0;
    assert.ok(polled);
    assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - 50, `closed after ${elapsed} ms`);
    // a raw WebSocket that never pings: never pinged by the server either, then closed
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=3&transport=websocket`);
    const frames = [];
    ws.on('message', (d, isBinary) => frames.push(isBinary ? d : d.toString()));
    const closed = new Promise(resolve => ws.on('close', resolve));
    await waitEvent(ws, 'open');
    const w0 = Date.now();
    await within(closed, 5000, 'the silent WebSocket closed');
    const welapsed = Date.now() - w0;
    assert.ok(welapsed >= PING_INTERVAL + PING_TIMEOUT - 50, `closed after ${welapsed} ms`);
    assert.match(frames[0], /^0\{/);
    assert.deepEqual(frames.filter(f => f === '2' || f[0] === '2'), [], 'the server never pings a v3 client');
    assert.ok(frames.includes('40'), 'connected to "/" without asking');
  });

  it('the open packet: a v3 payload with the fields engine.io sends, maxPayload included', async () => {
    const bodies = [];
    for (const base of [url, node.url]) {
      const { res, body } = await handshake(base);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=UTF-8');
      const packets = parseTextPayload(body);
      assert.equal(packets[0][0], '0');
      bodies.push(JSON.parse(packets[0].slice(1)));
    }
    const [ours, theirs] = bodies;
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
    assert.deepEqual(ours.upgrades, theirs.upgrades);
    assert.equal(ours.pingInterval, theirs.pingInterval);
    assert.equal(ours.maxPayload, theirs.maxPayload);
  });

  it('polling payloads: UTF-16 lengths, binary payloads without b64, b4 with it, either POST form', async () => {
    // text: a character outside the BMP counts two
    const { body } = await handshake(url, '&b64=1');
    const sid = JSON.parse(parseTextPayload(body)[0].slice(1)).sid;
    const poll = (q = '') => fetch(`${url}/socket.io/?EIO=3&transport=polling&sid=${sid}${q}`);
    const post = (data, type = 'text/plain;charset=UTF-8') =>
      fetch(`${url}/socket.io/?EIO=3&transport=polling&sid=${sid}`, { method: 'POST', body: data,
                                                                       headers: { 'content-type': type } });
    let r = await poll(); // "40" (and the welcome)
    assert.ok(parseTextPayload(await r.text()).includes('40'));
    const pkt = '42["echo","😀é"]';
    assert.equal((await post(textPayload(pkt))).status, 200);
    r = await poll();
    const raw = await r.text();
    assert.ok(raw.includes(`${pkt.length}:${pkt}`), raw);
    assert.equal(pkt.length, 16); // 14 ASCII, 2 for the emoji, 1 for é... as JavaScript counts
    // b64: a binary attachment as b4<base64>
    assert.equal((await post(textPayload('451-["echo",{"_placeholder":true,"num":0}]', 'b4' + Buffer.from([5, 6]).toString('base64')))).status, 200);
    const packets = parseTextPayload(await (await poll()).text());
    assert.deepEqual(packets, ['451-["echo",{"_placeholder":true,"num":0}]', 'b4BQY=']);
    // a binary POST body is accepted from a b64 session too
    assert.equal((await post(binaryPayload('42["echo","bin"]'), 'application/octet-stream')).status, 200);
    assert.deepEqual(parseTextPayload(await (await poll()).text()), ['42["echo","bin"]']);

    // binary payloads: a session without b64 gets application/octet-stream when a packet is binary
    const h2 = await handshake(url);
    const sid2 = JSON.parse(parseTextPayload(h2.body)[0].slice(1)).sid;
    const base2 = `${url}/socket.io/?EIO=3&transport=polling&sid=${sid2}`;
    await fetch(base2);
    const sent = await fetch(base2, { method: 'POST', headers: { 'content-type': 'application/octet-stream' },
      body: binaryPayload('451-["echo",{"_placeholder":true,"num":0}]', Buffer.from([4, 0xff, 0x00])) });
    assert.equal(sent.status, 200);
    r = await fetch(base2);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    const got = parseBinaryPayload(Buffer.from(await r.arrayBuffer()));
    assert.equal(got[0], '451-["echo",{"_placeholder":true,"num":0}]');
    assert.deepEqual([...got[1]], [4, 0xff, 0x00]);
    // text only: text/plain even without b64
    await fetch(base2, { method: 'POST', body: textPayload('42["echo",1]') });
    r = await fetch(base2);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8');
    assert.deepEqual(parseTextPayload(await r.text()), ['42["echo",1]']);
  });

  it('malformed v3 POST bodies get 400 and end only their session', async () => {
    const bad = ['5:42', '2x:42', '42', '99999999999:4', '4:4\u00e9\u00e9\u00e9x', ''];
    const other = keep(v2(url, { transports: ['polling'] }));
    await connected(other);
    for (const body of bad) {
      const { body: hs } = await handshake(url);
      const sid = JSON.parse(parseTextPayload(hs)[0].slice(1)).sid;
      const res = await fetch(`${url}/socket.io/?EIO=3&transport=polling&sid=${sid}`, { method: 'POST', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual(await res.json(), { code: 3, message: 'Bad request' });
      const after = await fetch(`${url}/socket.io/?EIO=3&transport=polling&sid=${sid}`);
      assert.equal(after.status, 400, 'the session is gone');
    }
    const binBad = [Buffer.from([0, 2, 4, 52, 50]), Buffer.from([2, 1, 255, 52]), Buffer.from([1, 2, 255, 2, 0])];
    for (const body of binBad) {
      const { body: hs } = await handshake(url);
      const sid = JSON.parse(parseTextPayload(hs)[0].slice(1)).sid;
      const res = await fetch(`${url}/socket.io/?EIO=3&transport=polling&sid=${sid}`, {
        method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 400);
    }
    assert.deepEqual(await ack(other, 'ack-me', 'still here'), ['still here']);
    other.close();
  });

  it('a request of the other protocol for a session is 400 Bad request, as engine.io answers', async () => {
    for (const base of [url, node.url]) {
      const { body } = await handshake(base);
      const sid = JSON.parse(parseTextPayload(body)[0].slice(1)).sid;
      const res = await fetch(`${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.equal(res.status, 400, base);
      assert.deepEqual(await res.json(), { code: 3, message: 'Bad request' });
    }
  });

  it('JSONP polling (j=): answered in the callback and posted as a form, as engine.io 6 does', async () => {
    const forms = [];
    for (const base of [url, node.url]) {
      const hs = await fetch(`${base}/socket.io/?EIO=3&transport=polling&j=3&b64=1`);
      assert.equal(hs.headers.get('content-type'), 'text/plain; charset=UTF-8');
      const text = await hs.text();
      const m = text.match(/^___eio\[3\]\((".*")\);$/s);
      assert.ok(m, text);
      const payload = JSON.parse(m[1]);
      const sid = JSON.parse(parseTextPayload(payload)[0].slice(1)).sid;
      const q = `${base}/socket.io/?EIO=3&transport=polling&j=3&sid=${sid}`;
      await fetch(q); // the CONNECT of "/"
      // the client escapes \n as \\n and newlines as \n (engine.io-client's JSONP); the server undoes both
      const d = textPayload('42["echo","a\\nb\u2028"]').replace(/\\n/g, '\\\n').replace(/\n/g, '\\n');
      const res = await fetch(q, { method: 'POST', body: new URLSearchParams({ d }),
                                  headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.status, 200);
      const back = await (await fetch(q)).text();
      forms.push(back);
    }
    assert.equal(forms[0], forms[1]);
    assert.ok(forms[0].includes('\\u2028'), forms[0]);
  });
});

describe('allowEIO3 off (the default)', () => {
  let server, url;
  before(async () => {
    server = new SioServer();
    url = await server.start();
  });
  after(() => server.stop());

  it('a v3 handshake gets 400 {"code":5}, and the v2 client cannot connect', async () => {
    for (const transport of ['polling', 'websocket']) {
      const res = await fetch(`${url}/socket.io/?EIO=3&transport=${transport}`);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 5, message: 'Unsupported protocol version' });
    }
    const s = keep(v2(url, { transports: ['polling'] }));
    await waitEvent(s, 'connect_error');
    s.close();
  });
});

describe('allowEIO3 with the msgpack parser', () => {
  let server, url;
  before(async () => {
    server = new SioServer(['--allow-eio3', '--parser', 'msgpack']);
    url = await server.start();
  });
  after(() => server.stop());

  it('v3 handshakes are refused as when off: socket.io\'s msgpack parser speaks protocol 5 only', async () => {
    const res = await fetch(`${url}/socket.io/?EIO=3&transport=polling`);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 5, message: 'Unsupported protocol version' });
    assert.equal((await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).status, 200);
  });
});
