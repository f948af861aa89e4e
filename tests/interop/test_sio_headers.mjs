// Interop: engine.io's initial_headers and headers events (wsio_io_on_headers). The same raw requests go to
// sio_server --headers 1 and to a Node socket.io 4.8 server whose io.engine adds the same headers; each
// response must carry the same added headers on both: the session's first response (polling handshake, or
// a WebSocket without sid) the initial ones, every later polling answer (GET and POST) and upgrade's 101
// the others, error answers none. Then what only wsio checks: the headers it must refuse never reach the
// wire (framing headers, CR LF in a value, a bad name).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import WebSocket from 'ws';
import { SioServer, within, PARSER } from './sio_harness.mjs';

async function poll(base, query, init = {}) {
  const res = await fetch(`${base}/socket.io/?EIO=4&transport=polling${query}`, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

function wsOpen(base, query) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket${query}`);
  return within(new Promise((resolve, reject) => {
    ws.once('upgrade', res => resolve({ ws, headers: res.headers, raw: res.rawHeaders }));
    ws.once('error', reject);
  }), 5000, 'WebSocket upgrade');
}

// What each response added: the cookie the session's first response sets, and X-Every.
const added = h => ({ first: /first=1/.test([h.get?.('set-cookie') ?? h['set-cookie'] ?? ''].flat().join()),
                      every: (h.get?.('x-every') ?? h['x-every']) ?? null });

async function observe(base) {
  const seen = {};
  const hs = await poll(base, '');
  seen.handshake = added(hs.headers);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  const post = await poll(base, `&sid=${sid}`, { method: 'POST', body: '40', headers: { 'Content-Type': 'text/plain' } });
  seen.post = { status: post.status, ...added(post.headers) };
  const get = await poll(base, `&sid=${sid}`);
  seen.get = { status: get.status, ...added(get.headers) };
  const bad = await poll(base, '&sid=nosuchsession00000');
  seen.error = { status: bad.status, ...added(bad.headers) };
  const up = await wsOpen(base, `&sid=${sid}`);
  seen.upgrade = added(up.headers);
  up.ws.terminate();
  const direct = await wsOpen(base, '');
  seen.direct = added(direct.headers);
  direct.ws.terminate();
  return { seen, raw: { hs, post, get, up, direct } };
}

describe(`initial_headers and headers${PARSER ? ` (${PARSER} parser)` : ''}`, () => {
  const server = new SioServer(['--headers', '1']);
  let url, ref, refUrl, http;

  before(async () => {
    url = await server.start();
    http = createServer();
    ref = new Server(http);
    ref.engine.on('initial_headers', headers => { headers['set-cookie'] = 'first=1; Path=/'; });
    ref.engine.on('headers', headers => { headers['x-every'] = 'yes'; });
    await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
    refUrl = `http://127.0.0.1:${http.address().port}`;
  });
  after(async () => {
    ref.close();
    await server.stopClean();
  });

  it('the same headers on the same responses as Node socket.io', async () => {
    const theirs = (await observe(refUrl)).seen;
    const { seen: ours, raw } = await observe(url);
    // The reference, spelled out, so that both agreeing on nothing cannot pass.
    assert.deepEqual(theirs, {
      handshake: { first: true, every: 'yes' },
      post: { status: 200, first: false, every: 'yes' },
      get: { status: 200, first: false, every: 'yes' },
      error: { status: 400, first: false, every: null },
      upgrade: { first: false, every: 'yes' },
      direct: { first: true, every: 'yes' },
    });
    assert.deepEqual(ours, theirs);
    // wsio refused the three it must (and nothing of them reached the wire).
    for (const h of [raw.hs.headers, raw.post.headers, raw.get.headers]) {
      assert.equal(h.get('x-refused'), '3');
      assert.equal(h.get('x-injected'), null);
      assert.equal(h.get('x-bad'), null);
    }
    for (const r of [raw.up, raw.direct]) {
      assert.equal(r.headers['x-refused'], '3');
      assert.equal(r.headers['x-injected'], undefined);
      assert.equal(r.raw.filter(x => /^content-length$/i.test(x)).length, 0);
    }
    assert.equal(raw.hs.headers.get('content-length'), String(Buffer.byteLength(raw.hs.body)));
  });
});
