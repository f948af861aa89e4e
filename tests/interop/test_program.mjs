// Integration tests of the wsio program (src/server/): its configuration (file, environment, flags and
// their errors), the routes, the HTTP publish API, JWT authentication, metrics, reload on SIGHUP and the
// demo, all through the real binary and the official npm socket.io-client (tests/node_modules).
//
// Usage: node --test-reporter=spec tests/interop/test_program.mjs /path/to/wsio   (or WSIO_BIN=/path/to/wsio)
//
// Every suite starts its own wsio on a free port (--port 0; the port is read from its "listening on" log
// line) and stops it in after(), also when a test fails; an exit hook kills whatever is left. The program
// gets the test's environment without any WSIO_* variable, so only what a test sets reaches it (both done
// by program_harness.mjs).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Wsio, eventually, freePort, prerequisites, require, runWsio, tempDir, within } from './program_harness.mjs';

const { io, WebSocket } = prerequisites();
const TMP = tempDir('program');

// ---- helpers ------------------------------------------------------------------------------------------------

let nfiles = 0;
function writeConf(text, name = `wsio-${++nfiles}.conf`) {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, text);
  return file;
}

// ---- Socket.IO clients --------------------------------------------------------------------------------------

const clients = new Set();

// A connected socket.io-client socket (each its own Engine.IO session), recording every event it gets.
function connect(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  clients.add(socket);
  socket.got = [];
  socket.onAny((event, ...args) => socket.got.push([event, ...args]));
  return within(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', err => reject(err));
  }), 5000, `connect ${url}`);
}

// The connect_error of a connection the server must refuse.
async function refused(url, opts = {}) {
  try {
    await connect(url, opts);
  } catch (err) {
    return err;
  }
  assert.fail(`${url} connected but should have been refused`);
}

function closeClients() {
  for (const s of clients) {
    s.disconnect();
    s.io.engine?.close();
  }
  clients.clear();
}

// The arguments of the next `event` on a socket.
function next(socket, event, ms = 5000) {
  return within(new Promise(resolve => socket.once(event, (...args) => resolve(args))), ms, `event ${event}`);
}

// Emits with an acknowledgement callback; resolves with the ack's arguments.
function ack(socket, event, ...args) {
  return within(new Promise(resolve => socket.emit(event, ...args, (...res) => resolve(res))), 5000, `ack of ${event}`);
}

