// Interop tests: the npm `ws` client (tests/node_modules) against the wsio program.
//
// Usage: INTEROP_WSIO=/path/to/wsio node --test tests/interop/test_ws_node.mjs
//
// Every test starts its own wsio on a free port and stops it in an after() hook, also on failure; an exit
// hook kills whatever is left. Frames ws will not send (unmasked, reserved opcodes, bad close payloads)
// go through RawWS, a minimal client over net.Socket.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import WebSocket from 'ws';

const WSIO = process.env.INTEROP_WSIO;
if (!WSIO || !fs.existsSync(WSIO)) {
  console.error(`set INTEROP_WSIO to the wsio program (got ${WSIO})`);
  process.exit(2);
}
// wsio reads every WSIO_* variable as a setting: the server under test gets none of the caller's.
const CHILD_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WSIO_')));
const MiB = 1 << 20;
// Deadlines stretch for a slower server (tests/reliability/valgrind.sh sets INTEROP_TIMEOUT_SCALE).
const SCALE = Number(process.env.INTEROP_TIMEOUT_SCALE) || 1;
const START_TIMEOUT = 10000 * SCALE;
const IO_TIMEOUT = 20000 * SCALE;
const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];

// ---- the server under test ------------------------------------------------------------------------------

const running = new Set();
process.on('exit', () => { for (const p of running) p.kill('SIGKILL'); });

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

async function startServer(...extra) {
  const args = ['--host', '127.0.0.1', '--port', '0', '--ws-echo', '/echo', ...extra];
  const proc = spawn(WSIO, args, { stdio: ['ignore', 'ignore', 'pipe'], env: CHILD_ENV });
  running.add(proc);
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => { running.delete(proc); resolve({ code, sig }); }));
  const srv = { proc, log: [], port: 0, exited };
  srv.stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      try { await withTimeout(exited, 10000 * SCALE, 'wsio exit'); } catch { proc.kill('SIGKILL'); await exited; }
    }
    return exited;
  };
  srv.url = (p = '/echo', scheme = 'ws') => `${scheme}://127.0.0.1:${srv.port}${p}`;
  srv.rss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
    return Number(m[1]) * 1024;
  };
  let pending = '';
  const ready = new Promise((resolve, reject) => {
    proc.stderr.on('data', (chunk) => {
      pending += chunk.toString('utf8');
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        srv.log.push(line);
        const m = /listening on \S*:(\d+)/.exec(line);
        if (m && !srv.port) { srv.port = Number(m[1]); resolve(); }
      }
    });
    exited.then(({ code }) => reject(new Error(`wsio exited (${code}) before listening:\n${srv.log.join('\n')}`)));
  });
  try {
    await withTimeout(ready, START_TIMEOUT, `wsio 'listening on' (${args.join(' ')})`);
  } catch (e) {
    await srv.stop();
    throw e;
  }
  return srv;
}

// ---- ws client helpers ------------------------------------------------------------------------------------

function open(url, opts = {}) {
  const ws = new WebSocket(url, { maxPayload: 64 * MiB, ...opts });
  ws.upgradeHeaders = null;
  ws.on('upgrade', (res) => { ws.upgradeHeaders = res.headers; });
  const queue = [];
  const waiters = [];
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift()(m); else queue.push(m);
  });
  ws.on('error', () => {}); // the close event carries what the tests check
  const closedEarly = ws.closed.then(({ code, reason }) => { throw new Error(`closed ${code} ${reason} instead of a message`); });
  closedEarly.catch(() => {});
  ws.next = () => withTimeout(queue.length ? Promise.resolve(queue.shift())
    : Promise.race([new Promise((resolve) => waiters.push(resolve)), closedEarly]), IO_TIMEOUT, 'message');
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), IO_TIMEOUT, `open ${url}`);
}

