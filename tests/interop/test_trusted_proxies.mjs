// [server] trusted_proxies end to end, with the wsio program and real clients (npm ws and socket.io-client
// from tests/node_modules). The clients play the proxy's part: a connection from 127.0.0.1 (trusted) carries
// the X-Forwarded-For header nginx would add, so the client is the address it names; 127.0.0.2 (all of
// 127.0.0.0/8 is loopback) is a peer that is not trusted, whose header is ignored. Checked: the
// per-address limits count forwarded clients separately, socket.handshake.address (GET /api/sockets) is the
// forwarded client, long-polling sessions work with their requests on any of the proxy's connections and
// any worker, the setting reloads live, and a bad list is refused at start and at reload.
//
// Usage: node --test-reporter=spec tests/interop/test_trusted_proxies.mjs /path/to/wsio   (or WSIO_BIN=...)
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Wsio, eventually, prerequisites, runWsio, tempDir, within } from './program_harness.mjs';

const { io, WebSocket } = prerequisites();
const TMP = tempDir('trusted');

const KEY = 'trusted-proxies-api-key';

// A request from a chosen local address: { status, headers, body }.
function request(url, { method = 'GET', localAddress = '127.0.0.1', headers = {}, body } = {}) {
  return within(new Promise((resolve, reject) => {
    const req = http.request(url, { method, localAddress, headers, agent: false }, res => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', d => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  }), 5000, `${method} ${url}`);
}

// GET /api/sockets (the proxy's own request, from 127.0.0.1 without a header): [{ id, address, transport }].
async function sockets(srv) {
  const r = await request(`${srv.url}/api/sockets`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).sockets;
}

async function addressOf(srv, id) {
  const s = (await sockets(srv)).find(x => x.id === id);
  assert.ok(s, `socket ${id} listed`);
  return s;
}

async function metric(srv, series) {
  const { status, body } = await request(`${srv.url}/metrics`, { localAddress: '127.0.0.3' });
  assert.equal(status, 200);
  for (const line of body.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  assert.fail(`no series ${series} in /metrics`);
}

const open = new Set();
afterEach(() => {
  for (const s of open) {
    if (s.terminate) s.terminate();
    else if (s.destroy) s.destroy();
    else { s.disconnect(); s.io.engine?.close(); }
  }
  open.clear();
});

const xff = address => (address ? { 'X-Forwarded-For': address } : {});

// A raw WebSocket: { ws } once open, { status, body } when the handshake is answered with an error.
function wsOpen(srv, { from = '127.0.0.1', forwarded } = {}) {
  const ws = new WebSocket(`${srv.wsUrl}/echo`, { agent: false, localAddress: from, headers: xff(forwarded) });
  open.add(ws);
  ws.closed = new Promise(resolve => ws.on('close', resolve));
  return within(new Promise(resolve => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', d => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode, body }); req.destroy(); });
    });
    ws.once('error', error => resolve({ error }));
  }), 5000, `WebSocket from ${from} for ${forwarded}`);
}

// A socket.io-client socket sending X-Forwarded-For on every request: { socket } or { error }.
function sioConnect(srv, { from = '127.0.0.1', forwarded, transports = ['websocket'] } = {}) {
  const socket = io(srv.url, {
    forceNew: true, reconnection: false, transports, extraHeaders: xff(forwarded),
    localAddress: from, agent: new http.Agent({ localAddress: from }),
  });
  open.add(socket);
  return within(new Promise(resolve => {
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', error => resolve({ error }));
  }), 5000, `socket.io from ${from} for ${forwarded}`);
}

function ack(socket, event, ...args) {
  return within(new Promise(resolve => socket.emit(event, ...args, (...res) => resolve(res))), 5000, `ack of ${event}`);
}

describe('per-address limits behind a trusted proxy', () => {
  let srv;
  before(async () => {
    srv = await new Wsio({ args: ['--api-key', KEY, '--workers', '1', '--trusted-proxies', '127.0.0.1',
      '--limits-max-connections-per-ip', '1'] }).start();
  });
  after(async () => { await srv.stopClean(); });

  it('counts each forwarded client on its own, and shows it as handshake.address', async () => {
    const a = await wsOpen(srv, { forwarded: '203.0.113.1' });
    assert.ok(a.ws, 'a first client through the proxy');
    const b = await wsOpen(srv, { forwarded: '203.0.113.2' });
    assert.ok(b.ws, 'another client through the same proxy');
    const again = await wsOpen(srv, { forwarded: '203.0.113.1' });
    assert.equal(again.status, 503, 'the first client a second time is over its limit');
    assert.match(again.body, /too many connections from your address/);
    // nginx's $proxy_add_x_forwarded_for appends to what the client sent: the left part is the client's word.
    const s = await sioConnect(srv, { forwarded: '198.51.100.66, 203.0.113.3' });
    assert.ok(s.socket, 'socket.io through the proxy');
    assert.equal((await addressOf(srv, s.socket.id)).address, '203.0.113.3');
    const over = await sioConnect(srv, { forwarded: '203.0.113.3, 203.0.113.1' });
    assert.ok(over.error, 'socket.io for a client that is at its limit');
    // The first client leaves: its place is free again.
    a.ws.close();
    await a.ws.closed;
    await eventually(async () => assert.ok((await wsOpen(srv, { forwarded: '203.0.113.1' })).ws));
    await eventually(async () => assert.ok(await metric(srv, 'wsio_limit_ip_connections_refused_total') >= 2));
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const first = await wsOpen(srv, { from: '127.0.0.2', forwarded: '198.51.100.1' });
    assert.ok(first.ws);
    const second = await wsOpen(srv, { from: '127.0.0.2', forwarded: '198.51.100.2' });
    assert.equal(second.status, 503, 'counted as 127.0.0.2, whatever it forwards');
    first.ws.close();
    await first.ws.closed;
    const s = await eventually(async () => {
      const r = await sioConnect(srv, { from: '127.0.0.2', forwarded: '198.51.100.3' });
      assert.ok(r.socket, 'connects once the WebSocket is gone');
      return r.socket;
    });
    assert.match((await addressOf(srv, s.id)).address, /^127\.0\.0\.2:\d+$/);
  });
});

// A kept-alive HTTP/1.1 connection from 127.0.0.1, the way a proxy talks to its upstream: one request at a
// time, each for whichever client it names.
class ProxyConn {
  constructor(port) {
    this.sock = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
    this.sock.on('error', () => {});
    this.pending = Buffer.alloc(0);
    this.sock.on('data', d => { this.pending = Buffer.concat([this.pending, d]); this.parse(); });
    open.add(this.sock);
  }

  request(method, target, forwarded, body = '') {
    const head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${forwarded}\r\n` +
                 `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const answer = new Promise(resolve => { this.waiter = resolve; });
    this.sock.write(head + body);
    return within(answer, 5000, `${method} ${target} for ${forwarded}`);
  }

  parse() {
    const end = this.pending.indexOf('\r\n\r\n');
    if (!this.waiter || end < 0) return;
    const lines = this.pending.subarray(0, end).toString('latin1').split('\r\n');
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(`\r\n${lines.join('\r\n')}`)?.[1] ?? 0);
    if (this.pending.length < end + 4 + len) return;
    const body = this.pending.subarray(end + 4, end + 4 + len).toString('utf8');
    this.pending = this.pending.subarray(end + 4 + len);
    const w = this.waiter;
    this.waiter = null;
    w({ status: Number(lines[0].split(' ')[1]), body });
  }
}

describe('long-polling behind a trusted proxy', () => {
  let srv;
  before(async () => {
    srv = await new Wsio({ args: ['--api-key', KEY, '--workers', '2', '--trusted-proxies', '127.0.0.1',
      '--limits-max-connections-per-ip', '2'] }).start();
  });
  after(async () => { await srv.stopClean(); });

  it('runs socket.io-client sessions over polling, each its forwarded client', async () => {
    const clients = [];
    for (let i = 1; i <= 5; i++) {
      const r = await sioConnect(srv, { forwarded: `203.0.113.${10 + i}`, transports: ['polling'] });
      assert.ok(r.socket, `polling client ${i} connects (its GET and POST count as two of its own)`);
      clients.push(r.socket);
    }
    for (const s of clients) assert.deepEqual(await ack(s, 'join', 'lobby'), ['ok']);
    const listed = await sockets(srv);
    for (const [i, s] of clients.entries()) {
      const mine = listed.find(x => x.id === s.id);
      assert.ok(mine, `client ${i} listed`);
      assert.equal(mine.address, `203.0.113.${11 + i}`);
      assert.equal(mine.transport, 'polling');
    }
  });

  it('takes a session\'s requests on any of the proxy\'s connections, moving them between workers', async () => {
    const base = '/socket.io/?EIO=4&transport=polling';
    // A proxy connection on each worker: a session's id names the worker that opened it.
    const on = {};
    for (let i = 1; i <= 40 && Object.keys(on).length < 2; i++) {
      const conn = new ProxyConn(srv.port);
      const client = `198.51.100.${i}`;
      const r = await conn.request('GET', base, client);
      assert.equal(r.status, 200, r.body);
      const sid = JSON.parse(r.body.slice(1)).sid;
      on[sid.slice(0, 2)] ??= { conn, client, url: `${base}&sid=${encodeURIComponent(sid)}` };
    }
    const [a, b] = Object.values(on);
    assert.ok(a && b, 'a session on each worker');
    const before = await metric(srv, 'wsio_worker_handoffs_total');
    // Each request on the other worker's connection: it moves, with the connection, to its session's worker.
    assert.equal((await b.conn.request('POST', a.url, a.client, '40')).status, 200);
    assert.equal((await a.conn.request('POST', b.url, b.client, '40')).status, 200);
    for (const [conn, x] of [[a.conn, a], [b.conn, b]]) {
      const r = await conn.request('GET', x.url, x.client);
      assert.equal(r.status, 200);
      assert.match(r.body, /^40\{"sid"/);
    }
    await eventually(async () => assert.ok(await metric(srv, 'wsio_worker_handoffs_total') >= before + 4));
    const listed = await sockets(srv);
    for (const x of [a, b]) {
      assert.ok(listed.some(s => s.address === x.client && s.transport === 'polling'),
        `a socket of ${x.client} in ${JSON.stringify(listed)}`);
    }
  });
});

describe('reload and bad lists', () => {
  const file = path.join(TMP, 'trusted.conf');
  const conf = list => `[server]\nhost = 127.0.0.1\nport = 0\nworkers = 2\ntrusted_proxies = ${list}\n[api]\nkey = ${KEY}\n`;
  let srv;
  before(async () => {
    fs.writeFileSync(file, conf('127.0.0.2'));
    srv = await new Wsio({ args: ['--config', file], listenFlags: false }).start();
  });
  after(async () => { await srv.stopClean(); });

  it('applies a new list live, and keeps it when the next one is wrong', async () => {
    const before = (await sioConnect(srv, { forwarded: '192.0.2.20' })).socket;
    assert.ok(before);
    assert.match((await addressOf(srv, before.id)).address, /^127\.0\.0\.1:\d+$/, '127.0.0.1 is not trusted yet');

    fs.writeFileSync(file, conf('10.0.0.0/8, 127.0.0.1, ::1'));
    let mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    await srv.waitLog(/reload: applied live: \[server\] trusted_proxies: 127\.0\.0\.2 -> 10\.0\.0\.0\/8,127\.0\.0\.1,::1/,
                      5000, mark);
    // Each worker switches on its own loop: a few connections reach both.
    for (let i = 0; i < 4; i++) {
      await eventually(async () => {
        const s = (await sioConnect(srv, { forwarded: `192.0.2.${30 + i}` })).socket;
        assert.ok(s);
        assert.equal((await addressOf(srv, s.id)).address, `192.0.2.${30 + i}`);
      });
    }
    assert.ok(before.connected, 'a client connected before the reload stays');

    fs.writeFileSync(file, conf('127.0.0.1, 127.0.0.1/40'));
    mark = srv.lines.length;
    srv.proc.kill('SIGHUP');
    await srv.waitLog(/reload failed, configuration unchanged: .*trusted\.conf:5: \[server\] trusted_proxies: "127\.0\.0\.1\/40" has a prefix longer than 32 bits/,
                      5000, mark);
    for (let i = 0; i < 4; i++) {
      const s = (await sioConnect(srv, { forwarded: `192.0.2.${40 + i}` })).socket;
      assert.equal((await addressOf(srv, s.id)).address, `192.0.2.${40 + i}`, 'the list in use stays');
    }
  });

  it('refuses a bad list at start, naming the item and where it came from', () => {
    let r = runWsio(['--trusted-proxies', '10.0.0.0/33', '--check-config']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--trusted-proxies: "10\.0\.0\.0\/33" has a prefix longer than 32 bits/);
    r = runWsio(['--check-config'], { WSIO_TRUSTED_PROXIES: '127.0.0.1, proxy.example' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /WSIO_TRUSTED_PROXIES: "proxy\.example" is not an IP address or network/);
    const bad = path.join(TMP, 'bad.conf');
    fs.writeFileSync(bad, '[server]\ntrusted_proxies = 10.0.0.0/8 192.168.0.0/16\n');
    r = runWsio(['--config', bad]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.conf:2: \[server\] trusted_proxies: "10\.0\.0\.0\/8 192\.168\.0\.0\/16" holds a blank: networks are separated by commas/);
    r = runWsio(['--trusted-proxies', ' 10.0.0.0/8 , fd00::/8 ', '--check-config']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /trusted_proxies = 10\.0\.0\.0\/8,fd00::\/8/);
  });
});
