// Long-polling over TLS against two workers (sio_server --workers 2 --tls-cert --tls-key): a request for a
// session of the other worker moves there with its socket and its TLS session, in the middle of the
// connection. npm socket.io-client clients over https, on polling only and upgraded to wss, first with a new
// connection per request (Connection: close), then with kept-alive connections that every client shares (so
// one TLS connection carries requests for sessions of both workers and moves back and forth). Then one
// kept-alive TLS connection driven by hand: requests for the two workers' sessions in turn, two requests in
// one TLS record, requests in consecutive records of one read (the later ones still encrypted when the
// first moves the connection), a long request handed over with more than a read buffer's worth of bytes
// among which a pipelined request moves on again, garbage after a move, and the upgrade to WebSocket after a move. The server's hand-over count
// (wsio_stats.handoffs, through sio_server's "server-stats" event) shows the moves happened.
//
// Skipped (77) without socket.io-client in tests/node_modules or without the openssl program.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { SioServer, within, waitEvent, ackOf, eventually } from './sio_harness.mjs';

let io;
try {
  ({ io } = await import('socket.io-client'));
} catch {
  console.error('socket.io-client is not installed in tests/node_modules (run scripts/deps): skipped');
  process.exit(77);
}
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  console.error('the openssl program is missing: skipped');
  process.exit(77);
}

const N = 40;            // clients per scenario: half on polling only, half upgraded to WebSocket
const TLS_RECORD = 16384; // the most plaintext one TLS record carries

// ---- one TLS connection driven by hand: HTTP/1.1 requests and responses, then WebSocket frames ----

class RawTls {
  static open(port, ca) {
    return within(new Promise((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ca }, () => resolve(new RawTls(sock)));
      sock.once('error', reject);
    }), 5000, 'TLS connection');
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiter = null;
    this.ended = false;
    sock.on('data', d => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
    sock.on('error', () => {});
    sock.on('close', () => { this.ended = true; this.pump(); });
  }

  write(...chunks) { this.sock.write(Buffer.concat(chunks)); }

  // Two writes that Node's TLS layer sends as they are, each its own record(s).
  writeApart(a, b) { this.sock.write(a); this.sock.write(b); }

  pump() {
    if (!this.waiter) return;
    const w = this.waiter;
    const got = w.take();
    if (got !== undefined) { this.waiter = null; w.resolve(got); }
    else if (this.ended) { this.waiter = null; w.reject(new Error('the server closed the connection')); }
  }

  wait(take, what, ms = 5000) {
    assert.equal(this.waiter, null);
    return within(new Promise((resolve, reject) => {
      this.waiter = { take, resolve, reject };
      this.pump();
    }), ms, what).finally(() => { this.waiter = null; });
  }

  // The next HTTP response: {status, headers, body}. Bodies come with Content-Length (none on a 101).
  response(what = 'an HTTP response') {
    return this.wait(() => {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      assert.equal(headers['transfer-encoding'], undefined);
      const len = status === 101 ? 0 : Number(headers['content-length'] ?? 0);
      if (this.buf.length < end + 4 + len) return undefined;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString();
      this.buf = this.buf.subarray(end + 4 + len);
      return { status, headers, body };
    }, what);
  }

  // The next WebSocket frame from the server (unmasked, unfragmented here): {op, data}.
  frame() {
    return this.wait(() => {
      if (this.buf.length < 2) return undefined;
      let len = this.buf[1] & 0x7f, at = 2;
      if (len === 126) { if (this.buf.length < 4) return undefined; len = this.buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (this.buf.length < 10) return undefined; len = Number(this.buf.readBigUInt64BE(2)); at = 10; }
      if (this.buf.length < at + len) return undefined;
      const f = { op: this.buf[0] & 0x0f, data: this.buf.subarray(at, at + len).toString() };
      this.buf = this.buf.subarray(at + len);
      return f;
    }, 'a WebSocket frame');
  }

  sendText(text) {
    const payload = Buffer.from(text);
    assert.ok(payload.length < 126);
    const mask = crypto.randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
    this.write(Buffer.from([0x81, 0x80 | payload.length]), mask, masked);
  }

  close() { this.sock.destroy(); }
}

const POLL = '/socket.io/?EIO=4&transport=polling';

function get(sid, extra = '') {
  return Buffer.from(`GET ${POLL}&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`);
}