function textOf(n) {
  const unit = 'wsio interop ';
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

// ---- raw client over net.Socket ------------------------------------------------------------------------------

function frame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true } = {}) {
  payload = Buffer.from(payload);
  const n = payload.length;
  let head;
  if (n < 126) { head = Buffer.from([0, n]); }
  else if (n < 65536) { head = Buffer.alloc(4); head[1] = 126; head.writeUInt16BE(n, 2); }
  else { head = Buffer.alloc(10); head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

const u16 = (code) => { const b = Buffer.alloc(2); b.writeUInt16BE(code); return b; };

class RawWS {
  static async connect(port, { path: p = '/echo', extensions } = {}) {
    const c = new RawWS();
    c.sock = net.connect(port, '127.0.0.1');
    c.buf = Buffer.alloc(0);
    c.ended = null; // 'eof' or 'reset' once the stream is over
    c.wake = null;
    c.sock.on('data', (d) => { c.buf = Buffer.concat([c.buf, d]); c.kick(); });
    c.sock.on('end', () => { c.ended = c.ended || 'eof'; c.kick(); });
    c.sock.on('error', (e) => { c.ended = e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`; c.kick(); });
    c.sock.on('close', () => { c.ended = c.ended || 'eof'; c.kick(); });
    await withTimeout(new Promise((resolve, reject) => { c.sock.once('connect', resolve); c.sock.once('error', reject); }),
      IO_TIMEOUT, 'tcp connect');
    const key = crypto.randomBytes(16).toString('base64');
    let req = `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    if (extensions) req += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
    c.sock.write(req + '\r\n');
    await c.until(() => c.buf.indexOf('\r\n\r\n') >= 0, 'handshake response');
    const end = c.buf.indexOf('\r\n\r\n');
    const lines = c.buf.subarray(0, end).toString('latin1').split('\r\n');
    c.buf = c.buf.subarray(end + 4);
    assert.match(lines[0], /^HTTP\/1\.1 101/);
    c.headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      c.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    assert.equal(c.headers['sec-websocket-accept'], want);
    return c;
  }

  kick() { if (this.wake) { const w = this.wake; this.wake = null; w(); } }

  async until(cond, what, ms = IO_TIMEOUT) {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (this.ended) throw new Error(`stream ${this.ended} while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, Math.min(left, 200)); });
    }
  }

  send(opcode, payload, opts) { this.sock.write(frame(opcode, payload, opts)); }

  // The next complete frame: { fin, rsv, opcode, payload }, or null once the stream is over.
  parse() {
    const b = this.buf;
    if (b.length < 2) return undefined;
    assert.equal(b[1] & 0x80, 0, 'server sent a masked frame');
    let n = b[1] & 0x7f, off = 2;
    if (n === 126) { if (b.length < 4) return undefined; n = b.readUInt16BE(2); off = 4; }
    else if (n === 127) { if (b.length < 10) return undefined; n = Number(b.readBigUInt64BE(2)); off = 10; }
    if (b.length < off + n) return undefined;
    this.buf = b.subarray(off + n);
    return { fin: !!(b[0] & 0x80), rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(off, off + n)) };
  }

  async recv(ms = IO_TIMEOUT) {
    let f;
    const deadline = Date.now() + ms;
    while ((f = this.parse()) === undefined) {
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, Math.min(left, 200)); });
    }
    return f;
  }

  // Reads to the server's close frame and returns its code (null for an empty payload); answers it and
  // checks that the server then ends the stream.
  async expectClose() {
    for (;;) {
      const f = await this.recv();
      if (f === null) throw new Error(`stream ${this.ended} without a close frame`);
      if (f.opcode !== 8) continue;
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
      if (!this.ended) this.send(8, f.payload.subarray(0, 2));
      const after = await this.recv();
      assert.equal(after, null, 'frame after the close frame');
      return code;
    }
  }

  destroy() { this.sock.destroy(); }
}

// ---- tests -----------------------------------------------------------------------------------------------------

describe('ws client', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  test('text and binary echo at frame-length boundaries, no compression', async () => {
    const ws = await open(srv.url(), { perMessageDeflate: false });
    for (const n of SIZES) {
      const t = textOf(n);
      ws.send(t);
      let m = await ws.next();
      assert.equal(m.isBinary, false, `text size ${n}`);
      assert.equal(m.data.length, n);
      assert.ok(m.data.equals(Buffer.from(t)), `text size ${n}`);
      const b = crypto.randomBytes(n);
      ws.send(b);
      m = await ws.next();
      assert.equal(m.isBinary, true, `binary size ${n}`);
      assert.ok(m.data.equals(b), `binary size ${n}`);
    }
    ws.close(1000);
    assert.equal((await ws.closed).code, 1000);
  });

  test('echo with permessage-deflate', async () => {
    const ws = await open(srv.url());
    assert.equal(ws.extensions, 'permessage-deflate');
    assert.match(ws.upgradeHeaders['sec-websocket-extensions'], /^permessage-deflate/);
    for (const n of SIZES) {
      const t = textOf(n);
      ws.send(t);
      let m = await ws.next();
      assert.equal(m.isBinary, false);
      assert.ok(m.data.equals(Buffer.from(t)), `text size ${n}`);
      const b = crypto.randomBytes(n);
      ws.send(b);
      m = await ws.next();
      assert.equal(m.isBinary, true);
      assert.ok(m.data.equals(b), `binary size ${n}`);
    }
    ws.close(1000);
    await ws.closed;
  });

  test('fragmented messages', async () => {
    for (const perMessageDeflate of [false, true]) {
      const ws = await open(srv.url(), { perMessageDeflate });
      const parts = ['héllo ', 'wörld ', '', '€'.repeat(1000), 'end'];
      parts.forEach((p, i) => ws.send(p, { binary: false, fin: i === parts.length - 1 }));
      let m = await ws.next();
      assert.equal(m.isBinary, false);
      assert.equal(m.data.toString(), parts.join(''));
      const bparts = [1, 125, 126, 70000, 0, 3].map((n) => crypto.randomBytes(n));
      bparts.forEach((p, i) => ws.send(p, { binary: true, fin: i === bparts.length - 1 }));
      m = await ws.next();
      assert.equal(m.isBinary, true);
      assert.ok(m.data.equals(Buffer.concat(bparts)));
      ws.close(1000);
      await ws.closed;
    }
  });

  test('ping and pong', async () => {
    const ws = await open(srv.url());
    for (const payload of [Buffer.alloc(0), Buffer.from('ping-1'), crypto.randomBytes(125)]) {
      const pong = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping(payload);
      const got = await withTimeout(pong, IO_TIMEOUT, 'pong');
      assert.ok(got.equals(payload));
    }
    ws.send('after pings');
    assert.equal((await ws.next()).data.toString(), 'after pings');
    ws.close(1000);
    await ws.closed;
  });

  test('normal close echoes code and reason', async () => {
    const ws = await open(srv.url());
    ws.close(1000, 'bye now');
    const { code, reason } = await withTimeout(ws.closed, IO_TIMEOUT, 'close');
    assert.equal(code, 1000);
    assert.equal(reason, 'bye now');
  });

  test('invalid UTF-8 in a text message closes with 1007', async () => {
    for (const parts of [[Buffer.from([0xff, 0xfe])], [Buffer.from('ok'), Buffer.from([0xed, 0xa0, 0x80])],
                         [Buffer.from([0xc3])]]) {
      const ws = await open(srv.url(), { perMessageDeflate: false });
      parts.forEach((p, i) => ws.send(p, { binary: false, fin: i === parts.length - 1 }));
      const { code } = await withTimeout(ws.closed, IO_TIMEOUT, 'close');
      assert.equal(code, 1007, parts.map((p) => p.toString('hex')).join(' '));
    }
  });

  test('raw: ping inside a fragmented message, and a code point split over frames', async () => {
    const c = await RawWS.connect(srv.port);
    try {
      c.send(9, 'are you there');
      assert.deepEqual(await c.recv(), { fin: true, rsv: 0, opcode: 10, payload: Buffer.from('are you there') });
      c.send(1, 'frag', { fin: false });
      c.send(9, 'mid');
      assert.deepEqual(await c.recv(), { fin: true, rsv: 0, opcode: 10, payload: Buffer.from('mid') });
      c.send(0, 'ment');
      assert.deepEqual(await c.recv(), { fin: true, rsv: 0, opcode: 1, payload: Buffer.from('fragment') });
      const data = Buffer.from('κόσμε €');
      for (let i = 0; i < data.length; i++) c.send(i ? 0 : 1, data.subarray(i, i + 1), { fin: i === data.length - 1 });
      assert.deepEqual(await c.recv(), { fin: true, rsv: 0, opcode: 1, payload: data });
      c.send(8, u16(1000));
      assert.equal(await c.expectClose(), 1000);
    } finally { c.destroy(); }
  });

  test('raw: protocol violations close with 1002', async () => {
    const cases = {
      'unmasked frame': [frame(1, 'hi', { mask: false })],
      'reserved opcode 3': [frame(3, 'x')],
      'reserved control opcode 11': [frame(11)],
      'RSV2 set': [frame(1, 'x', { rsv: 2 })],
      'RSV1 without deflate': [frame(1, 'x', { rsv: 4 })],
      'continuation first': [frame(0, 'x')],
      'new message inside a fragmented one': [frame(1, 'a', { fin: false }), frame(1, 'b')],
      'fragmented ping': [frame(9, 'p', { fin: false })],
      'ping over 125 bytes': [frame(9, Buffer.alloc(126, 0x70))],
    };
    for (const [name, frames] of Object.entries(cases)) {
      const c = await RawWS.connect(srv.port);
      try {
        c.sock.write(Buffer.concat(frames));
        assert.equal(await c.expectClose(), 1002, name);
      } finally { c.destroy(); }
    }
  });

  test('raw: bad close payloads close with 1002', async () => {
    const cases = { '1-byte payload': Buffer.from([3]), 'code 999': u16(999), 'code 1004': u16(1004),
      'code 1005': u16(1005), 'code 1006': u16(1006), 'code 1015': u16(1015), 'code 5000': u16(5000) };
    for (const [name, payload] of Object.entries(cases)) {
      const c = await RawWS.connect(srv.port);
      try {
        c.send(8, payload);
        assert.equal(await c.expectClose(), 1002, name);
      } finally { c.destroy(); }
    }
    const c = await RawWS.connect(srv.port);
    try {
      c.send(8, Buffer.concat([u16(1000), Buffer.from([0xff])]));
      assert.ok([1002, 1007].includes(await c.expectClose()), 'reason that is not UTF-8');
    } finally { c.destroy(); }
  });

  test('raw: valid close codes are echoed', async () => {
    for (const code of [1000, 1001, 1003, 1007, 1011, 3000, 4999]) {
      const c = await RawWS.connect(srv.port);
      try {
        c.send(8, Buffer.concat([u16(code), Buffer.from('why')]));
        assert.equal(await c.expectClose(), code);
      } finally { c.destroy(); }
    }
  });

  test('raw: compressed round trip', async () => {
    const c = await RawWS.connect(srv.port, { extensions: 'permessage-deflate; client_max_window_bits' });
    try {
      assert.match(c.headers['sec-websocket-extensions'] || '', /^permessage-deflate/);
      const msg = Buffer.from('the same words over and over '.repeat(2000));
      const wire = zlib.deflateRawSync(msg, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      assert.ok(wire.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff])));
      c.send(1, wire.subarray(0, -4), { rsv: 4 });
      const f = await c.recv();
      assert.equal(f.opcode, 1);
      assert.equal(f.rsv, 4, 'the echo of a large compressible message is not compressed');
      assert.ok(f.payload.length < msg.length / 10);
      const back = zlib.inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]),
        { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      assert.ok(back.equals(msg));
    } finally { c.destroy(); }
  });
});

describe('server options', () => {
  const servers = [];
  after(async () => { for (const s of servers) await s.stop(); });
  const start = async (...a) => { const s = await startServer(...a); servers.push(s); return s; };

  test('oversized message closes with 1009', async () => {
    const srv = await start('--max-message-size', '1000');
    let ws = await open(srv.url(), { perMessageDeflate: false });
    ws.send(Buffer.alloc(1000, 0x61));
    assert.equal((await ws.next()).data.length, 1000);
    ws.send(Buffer.alloc(1001, 0x61));
    assert.equal((await withTimeout(ws.closed, IO_TIMEOUT, 'close')).code, 1009);
    ws = await open(srv.url(), { perMessageDeflate: false }); // all fragments count
    ws.send(Buffer.alloc(600, 0x62), { fin: false });
    ws.send(Buffer.alloc(600, 0x62), { fin: true });
    assert.equal((await withTimeout(ws.closed, IO_TIMEOUT, 'close')).code, 1009);
    ws = await open(srv.url(), { perMessageDeflate: { threshold: 0 } }); // the inflated size counts
    ws.send('z'.repeat(5000));
    assert.equal((await withTimeout(ws.closed, IO_TIMEOUT, 'close')).code, 1009);
  });

  test('--deflate context: echo with context takeover', async () => {
    const srv = await start('--deflate', 'context');
    const ws = await open(srv.url());
    assert.equal(ws.extensions, 'permessage-deflate');
    assert.doesNotMatch(ws.upgradeHeaders['sec-websocket-extensions'], /server_no_context_takeover/);
    for (let i = 0; i < 5; i++) {
      const t = `compressible ${i % 2} `.repeat(10000);
      ws.send(t);
      assert.equal((await ws.next()).data.toString(), t);
    }
    const b = crypto.randomBytes(300000);
    ws.send(b);
    assert.ok((await ws.next()).data.equals(b));
    ws.close(1000);
    await ws.closed;
  });

  test('--deflate off: no extension in the response', async () => {
    const srv = await start('--deflate', 'off');
    const ws = await open(srv.url()); // ws offers permessage-deflate by default
    assert.equal(ws.extensions, '');
    assert.equal(ws.upgradeHeaders['sec-websocket-extensions'], undefined);
    ws.send('plain '.repeat(100));
    assert.equal((await ws.next()).data.toString(), 'plain '.repeat(100));
    ws.close(1000);
    await ws.closed;
  });

  test('TLS echo', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsio-tls-'));
    try {
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
      { stdio: 'ignore', timeout: 60000 });
      const srv = await start('--tls-cert', cert, '--tls-key', key);
      const ws = await open(srv.url('/echo', 'wss'), { ca: fs.readFileSync(cert) });
      for (const n of [0, 125, 126, 65536, MiB]) {
        const t = textOf(n);
        ws.send(t);
        assert.equal((await ws.next()).data.toString(), t);
        const b = crypto.randomBytes(n);
        ws.send(b);
        assert.ok((await ws.next()).data.equals(b));
      }
      ws.close(1000, 'tls bye');
      assert.deepEqual(await ws.closed, { code: 1000, reason: 'tls bye' });
      await assert.rejects(open(srv.url('/echo', 'ws'), { handshakeTimeout: 5000 })); // plain text is refused
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });

  test('a slow reader is closed (1008) or stops being read, RSS stays bounded, others still served', async (t) => {
    const limit = MiB;
    const srv = await start('--send-buffer-limit', String(limit));
    const startRss = srv.rss();
    const highWater = startRss + 2 * limit + 16 * MiB;
    const slow = await RawWS.connect(srv.port);
    const other = await open(srv.url());
    try {
      slow.sock.pause(); // never read
      const f = frame(2, crypto.randomBytes(64 * 1024));
      let sent = 0, frames = 0, peak = startRss, blocked = false, echoes = 0;
      const deadline = Date.now() + 60000;
      let stuckSince = 0;
      while (sent < 64 * MiB && Date.now() < deadline && !slow.ended) {
        if (slow.sock.writableLength < 4 * MiB) {
          slow.sock.write(f);
          sent += f.length;
          frames++;
          stuckSince = 0;
        } else {
          stuckSince = stuckSince || Date.now();
          if (Date.now() - stuckSince > 2000) { blocked = true; break; } // the server stopped reading us
          await new Promise((r) => setTimeout(r, 20));
        }
        peak = Math.max(peak, srv.rss());
        assert.ok(peak < highWater, `RSS ${peak} over the high-water mark ${highWater} after ${sent >> 20} MiB`);
        if (frames % 64 === 0 || blocked) {
          other.send('still here');
          assert.equal((await other.next()).data.toString(), 'still here');
          echoes++;
        }
      }
      for (let i = 0; i < 10; i++) { peak = Math.max(peak, srv.rss()); await new Promise((r) => setTimeout(r, 50)); }
      assert.ok(peak < highWater);
      other.send('still here');
      assert.equal((await other.next()).data.toString(), 'still here');
      assert.ok(echoes > 0);
      // Drain what the server queued: the stream must end with close 1008 (or be cut after the server
      // logged the 1008: unread input makes the kernel reset), or the server only stopped reading.
      slow.sock.resume();
      let code = null, ended = 'open';
      try {
        for (;;) {
          const fr = await slow.recv(5000);
          if (fr === null) { ended = slow.ended; break; }
          if (fr.opcode === 8) { code = fr.payload.length >= 2 ? fr.payload.readUInt16BE(0) : null; ended = 'close'; break; }
        }
      } catch { ended = 'open'; }
      const logged = srv.log.some((l) => l.includes('1008'));
      t.diagnostic(`slow reader: ended ${ended}, code ${code}, blocked ${blocked}, sent ${sent >> 20} MiB, RSS ${startRss >> 20} -> peak ${peak >> 20} MiB`);
      assert.ok(code === 1008 || (['eof', 'reset'].includes(ended) && logged) || (ended === 'open' && blocked),
        `slow reader: ended ${ended}, code ${code}, blocked ${blocked}, sent ${sent >> 20} MiB, log:\n${srv.log.slice(-5).join('\n')}`);
      assert.equal(srv.proc.exitCode, null, 'wsio exited');
    } finally {
      slow.destroy();
      other.terminate();
    }
  });

  test('SIGTERM: clients see 1001, the process exits 0', async () => {
    const srv = await start();
    const clients = await Promise.all([1, 2, 3].map(() => open(srv.url())));
    for (const c of clients) { c.send('hi'); assert.equal((await c.next()).data.toString(), 'hi'); }
    srv.proc.kill('SIGTERM');
    for (const c of clients) assert.equal((await withTimeout(c.closed, IO_TIMEOUT, 'close')).code, 1001);
    const { code, sig } = await withTimeout(srv.exited, 10000 * SCALE, 'wsio exit');
    assert.equal(sig, null);
    assert.equal(code, 0);
  });

  test('GET /healthz answers 200 ok', async () => {
    const srv = await start();
    const { status, body } = await withTimeout(new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${srv.port}/healthz`, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: b }));
      }).on('error', reject);
    }), IO_TIMEOUT, 'healthz');
    assert.equal(status, 200);
    assert.equal(body.trim(), 'ok');
  });

  test('a bad flag exits 2 with a message', () => {
    for (const args of [['--no-such-flag'], ['--deflate', 'sometimes'], ['--port', '70000'],
      ['--max-message-size', 'lots'], ['--port'], ['--log-level', 'loud'], ['stray-argument']]) {
      const r = spawnSync(WSIO, args, { timeout: 10000 * SCALE, env: CHILD_ENV });
      assert.equal(r.status, 2, args.join(' '));
      assert.ok(r.stderr.toString().trim().length > 0, `no message for ${args.join(' ')}`);
    }
  });
});
