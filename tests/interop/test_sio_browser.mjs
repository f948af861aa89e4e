// Interop: a real browser (Debian's headless chromium, driven by playwright-core) loads sio_server's chat
// page, which loads the socket.io client that the server itself serves at /socket.io/socket.io.js. Two
// pages chat: what one sends, the other shows. Then the msgpack bundle the server also serves
// (socket.io.msgpack.min.js) talks to a server started with --parser msgpack. Run with `node --test` from
// the build folder, where the screenshot (sio_browser.png) is left.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { SioServer, SCALE, eventually } from './sio_harness.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A started server and a chromium of its own for one describe block, both stopped after it.
function withBrowser(serverArgs) {
  const env = { server: new SioServer(serverArgs) };
  let profile;
  before(async () => {
    env.url = await env.server.start();
    profile = mkdtempSync(join(tmpdir(), 'wsio-chromium-'));
    // A persistent context is how a fresh --user-data-dir is given to chromium through playwright.
    env.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000,
    });
  });
  after(async () => {
    await env.context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await env.server.stopClean();
  });
  return env;
}

describe('chat page in headless chromium', () => {
  const env = withBrowser([]);
  const server = env.server;
  let url, context;
  before(() => { ({ url, context } = env); });
  const pageErrors = [];

  it('serves the socket.io client bundle', async () => {
    const res = await fetch(`${url}/socket.io/socket.io.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /javascript/);
    const body = await res.text();
    assert.match(body, /Socket\.IO v4\.8\.1/);
    const again = await fetch(`${url}/socket.io/socket.io.js`, { headers: { 'If-None-Match': res.headers.get('etag') } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${url}/socket.io/socket.io.min.js`)).status, 200);
    assert.equal((await fetch(`${url}/socket.io/package.json`)).status, 404); // only the bundle's files
  });

  it('delivers a message typed in one page to the other', async () => {
    const open = async () => {
      const page = await context.newPage();
      page.on('pageerror', e => pageErrors.push(String(e)));
      await page.goto(url + '/');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('connected '),
        null, { timeout: 10000 * SCALE });
      return page;
    };
    const [alice, bob] = [await open(), await open()];
    // The browser client starts on polling and moves to WebSocket.
    for (const page of [alice, bob])
      await page.waitForFunction(() => socket.io.engine.transport.name === 'websocket', null, { timeout: 10000 * SCALE });
    const ids = await Promise.all([alice, bob].map(p => p.evaluate(() => socket.id)));
    for (const id of ids) await server.waitLine(new RegExp(`^connect / ${id} polling$`));

    await alice.fill('#m', 'hello from alice ✓');
    await alice.click('button');
    await bob.locator('#log li.in', { hasText: 'hello from alice ✓' }).waitFor({ timeout: 10000 * SCALE });
    assert.deepEqual(await alice.locator('#log li').allTextContents(), ['me: hello from alice ✓']);
    assert.deepEqual(await bob.locator('#log li').allTextContents(), ['hello from alice ✓']);

    await bob.fill('#m', 'hi alice');
    await bob.press('#m', 'Enter');
    await alice.locator('#log li.in', { hasText: 'hi alice' }).waitFor({ timeout: 10000 * SCALE });

    await bob.screenshot({ path: 'sio_browser.png' });
    assert.ok(statSync('sio_browser.png').size > 1000, 'a screenshot was written');
    assert.deepEqual(pageErrors, []);

    // Closing a tab is a transport close on the server.
    await bob.close();
    await server.waitLine(new RegExp(`^disconnect / ${ids[1]} transport close$`), 10000);
  });

  it('reads long-polling responses the server compressed', async () => {
    const page = await context.newPage();
    page.on('pageerror', e => pageErrors.push(String(e)));
    const encodings = [];
    page.on('response', async r => {
      if (r.url().includes('transport=polling') && r.request().method() === 'GET')
        encodings.push((await r.allHeaders())['content-encoding'] || 'identity');
    });
    await page.goto(url + '/healthz');
    await page.addScriptTag({ url: '/socket.io/socket.io.js' });
    const echoed = await page.evaluate(async () => {
      const s = io({ transports: ['polling'], reconnection: false });
      await new Promise((resolve, reject) => { s.on('connect', resolve); s.on('connect_error', reject); });
      const big = 'compressible '.repeat(500);
      const got = new Promise(resolve => s.once('echo', (...a) => resolve(a)));
      s.emit('echo', big, 'second');
      const a = await got;
      s.disconnect();
      return a[0] === big && a[1] === 'second';
    });
    assert.equal(echoed, true);
    // The response events come in on their own: wait for the GET that carried the echo.
    await eventually(() => assert.ok(encodings.includes('gzip'), `a GET came back gzip-encoded: ${encodings}`));
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});

describe('the msgpack bundle in headless chromium', () => {
  const env = withBrowser(['--parser', 'msgpack']);
  const server = env.server;
  let url, context;
  before(() => { ({ url, context } = env); });

  it('exchanges events, acks and binaries over polling, then over WebSocket', async () => {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    await page.goto(url + '/healthz'); // any page of the server's origin
    await page.addScriptTag({ url: '/socket.io/socket.io.msgpack.min.js' });
    const got = await page.evaluate(async () => {
      const s = io({ reconnection: false });
      await new Promise((resolve, reject) => { s.on('connect', resolve); s.on('connect_error', reject); });
      const ask = () => new Promise(resolve =>
        s.emit('ack-me', 'h\u00e9', new Uint8Array([1, 2, 255]).buffer, { d: new Date(0), n: [1.5] }, (...a) => resolve(a)));
      const show = a => [a[0], a[1] instanceof ArrayBuffer, Array.from(new Uint8Array(a[1])), a[2]];
      const first = show(await ask());
      await new Promise(resolve => (s.io.engine.transport.name === 'websocket' ? resolve() : s.io.engine.once('upgrade', resolve)));
      const second = show(await ask());
      const echoed = new Promise(resolve => s.once('echo', (...a) => resolve(a)));
      s.emit('echo', 'to myself', new Uint8Array([9]).buffer);
      const e = await echoed;
      const out = { id: s.id, first, second, transport: s.io.engine.transport.name,
                    echo: [e[0], Array.from(new Uint8Array(e[1]))] };
      s.disconnect();
      return out;
    });
    const want = ['h\u00e9', true, [1, 2, 255], { d: '1970-01-01T00:00:00.000Z', n: [1.5] }];
    assert.deepEqual(got.first, want);
    assert.equal(got.transport, 'websocket');
    assert.deepEqual(got.second, want);
    assert.deepEqual(got.echo, ['to myself', [9]]);
    await server.waitLine(new RegExp(`^connect / ${got.id} polling$`)); // joined over polling, then upgraded
    assert.deepEqual(errors, []);
  });
});