function post(sid, body) {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${POLL}&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${b.length}\r\n\r\n`), b]);
}


// ---- the scenarios ----

describe('long-polling sessions over TLS across two workers', () => {
  let dir, ca, server, url, monitor;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsio-tls-workers-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 60000 });
    ca = fs.readFileSync(cert);
    server = new SioServer(['--workers', '2', '--tls-cert', cert, '--tls-key', key]);
    url = await server.start();
    assert.match(url, /^https:/);
    // Reads the server's counters; on WebSocket only, so it is never handed over itself.
    monitor = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, ca });
    await waitEvent(monitor, 'connect', 5000);
  });

  after(async () => {
    monitor?.close();
    if (server) await server.stopClean();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function stats() {
    const [st] = await ackOf(monitor, 'server-stats');
    return st;
  }

  // N clients made with opts: connect, upgrade where asked, acks and a broadcast reach every one.
  async function exercise(opts) {
    const clients = [];
    try {
      for (let i = 0; i < N; i++) {
        const transports = i % 2 ? ['polling'] : ['polling', 'websocket'];
        clients.push(io(url, { transports, forceNew: true, reconnection: false, ca, ...opts }));
      }
      await within(Promise.all(clients.map(s => s.connected ? null : waitEvent(s, 'connect', 15000))), 20000,
                   'every client connected');
      const upgraded = clients.filter((_, i) => i % 2 === 0);
      await within(Promise.all(upgraded.map(s => s.io.engine.transport.name === 'websocket' ? null
        : waitEvent(s.io.engine, 'upgrade', 15000))), 20000, 'upgrades');
      for (const [i, s] of clients.entries())
        assert.equal(s.io.engine.transport.name, i % 2 ? 'polling' : 'websocket', `client ${i}'s transport`);
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(clients.map((s, i) => ackOf(s, 'ack-me', round, i)));
        answers.forEach((a, i) => assert.deepEqual(a, [round, i]));
      }
      // Sessions of earlier scenarios are gone once every worker says so: then the count is exact.
      await eventually(async () => {
        const st = await stats();
        assert.deepEqual([st.polling, st.websocket], [N / 2, N / 2 + 1]);
      });
      // A broadcast from a polling client reaches every client, on either worker and either transport.
      const got = clients.map(s => waitEvent(s, 'all', 10000));
      const [reached] = await ackOf(clients[1], 'emit-all', 'to everyone');
      assert.equal(reached, N + 1);
      for (const g of got) assert.deepEqual(await g, ['to everyone']);
      // And from an upgraded one, while the polling clients exchange more events.
      const got2 = clients.map(s => waitEvent(s, 'all', 10000));
      const more = Promise.all(clients.filter((_, i) => i % 2).map((s, i) => ackOf(s, 'ack-me', 'more', i)));
      const [reached2] = await ackOf(clients[0], 'emit-all', 'again');
      assert.equal(reached2, N + 1);
      for (const g of got2) assert.deepEqual(await g, ['again']);
      (await more).forEach((a, i) => assert.deepEqual(a, ['more', i]));
    } finally {
      for (const c of clients) c.close();
    }
  }

  it('a new TLS connection per request (Connection: close): each request lands on either worker', async t => {
    const before = (await stats()).handoffs;
    await exercise({ extraHeaders: { Connection: 'close' } });
    const moved = (await eventually(async () => {
      const st = await stats();
      assert.ok(st.handoffs > before);
      return st;
    })).handoffs - before;
    t.diagnostic(`${moved} requests handed to the other worker`);
    assert.ok(moved >= N / 2, `requests handed to the other worker: ${moved}`);
  });

  it('kept-alive TLS connections shared by every client move between workers and keep working', async t => {
    // One pool of kept-alive connections for every client: a connection freed by one session's request is
    // taken by the next request of any session, of either worker.
    let sockets = 0;
    class CountingAgent extends https.Agent {
      createConnection(...args) {
        sockets++;
        return super.createConnection(...args);
      }
    }
    const agent = new CountingAgent({ keepAlive: true, ca });
    const before = (await stats()).handoffs;
    try {
      await exercise({ agent });
    } finally {
      agent.destroy();
    }
    const moved = (await eventually(async () => {
      const st = await stats();
      assert.ok(st.handoffs > before);
      return st;
    })).handoffs - before;
    // More moves than connections: kept-alive connections were handed over again after a first move, with
    // their TLS sessions, and the requests after each move were answered.
    t.diagnostic(`${moved} hand-overs on ${sockets} TLS connections`);
    assert.ok(moved > sockets, `${moved} hand-overs on ${sockets} TLS connections`);
  });

  describe('one kept-alive TLS connection driven by hand', () => {
    const sessions = {}; // worker index -> {sid, acks}
    let conn;

    before(async () => {
      // Sessions open on the worker that accepts their handshake: open some until each worker has one.
      for (let i = 0; i < 64 && Object.keys(sessions).length < 2; i++) {
        const c = await RawTls.open(server.port, ca);
        c.write(Buffer.from(`GET ${POLL} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
        const r = await c.response('the handshake');
        c.close();
        assert.equal(r.status, 200);
        const { sid } = JSON.parse(r.body.slice(1));
        const worker = { AA: 0, AB: 1 }[sid.slice(0, 2)];
        assert.notEqual(worker, undefined, `sid ${sid} names worker 0 or 1`);
        if (sessions[worker]) continue; // left to time out
        sessions[worker] = { sid, acks: 0 };
      }
      assert.ok(sessions[0] && sessions[1], 'a session on each worker');
      conn = await RawTls.open(server.port, ca);
    });

    after(() => conn?.close());

    const sidOf = w => sessions[w].sid;

    // An event with an ack for worker w's session: the POST, and what a GET then brings back. With size,
    // the argument is padded so that the whole request is that many bytes.
    function ackPost(w, arg, size = 0) {
      const id = sessions[w].acks++;
      const make = a => ({
        req: post(sidOf(w), `42${id}["ack-me",${JSON.stringify(a)}]`),
        want: `43${id}[${JSON.stringify(a)}]`,
      });
      let pad = 0, m = make(arg);
      while (size && m.req.length !== size) {
        pad += size - m.req.length;
        m = make(arg + 'x'.repeat(pad));
      }
      return m;
    }

    async function expectOk(what) {
      const r = await conn.response(what);
      assert.deepEqual([r.status, r.body], [200, 'ok'], what);
    }

    async function expectPoll(w, want) {
      conn.write(get(sidOf(w)));
      const r = await conn.response(`the poll of worker ${w}'s session`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.split('\x1e'), want);
    }

    it('requests for the sessions of both workers in turn', async () => {
      const before = (await stats()).handoffs;
      for (const w of [0, 1]) {
        conn.write(post(sidOf(w), '40'));
        await expectOk(`connect on worker ${w}`);
      }
      for (const w of [0, 1]) {
        conn.write(get(sidOf(w)));
        const r = await conn.response('the connect answer');
        assert.equal(r.status, 200);
        const [connect, welcome] = r.body.split('\x1e');
        assert.match(connect, /^40\{"sid":"[^"]+"\}$/);
        assert.match(welcome, /^42\["welcome",/);
      }
      for (let i = 0; i < 5; i++) {
        for (const w of [0, 1]) {
          const { req, want } = ackPost(w, `turn ${i}`);
          conn.write(req);
          await expectOk('an event');
          await expectPoll(w, [want]);
        }
      }
      // Every change of session moved the connection to the other worker: 13 of them.
      await eventually(async () => assert.ok((await stats()).handoffs - before >= 13));
    });

    it('two requests in one TLS record, the second for the other worker', async () => {
      // The connection is on worker 1 (the last request was for its session).
      const a = ackPost(0, 'one record, first');
      const b = ackPost(1, 'one record, second');
      conn.write(a.req, b.req);
      await expectOk('the first of the pair');
      await expectOk('the second of the pair');
      await expectPoll(0, [a.want]);
      await expectPoll(1, [b.want]);
    });

    it('requests in consecutive TLS records of one read, each for the other worker', async () => {
      // The first request fills a record exactly, so the next ones are records of their own, already read
      // (and still encrypted) when the first moves the connection: they must move along and be answered.
      const a = ackPost(0, 'first record ', TLS_RECORD);
      const b = ackPost(1, 'second record');
      const c = ackPost(0, 'third record');
      conn.write(a.req, b.req, c.req);
      for (const what of ['first', 'second', 'third']) await expectOk(`the ${what} record's request`);
      await expectPoll(0, [a.want, c.want]);
      await expectPoll(1, [b.want]);
      // Two full records, each for the other worker than the one before, then a small one.
      const d = ackPost(0, 'full record ', TLS_RECORD);
      const e = ackPost(1, 'full record ', TLS_RECORD);
      const f = ackPost(0, 'last');
      conn.write(d.req, e.req, f.req);
      for (let i = 0; i < 3; i++) await expectOk(`request ${i} of three records`);
      await expectPoll(0, [d.want, f.want]);
      await expectPoll(1, [e.want]);
      // The same with separate writes, one record each, as fast as they go.
      const g = ackPost(0, 'apart, first');
      const h = ackPost(1, 'apart, second');
      conn.writeApart(g.req, h.req);
      await expectOk('the first write');
      await expectOk('the second write');
      await expectPoll(0, [g.want]);
      await expectPoll(1, [h.want]);
    });

    it('a long request, then pipelined ones past the read buffer, each moved on', async () => {
      // On worker 1: a request it answers, a long one for worker 0 whose last record also carries a request
      // back for worker 1 and another one. What worker 0 is handed is longer than one read: the request
      // back to worker 1 takes every byte after it along, not only those of the same read.
      const r0 = ackPost(1, 'local ', 10000);
      const r1 = ackPost(0, 'long ', 60000);
      const r2 = ackPost(1, 'back');
      const r3 = ackPost(1, 'after ', 10000);
      conn.write(r0.req, r1.req, r2.req, r3.req);
      for (let i = 0; i < 4; i++) await expectOk(`request ${i} of four`);
      await expectPoll(0, [r1.want]);
      await expectPoll(1, [r0.want, r2.want, r3.want]);
    });

    it('garbage after a move gets a 400 and a close, and the server goes on', async () => {
      const bad = await RawTls.open(server.port, ca);
      const a = ackPost(0, 'before garbage ', TLS_RECORD);
      const b = ackPost(1, 'before garbage ', TLS_RECORD);
      try {
        // Whichever worker accepted the connection, one of the two full records is for the other worker;
        // the bytes that are no HTTP come in the record after them.
        bad.write(a.req, b.req, Buffer.from('\x00\x01 not http\r\n\r\n'));
        for (const what of ['first', 'second']) {
          const r = await bad.response(`the ${what} request`);
          assert.deepEqual([r.status, r.body], [200, 'ok']);
        }
        const refused = await bad.response('the answer to garbage');
        assert.equal(refused.status, 400);
        await within(new Promise(resolve => bad.ended ? resolve() : bad.sock.once('close', resolve)), 5000,
                     'the close');
      } finally {
        bad.close();
      }
      // Both events went through; the kept-alive connection still serves both sessions.
      await expectPoll(0, [a.want]);
      await expectPoll(1, [b.want]);
    });

    it('the upgrade to WebSocket on the kept-alive connection, after a move', async () => {
      // The connection is on worker 1; the upgrade is for worker 0's session.
      const key = crypto.randomBytes(16).toString('base64');
      conn.write(Buffer.from(`GET /socket.io/?EIO=4&transport=websocket&sid=${sidOf(0)} HTTP/1.1\r\n` +
        `Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n'));
      const r = await conn.response('the 101');
      assert.equal(r.status, 101);
      assert.equal(r.headers['sec-websocket-accept'],
        crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'));
      conn.sendText('2probe');
      assert.deepEqual(await conn.frame(), { op: 1, data: '3probe' });
      conn.sendText('5');
      const { req, want } = ackPost(0, 'over wss');
      conn.sendText(req.subarray(req.indexOf('\r\n\r\n') + 4).toString());
      let f;
      do f = await conn.frame(); while (f.data === '6'); // a noop may come first
      assert.deepEqual(f, { op: 1, data: want });
      // The session is on WebSocket now, and the other worker's session still polls.
      await eventually(async () => assert.equal((await stats()).websocket, 2));
      const other = await RawTls.open(server.port, ca);
      try {
        const o = ackPost(1, 'still polling');
        other.write(o.req);
        const ok = await other.response('a POST on a new connection');
        assert.deepEqual([ok.status, ok.body], [200, 'ok']);
        other.write(get(sidOf(1)));
        assert.deepEqual((await other.response('its poll')).body, o.want);
      } finally {
        other.close();
      }
    });

  });
});