// What each socket received (but the demo's "online" presence and earlier barriers), in order, up to a barrier: an event emitted to every socket of the namespace
// through the HTTP API after everything under test. A socket's events arrive in the order they were queued,
// so an event missing before the barrier was never sent to it.
let barriers = 0;
async function received(srv, key, sockets, nsp = '/') {
  const mark = ++barriers;
  const waits = sockets.map(s => within(new Promise(resolve => {
    const check = () => {
      const i = s.got.findIndex(([e, n]) => e === 'barrier' && n === mark);
      if (i < 0) return false;
      resolve(s.got.splice(0, i + 1).slice(0, i).filter(([e]) => e !== 'online' && e !== 'barrier'));
      return true;
    };
    if (!check()) {
      const onAny = () => { if (check()) s.offAny(onAny); };
      s.onAny(onAny);
    }
  }), 5000, 'barrier'));
  const r = await api(srv, 'POST', '/api/emit', { key, body: { namespace: nsp, event: 'barrier', data: [mark] } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return Promise.all(waits);
}

// ---- HTTP ---------------------------------------------------------------------------------------------------

async function api(srv, method, p, { key, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== undefined) h.Authorization = `Bearer ${key}`;
  if (body !== undefined || raw !== undefined) h['Content-Type'] = 'application/json';
  const res = await within(fetch(srv.url + p, {
    method, headers: h, body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
  }), 5000, `${method} ${p}`);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

// Prometheus text: "name{labels}" -> number.
async function metrics(srv) {
  const r = await api(srv, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  const out = new Map();
  for (const line of r.text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

// ---- JWT ----------------------------------------------------------------------------------------------------

const b64u = x => Buffer.from(x).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function jwt(header, payload, sign) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${sign(input)}`;
}
// The same token with one signature character changed (in the middle: the last one may hold padding bits).
function tamper(t) {
  const i = t.lastIndexOf('.') + 10;
  return t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
}
const hs256 = secret => input => crypto.createHmac('sha256', secret).update(input).digest('base64url');
const rs256 = key => input => crypto.sign('sha256', Buffer.from(input), key).toString('base64url');

// ==== configuration ==========================================================================================

describe('configuration', () => {
  it('refuses a bad flag value with exit 2, naming the flag', () => {
    let r = runWsio(['--port', 'abc']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--port: "abc" is not a number/);
    r = runWsio(['--port=70000']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--port: "70000" is out of range \(0 to 65535\)/);
    r = runWsio(['--socketio-ping-interval', '25']);
    assert.equal(r.status, 2, 'a bare number is not a duration');
    assert.match(r.stderr, /--socketio-ping-interval: "25"/);
    r = runWsio(['--prot', '1']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown flag "--prot" \(did you mean --port\?\)/);
  });

  it('refuses a bad file line with exit 2, naming file:line and the setting', () => {
    const file = writeConf('[server]\nport = 0\n\n[socketio]\nping_interval = 25x\n');
    const r = runWsio(['--config', file]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${file}:5: [socketio] ping_interval: "25x" is not a duration`), r.stderr);
    assert.equal(r.stdout, '');
  });

  it('suggests the right name for an unknown key, section or variable', () => {
    let file = writeConf('[server]\nhost = 127.0.0.1\nprot = 3000\n');
    let r = runWsio(['--config', file]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${file}:3:`), r.stderr);
    assert.match(r.stderr, /unknown key "prot" \(did you mean "?port"?\?\)/);
    file = writeConf('[sever]\nport = 1\n');
    r = runWsio(['--config', file]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${file}:1: unknown section [sever] (did you mean [server]?)`), r.stderr);
    r = runWsio([], { WSIO_PROT: '1' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown environment variable WSIO_PROT \(did you mean WSIO_PORT\?\)/);
  });

  it('refuses what can only be caught across settings', () => {
    let r = runWsio(['--auth-jwt-required']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--auth-jwt-required: .*jwt_secret or jwt_public_key/);
    r = runWsio(['--tls-cert', '/nonexistent.pem']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--tls-cert/);
    const file = writeConf('[route "x"]\nnamespace = /undeclared\n');
    r = runWsio(['--config', file]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${file}:2`), r.stderr);
  });

  it('--check-config refuses what a start would refuse: an HS256 secret under 32 bytes', () => {
    const r = runWsio(['--auth-jwt-secret', 'too-short', '--check-config']);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /at least 32/);
  });

  it('--check-config prints every value with where it came from, and exits 0', () => {
    const file = writeConf('# test\n[server]\nhost = 127.0.0.1\nport = 1234\n\n[api]\nkey = file-secret-key\n' +
                           '[route "ping"]\nemit = pong\nto = self\n');
    const r = runWsio(['--config', file, '--check-config', '--cors-origins', 'https://app.example'],
                      { WSIO_SOCKETIO_PING_INTERVAL: '7s' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`# configuration OK: ${file}`), r.stdout);
    const line = re => assert.match(r.stdout, re);
    line(new RegExp(`^host = 127\\.0\\.0\\.1 +# ${file.replace(/[.]/g, '\\.')}:3$`, 'm'));
    line(new RegExp(`^port = 1234 +# ${file.replace(/[.]/g, '\\.')}:4$`, 'm'));
    line(/^ping_interval = 7s +# env WSIO_SOCKETIO_PING_INTERVAL$/m);
    line(/^origins = https:\/\/app\.example +# flag --cors-origins$/m);
    line(/^ping_timeout = 20s +# default$/m);
    line(/^key = <hidden> /m);
    assert.ok(!r.stdout.includes('file-secret-key'), 'the API key is not printed');
    line(/^\[route "ping"\] /m);
    line(/^emit = pong/m);
  });

  it('takes a setting from the environment (WSIO_PORT)', async () => {
    const port = await freePort();
    const srv = await new Wsio({ args: ['--host', '127.0.0.1'], env: { WSIO_PORT: String(port) }, listenFlags: false })
      .start();
    try {
      assert.equal(srv.port, port);
      const r = await api(srv, 'GET', '/metrics');
      assert.equal(r.status, 200);
    } finally {
      await srv.stopClean();
    }
    // A flag beats the environment, which beats the file (named by WSIO_CONFIG here).
    const file = writeConf('[server]\nport = 5\nmax_connections = 77\n');
    const r = runWsio(['--check-config', '--port', '9'], { WSIO_PORT: String(port), WSIO_CONFIG: file });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^port = 9 +# flag --port$/m);
    assert.ok(r.stdout.includes(`max_connections = 77`) && r.stdout.includes(`${file}:3`), r.stdout);
    const e = runWsio(['--check-config'], { WSIO_PORT: String(port), WSIO_CONFIG: file });
    assert.match(e.stdout, new RegExp(`^port = ${port} +# env WSIO_PORT$`, 'm'));
  });
});

// ==== the demo: default routes, page, presence, API ==========================================================

describe('the demo (no configuration file)', () => {
  const KEY = 'demo-api-key';
  const srv = new Wsio({ args: ['--api-key', KEY] });
  before(() => srv.start());
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('serves the page at / and socket.io.js', async () => {
    let r = await api(srv, 'GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.ok(r.text.includes('<script src="/socket.io/socket.io.js"></script>'));
    r = await api(srv, 'GET', '/socket.io/socket.io.js');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /javascript/);
    assert.ok(r.text.length > 10000 && r.text.includes('Socket.IO'), 'the client bundle');
    r = await api(srv, 'GET', '/echo.html');
    assert.equal(r.status, 200);
  });

  it('serverMsg reaches everyone else as clientMsg, not the sender', async () => {
    const [a, b, c] = await Promise.all([connect(srv.url), connect(srv.url), connect(srv.url)]);
    const atB = next(b, 'clientMsg');
    const atC = next(c, 'clientMsg');
    a.emit('serverMsg', { nick: 'ann', text: 'hi' });
    assert.deepEqual(await atB, [{ nick: 'ann', text: 'hi' }]);
    assert.deepEqual(await atC, [{ nick: 'ann', text: 'hi' }]);
    const [ga] = await received(srv, KEY, [a]);
    assert.ok(!ga.some(([e]) => e === 'clientMsg'), `the sender got ${JSON.stringify(ga)}`);
  });

  it('join and leave are answered "ok"; toRoom reaches the room but the sender', async () => {
    const [a, b, c] = await Promise.all([connect(srv.url), connect(srv.url), connect(srv.url)]);
    assert.deepEqual(await ack(a, 'join', 'lobby'), ['ok']);
    assert.deepEqual(await ack(b, 'join', 'lobby'), ['ok']);
    const atB = next(b, 'roomMsg');
    a.emit('toRoom', 'lobby', { text: 'in lobby' });
    assert.deepEqual(await atB, [{ text: 'in lobby' }]);
    let [ga, gc] = await received(srv, KEY, [a, c]);
    assert.ok(!ga.some(([e]) => e === 'roomMsg'), 'not to the sender');
    assert.ok(!gc.some(([e]) => e === 'roomMsg'), 'not outside the room');
    assert.deepEqual(await ack(b, 'leave', 'lobby'), ['ok']);
    b.got.length = 0;
    c.emit('toRoom', 'lobby', 'after leave');
    await next(a, 'roomMsg');
    const [gb] = await received(srv, KEY, [b]);
    assert.ok(!gb.some(([e]) => e === 'roomMsg'), 'a socket that left gets nothing');
    const [res] = await ack(a, 'join', '');
    assert.match(res.error, /room name/);
    const [res2] = await ack(a, 'toRoom', 42, 'data');
    assert.match(res2.error, /room name/);
  });

  it('announces who is online after "nick"', async () => {
    const a = await connect(srv.url);
    const b = await connect(srv.url);
    const seen = new Promise(resolve => b.on('online', o => { if (o.names.includes('ann')) resolve(o); }));
    assert.deepEqual(await ack(a, 'nick', 'ann'), ['ok']);
    const o = await within(seen, 5000, 'online with ann');
    assert.ok(o.count >= 2, JSON.stringify(o));
    const [bad] = await ack(a, 'nick', 'x'.repeat(40));
    assert.match(bad.error, /nickname/);
  });
});

// ==== routes from a file =====================================================================================

describe('routes from a file', () => {
  const KEY = 'routes-api-key';
  const conf = `
[api]
key = ${KEY}

[rooms]
allowed = lobby, game-*

[namespace "/chat"]
[namespace "/dyn-*"]

[route "shout"]
emit = heard
to = all

[route "whoami"]
emit = you
to = self
data = arg:1
ack = {"status": "ok", "n": [1, 2]}

[route "announce"]
to = room:lobby
data = arg:0

[route "tell-*"]
emit = told
to = sender-rooms

[route "chatMsg"]
namespace = /chat
to = others

[route "silent"]
to = none
ack = 42
`;
  let srv;
  before(async () => { srv = await new Wsio({ args: ['--config', writeConf(conf)] }).start(); });
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('to = all reaches the sender too', async () => {
    const [a, b] = await Promise.all([connect(srv.url), connect(srv.url)]);
    const atA = next(a, 'heard'), atB = next(b, 'heard');
    a.emit('shout', 1, 'two', { three: 3 });
    assert.deepEqual(await atA, [1, 'two', { three: 3 }]);
    assert.deepEqual(await atB, [1, 'two', { three: 3 }]);
  });

  it('to = self with data = arg:N, and the ack a JSON value', async () => {
    const [a, b] = await Promise.all([connect(srv.url), connect(srv.url)]);
    const atA = next(a, 'you');
    const res = await ack(a, 'whoami', 'first', { second: true }, 'third');
    assert.deepEqual(res, [{ status: 'ok', n: [1, 2] }]);
    assert.deepEqual(await atA, [{ second: true }]);
    assert.deepEqual(await ack(a, 'silent'), [42], 'to = none only answers the ack');
    const [gb] = await received(srv, KEY, [b]);
    assert.deepEqual(gb, [], 'nobody else got anything');
  });

  it('to = room:NAME and to = sender-rooms', async () => {
    const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => connect(srv.url)));
    for (const s of [a, b]) assert.deepEqual(await ack(s, 'join', 'lobby'), ['ok']);
    assert.deepEqual(await ack(c, 'join', 'game-1'), ['ok']);
    assert.deepEqual(await ack(a, 'join', 'game-1'), ['ok']);
    // room:lobby from d (outside the room): both members, nobody else.
    const atA = next(a, 'announce'), atB = next(b, 'announce');
    d.emit('announce', 'news', 'dropped');
    assert.deepEqual(await atA, ['news']);
    assert.deepEqual(await atB, ['news']);
    let [gc, gd] = await received(srv, KEY, [c, d]);
    assert.deepEqual([gc, gd], [[], []]);
    // sender-rooms from a (lobby and game-1): b and c, once each; not a, not d.
    for (const s of [a, b, c, d]) s.got.length = 0;
    const atB2 = next(b, 'told'), atC2 = next(c, 'told');
    a.emit('tell-all', 'x');
    await Promise.all([atB2, atC2]);
    const [ga, gb, gc2, gd2] = await received(srv, KEY, [a, b, c, d]);
    assert.deepEqual(ga, []);
    assert.deepEqual(gb, [['told', 'x']]);
    assert.deepEqual(gc2, [['told', 'x']]);
    assert.deepEqual(gd2, []);
  });

  it('[rooms] allowed refuses rooms outside its patterns', async () => {
    const a = await connect(srv.url);
    assert.deepEqual(await ack(a, 'join', 'game-42'), ['ok']);
    const [res] = await ack(a, 'join', 'secret');
    assert.deepEqual(res, { error: 'room not allowed' });
    const r = await api(srv, 'GET', `/api/sockets?room=secret`, { key: KEY });
    assert.deepEqual(r.json.sockets, []);
  });

  it('routes apply per namespace; declared and pattern namespaces exist', async () => {
    const [a, b] = await Promise.all([connect(`${srv.url}/chat`), connect(`${srv.url}/chat`)]);
    const main = await connect(srv.url);
    const atB = next(b, 'chatMsg');
    a.emit('chatMsg', 'hello chat');
    assert.deepEqual(await atB, ['hello chat']);
    main.emit('chatMsg', 'not routed on /');
    const [ga] = await received(srv, KEY, [a], '/chat');
    assert.deepEqual(ga, [], 'others only; and nothing from /');
    const dyn = await connect(`${srv.url}/dyn-7`);
    assert.ok(dyn.connected);
    const err = await refused(`${srv.url}/undeclared`);
    assert.match(err.message, /Invalid namespace/);
  });

  it('POST /api/emit reaches a namespace, rooms, except', async () => {
    const [a, b, c] = await Promise.all([connect(srv.url), connect(srv.url), connect(srv.url)]);
    const chat = await connect(`${srv.url}/chat`);
    assert.deepEqual(await ack(a, 'join', 'lobby'), ['ok']);
    assert.deepEqual(await ack(b, 'join', 'lobby'), ['ok']);
    assert.deepEqual(await ack(b, 'join', 'game-2'), ['ok']);
    let r = await api(srv, 'POST', '/api/emit',
                      { key: KEY, body: { rooms: ['lobby'], except: ['game-2'], event: 'news', data: ['x', 1] } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, recipients: 1 });
    r = await api(srv, 'POST', '/api/emit', { key: KEY, body: { namespace: '/chat', event: 'news', data: [{ c: 1 }] } });
    assert.deepEqual(r.json, { ok: true, recipients: 1 });
    const [ga, gb, gc] = await received(srv, KEY, [a, b, c]);
    assert.deepEqual([ga, gb, gc], [[['news', 'x', 1]], [], []]);
    const [gchat] = await received(srv, KEY, [chat], '/chat');
    assert.deepEqual(gchat, [['news', { c: 1 }]]);
    const bare = next(c, 'bare'); // listening before the call: the event may come before the HTTP answer
    r = await api(srv, 'POST', '/api/emit', { key: KEY, body: { event: 'bare' } });
    assert.equal(r.json.recipients, 3, 'no data: an event without arguments to all of /');
    assert.deepEqual(await bare, []);
  });
});

// ==== the HTTP API ===========================================================================================

describe('the HTTP API', () => {
  const KEY = 'api-key-0123456789';
  const srv = new Wsio({ args: ['--api-key', KEY] });
  before(() => srv.start());
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('answers "Expect: 100-continue" at once, so a client that sends it (PHP\'s curl) does not wait', async () => {
    // A raw client: the head alone, then the body only after the 100, as curl does; 417 for another
    // expectation.
    const exchange = (expect, body) => within(new Promise((resolve, reject) => {
      const sock = net.connect(srv.port, '127.0.0.1');
      let got = '';
      let sent = false;
      sock.on('data', d => {
        got += d.toString('latin1');
        if (!sent && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          sent = true;
          sock.write(body);
        }
        const end = got.indexOf('\r\n\r\n', got.startsWith('HTTP/1.1 100') ? 25 : 0);
        const m = /\r\ncontent-length: (\d+)/i.exec(got);
        if (end >= 0 && m && got.length >= end + 4 + Number(m[1])) { sock.destroy(); resolve(got); }
      });
      sock.on('error', reject);
      sock.write(`POST /api/emit HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\n` +
                 `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
                 `Expect: ${expect}\r\n\r\n`);
    }), 500, `POST with Expect: ${expect}`);
    const body = JSON.stringify({ event: 'news', data: ['y'.repeat(4000)] });
    const ok = await exchange('100-continue', body);
    assert.match(ok, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(ok, /\{"ok":true,"recipients":\d+\}$/);
    assert.match(await exchange('the-moon', body), /^HTTP\/1\.1 417 Expectation Failed\r\n/);
  });

  it('refuses a wrong or missing key with 401, the wrong method with 405', async () => {
    for (const p of ['/api/emit', '/api/disconnect', '/api/sockets', '/api/rooms']) {
      const method = p.endsWith('sockets') || p.endsWith('rooms') ? 'GET' : 'POST';
      let r = await api(srv, method, p, { key: 'wrong', body: method === 'POST' ? { event: 'x' } : undefined });
      assert.equal(r.status, 401, `${p} wrong key`);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      r = await api(srv, method, p);
      assert.equal(r.status, 401, `${p} no key`);
      r = await api(srv, method, p, { headers: { Authorization: KEY } });
      assert.equal(r.status, 401, `${p} key without "Bearer"`);
      r = await api(srv, method === 'GET' ? 'POST' : 'GET', p, { key: KEY });
      assert.equal(r.status, 405, `${p} wrong method`);
      assert.equal(r.headers.get('allow'), method);
    }
    const r = await api(srv, 'GET', '/api/nothing', { key: KEY });
    assert.equal(r.status, 404);
  });

  it('POST /api/emit refuses bad requests', async () => {
    const cases = [
      [{ raw: '{"event": "x",' }, 400, /JSON object/],
      [{ raw: '[1,2]' }, 400, /JSON object/],
      [{ body: { data: [1] } }, 400, /"event"/],
      [{ body: { event: '' } }, 400, /"event"/],
      [{ body: { event: 'x', data: 'not an array' } }, 400, /"data"/],
      [{ body: { event: 'connect' } }, 400, /reserved/],
      [{ body: { event: 'disconnect', data: [] } }, 400, /reserved/],
      [{ body: { event: 'x', rooms: 'lobby' } }, 400, /"rooms"/],
      [{ body: { event: 'x', namespace: '/nope' } }, 404, /unknown namespace/],
    ];
    for (const [req, status, re] of cases) {
      const r = await api(srv, 'POST', '/api/emit', { key: KEY, ...req });
      assert.equal(r.status, status, `${JSON.stringify(req)}: ${r.text}`);
      assert.match(r.json.error, re);
    }
  });

  it('GET /api/sockets and /api/rooms list what is connected', async () => {
    const a = await connect(srv.url, { transports: ['websocket'] });
    const b = await connect(srv.url, { transports: ['polling'] });
    assert.deepEqual(await ack(a, 'join', 'r1'), ['ok']);
    assert.deepEqual(await ack(b, 'join', 'r1'), ['ok']);
    assert.deepEqual(await ack(b, 'join', 'r2'), ['ok']);
    let r = await api(srv, 'GET', '/api/sockets', { key: KEY });
    assert.equal(r.status, 200);
    assert.equal(r.json.namespace, '/');
    const byId = new Map(r.json.sockets.map(s => [s.id, s]));
    assert.deepEqual(byId.get(a.id).rooms.sort(), [a.id, 'r1'].sort());
    assert.deepEqual(byId.get(b.id).rooms.sort(), [b.id, 'r1', 'r2'].sort());
    assert.equal(byId.get(a.id).transport, 'websocket');
    assert.equal(byId.get(b.id).transport, 'polling');
    assert.match(byId.get(a.id).address, /^127\.0\.0\.1:\d+$/);
    assert.ok(Math.abs(byId.get(a.id).connectedAt - Date.now()) < 60000, 'connectedAt in ms');
    r = await api(srv, 'GET', '/api/sockets?room=r2', { key: KEY });
    assert.deepEqual(r.json.sockets.map(s => s.id), [b.id]);
    r = await api(srv, 'GET', '/api/sockets?namespace=%2Fnope', { key: KEY });
    assert.equal(r.status, 404);
    r = await api(srv, 'GET', '/api/rooms', { key: KEY });
    assert.equal(r.status, 200);
    const rooms = Object.fromEntries(r.json.rooms.map(x => [x.name, x.size]));
    assert.equal(rooms.r1, 2);
    assert.equal(rooms.r2, 1);
  });

  it('POST /api/disconnect disconnects by room or all, and refuses a request without a target', async () => {
    const [a, b, c] = await Promise.all([connect(srv.url), connect(srv.url), connect(srv.url)]);
    assert.deepEqual(await ack(c, 'join', 'keep'), ['ok']);
    let r = await api(srv, 'POST', '/api/disconnect', { key: KEY, body: {} });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /rooms/);
    r = await api(srv, 'POST', '/api/disconnect', { key: KEY, body: { all: true, close: 'yes' } });
    assert.equal(r.status, 400);
    r = await api(srv, 'POST', '/api/disconnect', { key: KEY, body: { namespace: '/nope', all: true } });
    assert.equal(r.status, 404);
    const gone = next(a, 'disconnect');
    r = await api(srv, 'POST', '/api/disconnect', { key: KEY, body: { rooms: [a.id] } });
    assert.deepEqual(r.json, { ok: true, disconnected: 1 });
    assert.equal((await gone)[0], 'io server disconnect');
    const bGone = next(b, 'disconnect');
    r = await api(srv, 'POST', '/api/disconnect', { key: KEY, body: { all: true, except: ['keep'], close: true } });
    assert.deepEqual(r.json, { ok: true, disconnected: 1 });
    await bGone;
    assert.ok(c.connected, 'the excepted room stays');
    r = await api(srv, 'GET', '/api/sockets', { key: KEY });
    assert.deepEqual(r.json.sockets.map(s => s.id), [c.id]);
  });

  it('does not exist without a key', async () => {
    const off = await new Wsio().start();
    try {
      for (const [m, p] of [['POST', '/api/emit'], ['GET', '/api/sockets'], ['GET', '/api/rooms']]) {
        const r = await api(off, m, p, { key: 'anything', body: m === 'POST' ? { event: 'x' } : undefined });
        assert.equal(r.status, 404, `${m} ${p}`);
      }
    } finally {
      await off.stopClean();
    }
  });
});

// ==== JWT ====================================================================================================

describe('JWT with HS256 ([auth] jwt_secret)', () => {
  const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
  const KEY = 'jwt-api-key';
  const sign = hs256(SECRET);
  let srv;
  before(async () => {
    const conf = `[auth]\njwt_secret = ${SECRET}\n[rooms]\nallowed = lobby, claims:rooms\n[api]\nkey = ${KEY}\n` +
                 '[route "ping"]\nemit = pong\nto = self\n';
    srv = await new Wsio({ args: ['--config', writeConf(conf)] }).start();
  });
  after(() => srv?.stopClean());
  afterEach(closeClients);

  const token = (claims = {}, header = { alg: 'HS256', typ: 'JWT' }, signer = sign) =>
    jwt(header, { sub: 'u1', exp: now() + 600, ...claims }, signer);

  it('accepts a valid token in auth.token, and a client without one (jwt_required off)', async () => {
    const s = await connect(srv.url, { auth: { token: token() } });
    assert.ok(s.connected);
    const pong = next(s, 'pong');
    s.emit('ping', 1);
    assert.deepEqual(await pong, [1]);
    const anon = await connect(srv.url);
    assert.ok(anon.connected);
  });

  it('refuses expired, badly signed, wrong-algorithm and unsigned tokens', async () => {
    const cases = [
      [token({ exp: now() - 3600 }), /expired/],
      [token({}, undefined, hs256('another-secret-of-at-least-32-bytes!')), /bad signature/],
      [tamper(token()), /bad signature/],
      [token({}, { alg: 'none', typ: 'JWT' }, () => ''), /algorithm/],
      [token({}, { alg: 'HS512', typ: 'JWT' }), /algorithm/],
      [token({ exp: undefined }), /exp/],
      [token({ nbf: now() + 3600 }), /not yet valid/],
      [token({ aud: 'some-app' }), /audience/],
      ['not.a.jwt', /malformed/],
    ];
    for (const [t, reason] of cases) {
      const err = await refused(srv.url, { auth: { token: t } });
      assert.equal(err.message, 'unauthorized');
      assert.match(err.data?.reason ?? '', reason, `token ${t}`);
    }
    const m = await metrics(srv);
    assert.ok(m.get('wsio_auth_rejected_total') >= cases.length);
  });

  it('takes the rooms a client may join from its claims', async () => {
    const vip = await connect(srv.url, { auth: { token: token({ rooms: ['vip-*', 'team'] }) } });
    assert.deepEqual(await ack(vip, 'join', 'vip-1'), ['ok']);
    assert.deepEqual(await ack(vip, 'join', 'team'), ['ok']);
    assert.deepEqual(await ack(vip, 'join', 'lobby'), ['ok'], 'listed patterns still apply');
    assert.deepEqual(await ack(vip, 'join', 'other'), [{ error: 'room not allowed' }]);
    const anon = await connect(srv.url);
    assert.deepEqual(await ack(anon, 'join', 'vip-1'), [{ error: 'room not allowed' }]);
    assert.deepEqual(await ack(anon, 'join', 'lobby'), ['ok']);
  });

  it('jwt_required refuses a client without a token', async () => {
    const strict = await new Wsio({ args: ['--auth-jwt-secret', SECRET, '--auth-jwt-required'] }).start();
    try {
      const err = await refused(strict.url);
      assert.equal(err.message, 'unauthorized');
      assert.match(err.data.reason, /token is required/);
      const ok = await connect(strict.url, { auth: { token: token() } });
      assert.ok(ok.connected);
      // Also through the Authorization header of the handshake.
      const viaHeader = await connect(strict.url, { transports: ['polling'], extraHeaders: { Authorization: `Bearer ${token()}` } });
      assert.ok(viaHeader.connected);
    } finally {
      closeClients();
      await strict.stopClean();
    }
  });
});

describe('JWT with RS256 ([auth] jwt_public_key)', () => {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' });
  let srv;
  before(async () => {
    const file = path.join(TMP, 'jwt.pub.pem');
    fs.writeFileSync(file, pubPem);
    srv = await new Wsio({ args: ['--auth-jwt-public-key', file, '--auth-jwt-required'] }).start();
  });
  after(() => srv?.stopClean());
  afterEach(closeClients);

  const claims = (extra = {}) => ({ sub: 'u2', exp: now() + 600, ...extra });

  it('accepts a token signed with the private key', async () => {
    const s = await connect(srv.url, { auth: { token: jwt({ alg: 'RS256', typ: 'JWT' }, claims(), rs256(privateKey)) } });
    assert.ok(s.connected);
  });

  it('refuses HS256 (even keyed with the public key), alg none, other keys and expired tokens', async () => {
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const cases = [
      [jwt({ alg: 'HS256', typ: 'JWT' }, claims(), hs256(pubPem)), /algorithm/],
      [jwt({ alg: 'HS256', typ: 'JWT' }, claims(), hs256('a-test-secret-of-at-least-32-bytes!!')), /algorithm/],
      [jwt({ alg: 'none' }, claims(), () => ''), /algorithm/],
      [jwt({ alg: 'RS256' }, claims(), rs256(other)), /bad signature/],
      [jwt({ alg: 'RS256' }, claims({ exp: now() - 3600 }), rs256(privateKey)), /expired/],
    ];
    for (const [t, reason] of cases) {
      const err = await refused(srv.url, { auth: { token: t } });
      assert.equal(err.message, 'unauthorized');
      assert.match(err.data?.reason ?? '', reason, `token ${t}`);
    }
  });
});

describe('JWT with ES256 ([auth] jwt_public_key, an EC P-256 key)', () => {
  afterEach(closeClients);

  it('accepts ES256 tokens and refuses RS256 ones', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(TMP, 'jwt-ec.pub.pem');
    fs.writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
    const srv = await new Wsio({ args: ['--auth-jwt-public-key', file, '--auth-jwt-required'] }).start();
    try {
      const es256 = input => crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
        .toString('base64url');
      const s = await connect(srv.url, { auth: { token: jwt({ alg: 'ES256' }, { exp: now() + 60 }, es256) } });
      assert.ok(s.connected);
      const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const err = await refused(srv.url, { auth: { token: jwt({ alg: 'RS256' }, { exp: now() + 60 }, rs256(rsa)) } });
      assert.equal(err.message, 'unauthorized');
      assert.match(err.data.reason, /algorithm/);
    } finally {
      closeClients();
      await srv.stopClean();
    }
  });
});

// ==== metrics ================================================================================================

describe('/metrics', () => {
  const KEY = 'metrics-api-key';
  const srv = new Wsio({ args: ['--api-key', KEY] });
  before(() => srv.start());
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('counts connections by transport, events, routes and API calls', async () => {
    const before0 = await metrics(srv);
    const ws = await connect(srv.url, { transports: ['websocket'] });
    const poll = await connect(srv.url, { transports: ['polling'] });
    const up = await connect(srv.url);
    if (up.io.engine.transport.name !== 'websocket') await next(up.io.engine, 'upgrade');
    await eventually(async () => {
      const m = await metrics(srv);
      assert.equal(m.get('wsio_connections{transport="websocket"}'), 2, 'one upgraded from polling');
      assert.equal(m.get('wsio_connections{transport="polling"}'), 1);
      assert.equal(m.get('wsio_sockets'), 3);
    });
    const got = next(poll, 'clientMsg');
    ws.emit('serverMsg', 'counted');
    await got;
    assert.deepEqual(await ack(ws, 'join', 'm'), ['ok']);
    await api(srv, 'POST', '/api/emit', { key: KEY, body: { event: 'e', data: [] } });
    await api(srv, 'POST', '/api/emit', { key: 'bad', body: { event: 'e' } });
    await api(srv, 'GET', '/api/rooms', { key: KEY });
    const m = await metrics(srv);
    const moved = name => m.get(name) - (before0.get(name) ?? 0);
    assert.ok(moved('wsio_events_received_total') >= 2, 'serverMsg and join');
    assert.ok(moved('wsio_events_sent_total') >= 3, 'clientMsg and two API emits');
    assert.equal(moved('wsio_route_events_total'), 1, 'serverMsg went through a route');
    assert.equal(moved('wsio_api_requests_total'), 3);
    assert.equal(moved('wsio_api_rejected_total'), 1);
    assert.equal(m.get('wsio_rooms') >= 1, true);
    assert.ok(moved('wsio_bytes_received_total') > 0 && moved('wsio_bytes_sent_total') > 0);
    for (const s of [ws, poll, up]) s.disconnect();
    await eventually(async () => {
      const after0 = await metrics(srv);
      assert.equal(after0.get('wsio_sockets'), 0);
      assert.equal(after0.get('wsio_connections{transport="websocket"}'), 0);
      assert.equal(after0.get('wsio_connections{transport="polling"}'), 0);
    });
  });

  it('counts Engine.IO error answers by code (connection_error)', async () => {
    const series = code => `wsio_engineio_errors_total{code="${code}",message="${
      ['Transport unknown', 'Session ID unknown', 'Bad handshake method'][code]}"}`;
    const before0 = await metrics(srv);
    for (const q of ['transport=polling&sid=AAAAAAAAAAAAAAAAAAAA', 'transport=polling&sid=BBBBBBBBBBBBBBBBBBBB',
                     'transport=nope'])
      assert.equal((await fetch(`${srv.url}/socket.io/?EIO=4&${q}`)).status, 400);
    assert.equal((await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, { method: 'PUT' })).status, 400);
    await eventually(async () => {
      const m = await metrics(srv);
      const moved = code => m.get(series(code)) - (before0.get(series(code)) ?? 0);
      assert.equal(moved(1), 2, 'two unknown sessions');
      assert.equal(moved(0), 1, 'an unknown transport');
      assert.equal(moved(2), 1, 'a handshake by PUT');
    });
  });

  it('answers only GET and HEAD', async () => {
    let r = await api(srv, 'HEAD', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    r = await api(srv, 'POST', '/metrics', { raw: '' });
    assert.equal(r.status, 405);
  });
});

// ==== reload =================================================================================================

// A renewed certificate under the same file names: SIGHUP reads the files again, every worker switches, open
// connections keep going, and files that do not load leave the certificate in use.
describe('TLS certificate reload on SIGHUP', () => {
  let srv, dir, certFile, keyFile;
  const makeCert = (cn, cert, key) => spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-keyout', key, '-out', cert],
  { stdio: 'ignore', timeout: 60000 }).status === 0;
  // The common name of the certificate a new TLS connection is given.
  const peerName = port => within(new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().subject.CN);
      s.end();
    });
    s.on('error', reject);
  }), 5000, 'a TLS handshake');
  // Enough connections that both workers answer some (the kernel spreads them by source port).
  const names = async port => new Set(await Promise.all(Array.from({ length: 12 }, () => peerName(port))));

  before(async () => {
    dir = fs.mkdtempSync(path.join(TMP, 'tls-'));
    certFile = path.join(dir, 'cert.pem');
    keyFile = path.join(dir, 'key.pem');
    assert.ok(makeCert('wsio-first', certFile, keyFile), 'openssl made a certificate');
    const file = writeConf(`[server]\nhost = 127.0.0.1\nport = 0\nworkers = 2\n[tls]\ncert = ${certFile}\nkey = ${keyFile}\n`,
                           'tls-reload.conf');
    srv = await new Wsio({ args: ['--config', file], listenFlags: false }).start();
  });
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('serves the renewed certificate to new connections and keeps the open ones', async () => {
    const url = `https://127.0.0.1:${srv.port}`;
    const a = await connect(url, { transports: ['websocket'], rejectUnauthorized: false });
    const b = await connect(url, { transports: ['polling'], rejectUnauthorized: false });
    assert.deepEqual(await names(srv.port), new Set(['wsio-first']));

    const renewed = path.join(dir, 'renewed');
    fs.mkdirSync(renewed);
    assert.ok(makeCert('wsio-renewed', path.join(renewed, 'cert.pem'), path.join(renewed, 'key.pem')));
    fs.copyFileSync(path.join(renewed, 'cert.pem'), certFile);
    fs.copyFileSync(path.join(renewed, 'key.pem'), keyFile);
    let mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    await srv.waitLog(/reload: \[tls\] certificate and key loaded again from .*cert\.pem/, 5000, mark);
    await srv.waitLog(/reload: no changes/, 5000, mark);
    // Each worker switches on its own loop, a moment after the log line.
    await eventually(async () => assert.deepEqual(await names(srv.port), new Set(['wsio-renewed'])));
    for (const s of [a, b]) assert.ok(s.connected, 'a connection open before the reload is still there');
    const c = await connect(url, { transports: ['websocket'], rejectUnauthorized: false });
    assert.ok(c.connected);

    // A key that does not match its certificate: refused, the renewed pair stays in use everywhere.
    fs.copyFileSync(path.join(renewed, 'cert.pem'), certFile);
    assert.ok(makeCert('wsio-other', path.join(dir, 'other-cert.pem'), keyFile));
    mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    await srv.waitLog(/reload: \[tls\] .*could not be loaded .*keep the certificate in use/, 5000, mark);
    await srv.waitLog(/key does not match the certificate|KEY_VALUES_MISMATCH|values mismatch/i, 5000, mark);
    assert.deepEqual(await names(srv.port), new Set(['wsio-renewed']));
    assert.ok(a.connected && b.connected && c.connected);
  });
});

