// Long-polling against two workers (sio_server --workers 2): every polling request is its own HTTP request
// and lands on either worker; those for a session of the other worker are handed to it with their socket.
// Many npm socket.io-client clients on polling only and on polling upgraded to WebSocket connect, exchange
// events and acks, and all get a broadcast sent from any of them. Without the hand-over about half of the
// requests would meet "Session ID unknown" and the clients would fail.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import net from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SioServer, within, waitEvent, ackOf, quiet } from './sio_harness.mjs';

const N = 60;
// A static file larger than what the socket buffers take while the client does not read.
const root = mkdtempSync(join(tmpdir(), 'wsio-workers-polling-'));
const BIG = randomBytes(6 << 20);
writeFileSync(join(root, 'big.bin'), BIG);
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

// The worker a session id names: its first two characters, base64url.
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const workerOf = sid => B64URL.indexOf(sid[0]) * 64 + B64URL.indexOf(sid[1]);

// HTTP/1.1 responses read off a raw socket, one after the other (Content-Length bodies).
function responses(sock) {
  let buf = Buffer.alloc(0);
  const waiters = [];
  const pump = () => {
    while (waiters.length) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1]);
      if (buf.length < end + 4 + len) return;
      const body = buf.subarray(end + 4, end + 4 + len);
      buf = buf.subarray(end + 4 + len);
      waiters.shift()({ status: Number(head.split(' ')[1]), head, body });
    }
  };
  sock.on('data', d => { buf = Buffer.concat([buf, d]); pump(); });
  return what => within(new Promise(resolve => { waiters.push(resolve); pump(); }), 10000, what);
}

describe('long-polling sessions across two workers', () => {
  let server, url;
  const clients = [];
  before(async () => {
    server = new SioServer(['--workers', '2', '--web-root', root]);
    url = await server.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stopClean();
  });

  it('connects, exchanges events and gets every broadcast, on polling and after the upgrade', async () => {
    const opts = i => i % 2
      ? { transports: ['polling'], forceNew: true, reconnection: false }
      : { transports: ['polling', 'websocket'], forceNew: true, reconnection: false };
    for (let i = 0; i < N; i++) {
      // No connection reuse between requests: each one may land on either worker.
      const s = io(url, { ...opts(i), extraHeaders: { Connection: 'close' } });
      clients.push(s);
    }
    await within(Promise.all(clients.map(s => s.connected ? null : waitEvent(s, 'connect', 10000))), 15000,
                 'every client connected');
    // Upgrades finish on the worker that owns the session.
    const upgraded = clients.filter((_, i) => i % 2 === 0);
    await within(Promise.all(upgraded.map(s => s.io.engine.transport.name === 'websocket' ? null
      : waitEvent(s.io.engine, 'upgrade', 10000))), 15000, 'upgrades');
    for (const s of upgraded) assert.equal(s.io.engine.transport.name, 'websocket');
    for (const [i, s] of clients.entries()) {
      if (i % 2) assert.equal(s.io.engine.transport.name, 'polling');
    }
    // Several rounds of events with acks over every session.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(clients.map((s, i) => ackOf(s, 'ack-me', round, i)));
      answers.forEach((a, i) => assert.deepEqual(a, [round, i]));
    }
    // A broadcast from a polling client reaches every client, whichever worker it is on.
    const got = clients.map(s => waitEvent(s, 'all', 10000));
    const [reached] = await ackOf(clients[1], 'emit-all', 'to everyone');
    assert.equal(reached, N);
    for (const g of got) assert.deepEqual(await g, ['to everyone']);
  });
  it('a request for the other worker, behind an answer still being written, moves once that has left', async () => {
    const sock = net.connect(server.port, '127.0.0.1');
    await within(new Promise(resolve => sock.once('connect', resolve)), 5000, 'connect');
    const next = responses(sock);
    // A handshake names the connection's worker: the session is made where the request landed.
    sock.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n');
    const here = workerOf(JSON.parse((await next('handshake')).body.toString().slice(1)).sid);
    let other;
    for (let i = 0; i < 100 && !other; i++) {
      const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { Connection: 'close' } });
      const sid = JSON.parse((await r.text()).slice(1)).sid;
      if (workerOf(sid) !== here) other = sid;
    }
    assert.ok(other, 'a session on the other worker');
    // The file's answer fills the socket while the client reads nothing; the POST for the other worker's
    // session comes right behind it on the same connection.
    sock.pause();
    sock.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n' +
               `POST /socket.io/?EIO=4&transport=polling&sid=${other} HTTP/1.1\r\nHost: x\r\n` +
               'Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40');
    await quiet(300);
    sock.resume();
    const file = await next('the file');
    assert.equal(file.status, 200);
    assert.ok(file.body.equals(BIG), 'the file, whole');
    const post = await next('the POST');
    assert.deepEqual([post.status, post.body.toString()], [200, 'ok']);
    // The CONNECT reached the session on the other worker.
    const poll = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${other}`);
    assert.match(await poll.text(), /^40\{"sid":/);
    sock.destroy();
  });
});