describe('reload on SIGHUP', () => {
  let srv, file;
  // Restart-only settings ride along: a namespace pattern and a raw WebSocket endpoint.
  const SECRET1 = 'first-secret-of-at-least-32-bytes-long', SECRET2 = 'second-secret-of-at-least-32-bytes-long';
  const conf = (key, pong, port = 0, secret = SECRET1, metrics = '/metrics', origin = 'https://a.example') =>
    `[server]\nhost = 127.0.0.1\nport = ${port}\n[websocket]\nbroadcast_path = /bcast\n[api]\nkey = ${key}\n` +
    `[auth]\njwt_secret = ${secret}\n[metrics]\npath = ${metrics}\n[cors]\norigins = ${origin}\n` +
    `[namespace "/dyn-*"]\n[route "ping"]\nemit = ${pong}\nto = self\n`;
  const token = secret => jwt({ alg: 'HS256' }, { exp: now() + 600 }, hs256(secret));
  before(async () => {
    file = writeConf(conf('old-key', 'pong'), 'reload.conf');
    srv = await new Wsio({ args: ['--config', file], listenFlags: false }).start();
  });
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('applies a new route and API key without dropping clients; reports what needs a restart', async () => {
    const a = await connect(srv.url, { transports: ['websocket'], auth: { token: token(SECRET1) } });
    const b = await connect(srv.url, { transports: ['polling'] });
    const ids = [a.id, b.id];
    let dropped = 0;
    for (const s of [a, b]) s.on('disconnect', () => dropped++);
    a.emit('ping', 1);
    assert.deepEqual(await next(a, 'pong'), [1]);
    assert.equal((await api(srv, 'GET', '/api/rooms', { key: 'old-key' })).status, 200);

    assert.equal((await api(srv, 'GET', '/metrics')).status, 200);
    // The raw WebSocket endpoint checks a browser's Origin against [cors] origins.
    const upgrade = origin => within(new Promise((resolve, reject) => {
      const w = new WebSocket(`ws://127.0.0.1:${srv.port}/bcast`, { origin });
      w.once('open', () => { w.close(); resolve(101); });
      w.once('unexpected-response', (req, res) => { req.destroy(); resolve(res.statusCode); });
      w.once('error', reject);
    }), 5000, `upgrade from ${origin}`);
    assert.equal(await upgrade('https://a.example'), 101);
    assert.equal(await upgrade('https://b.example'), 403);

    fs.writeFileSync(file, conf('new-key', 'pong2', 1, SECRET2, '/internal/metrics', 'https://b.example'));
    const mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    await srv.waitLog(/reload: applied live: \[route "ping"\]/, 5000, mark);
    await srv.waitLog(/reload: applied live: \[auth\] jwt_secret/, 5000, mark);
    await srv.waitLog(/reload: applied live: \[metrics\] path: \/metrics -> \/internal\/metrics/, 5000, mark);
    await srv.waitLog(/reload: restart needed: \[server\] port: 0 -> 1/, 5000, mark);
    await srv.waitLog(/take effect after a restart/, 5000, mark);
    assert.ok(!srv.lines.slice(mark).some(l => l.includes('new-key') || l.includes(SECRET2)), 'secrets are not logged');

    for (const s of [a, b]) {
      s.emit('ping', 2);
      assert.deepEqual(await next(s, 'pong2'), [2]);
    }
    assert.deepEqual([a.id, b.id], ids);
    assert.ok(a.connected && b.connected);
    assert.equal(dropped, 0);
    assert.equal((await api(srv, 'GET', '/api/rooms', { key: 'old-key' })).status, 401);
    assert.equal((await api(srv, 'GET', '/api/rooms', { key: 'new-key' })).status, 200);
    await eventually(async () => assert.equal((await api(srv, 'GET', '/internal/metrics')).status, 200));
    assert.equal((await api(srv, 'GET', '/metrics')).status, 404, 'the old metrics path is gone');
    // Every worker's raw endpoints follow the new origin list (a few upgrades reach both workers).
    for (let i = 0; i < 4; i++) {
      assert.equal(await upgrade('https://b.example'), 101);
      assert.equal(await upgrade('https://a.example'), 403);
    }
    // Still on the old port: the port change waits for a restart. Tokens now need the new secret.
    const c = await connect(srv.url, { auth: { token: token(SECRET2) } });
    assert.ok(c.connected);
    const err = await refused(srv.url, { auth: { token: token(SECRET1) } });
    assert.equal(err.data.reason, 'bad signature');
  });

  it('keeps the running configuration when the new one is wrong', async () => {
    const a = await connect(srv.url);
    fs.writeFileSync(file, '[server]\nport = nope\n');
    const mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    const m = await srv.waitLog(/reload failed, configuration unchanged: .*reload\.conf:2: \[server\] port: "nope"/,
                                5000, mark);
    assert.ok(m);
    a.emit('ping', 3);
    assert.deepEqual(await next(a, 'pong2'), [3]);
    assert.equal((await api(srv, 'GET', '/api/rooms', { key: 'new-key' })).status, 200);
  });

  it('keeps restart-only settings working through several reloads', async () => {
    for (const key of ['key-3', 'key-4', 'key-5']) {
      fs.writeFileSync(file, conf(key, 'pong2', 1, SECRET2));
      const mark = srv.lines.length;
      srv.proc.kill('SIGHUP');
      await srv.waitLog(/reload: applied live: \[api\] key/, 5000, mark);
    }
    // The log line comes from the thread that read the file; each worker applies the change on its own loop a
    // moment later (seen under valgrind), so the new key is waited for.
    await eventually(async () => assert.equal((await api(srv, 'GET', '/api/rooms', { key: 'key-5' })).status, 200));
    const dyn = await connect(`${srv.url}/dyn-3`);
    assert.ok(dyn.connected, 'the namespace pattern of the start still admits');
    const a = new WebSocket(`ws://127.0.0.1:${srv.port}/bcast`), b = new WebSocket(`ws://127.0.0.1:${srv.port}/bcast`);
    try {
      await within(Promise.all([a, b].map(w => new Promise((resolve, reject) => { w.once('open', resolve); w.once('error', reject); }))), 5000, 'ws open');
      const got = within(new Promise(resolve => b.once('message', m => resolve(String(m)))), 5000, 'broadcast');
      a.send('to everyone');
      assert.equal(await got, 'to everyone');
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('logging', () => {
  it('writes one JSON object per line with --log-format json', async () => {
    const srv = await new Wsio({ args: ['--log-format', 'json'] }).start();
    await srv.stopClean();
    assert.ok(srv.lines.length >= 2, 'some log lines');
    for (const line of srv.lines) {
      const rec = JSON.parse(line);
      assert.deepEqual(Object.keys(rec), ['time', 'level', 'msg']);
      assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['error', 'warn', 'info', 'debug'].includes(rec.level));
    }
    assert.ok(srv.lines.some(l => JSON.parse(l).msg.startsWith('listening on 127.0.0.1:')));
  });
});

// ==== the Admin UI and socket.io-client 2.x ===================================================================

describe('[admin] and [socketio] allow_eio3, with the built-in routes', () => {
  const bcrypt = require('bcryptjs');
  const ioV2 = require('socket.io-client-v2');
  // Flags, not a file: a configuration file brings its own routes instead of the demo's.
  const srv = new Wsio({ args: ['--admin-enabled', 'true', '--admin-username', 'admin', '--admin-password-hash',
                                bcrypt.hashSync('s3cret', 4), '--admin-mode', 'production',
                                '--socketio-allow-eio3', 'true'] });
  before(() => srv.start());
  after(() => srv?.stopClean());
  afterEach(closeClients);

  it('the dashboard\'s namespace: refused without the password, config and server_stats with it', async () => {
    const err = await refused(`${srv.url}/admin`, { auth: { username: 'admin', password: 'wrong' } });
    assert.equal(err.message, 'invalid credentials');
    const a = await connect(`${srv.url}/admin`, { auth: { username: 'admin', password: 's3cret' } });
    await eventually(() => assert.ok(a.got.some(([e]) => e === 'config'), JSON.stringify(a.got)));
    const [cfg] = a.got.find(([e]) => e === 'config').slice(1);
    assert.ok(cfg.supportedFeatures.includes('EMIT') && cfg.supportedFeatures.includes('AGGREGATED_EVENTS'));
    assert.ok(!cfg.supportedFeatures.includes('ALL_EVENTS'), 'production mode');
    // Every worker reports as a server of its own (the program runs one per core): the dashboard adds them up.
    const latest = new Map();
    a.on('server_stats', st => latest.set(st.serverId, st));
    await eventually(() => {
      const all = [...latest.values()];
      assert.equal(all.length, os.availableParallelism(), JSON.stringify(all));
      assert.equal(all.reduce((n, st) => n + st.clientsCount, 0), 1, JSON.stringify(all));
      assert.equal(all.reduce((n, st) => n + st.namespaces.find(x => x.name === '/admin').socketsCount, 0), 1);
    }, 8000);
  });

  it('a socket.io-client 2.x client joins the demo\'s rooms and gets a 4.x client\'s messages', async () => {
    const old = ioV2(srv.url, { forceNew: true, reconnection: false, transports: ['websocket'] });
    try {
      await within(new Promise((resolve, reject) => { old.once('connect', resolve); old.once('connect_error', reject); }),
                   5000, 'the 2.x client connects');
      const joined = await within(new Promise(resolve => old.emit('join', 'lobby', resolve)), 5000, 'join');
      assert.equal(joined, 'ok');
      const got = within(new Promise(resolve => old.once('roomMsg', resolve)), 5000, 'roomMsg');
      const b = await connect(srv.url);
      assert.deepEqual(await ack(b, 'join', 'lobby'), ['ok']); // the demo takes room messages from members
      b.emit('toRoom', 'lobby', { text: 'from 4.x' });
      assert.deepEqual(await got, { text: 'from 4.x' });
    } finally {
      old.close();
    }
  });
});
