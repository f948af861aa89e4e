// Interop: the chats people open in a browser, against the wsio program. Headless Debian chromium (driven by
// playwright-core from tests/node_modules) opens two pages of
//   (a) the demo page wsio serves at / with no web root and its built-in routes, and
//   (b) examples/vue-chat (Vue 3 + Vite + npm socket.io-client), built into dist/ and served by wsio with
//       --web-root, and the same app from Vite's dev server, which proxies /socket.io to wsio;
// and in each the two people set nicknames, see each other online, chat, join a room and talk there.
//
// Usage: WSIO_BIN=/path/to/wsio node --test --test-reporter=spec tests/interop/test_browser_chat.mjs
// BROWSER_CHAT=demo or BROWSER_CHAT=vue runs only that part (ctest registers each as its own case).
// Screenshots (browser_chat_*.png) are left in the working directory (ctest runs it in the build folder).
// The Vue app is built when dist/ is missing or older than its sources (npm ci first when node_modules is
// missing), so a second run spends no time on it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Child, SCALE, Wsio, freePort } from './program_harness.mjs';

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VUE_APP = path.join(SOURCE, 'examples/vue-chat');
const WSIO = process.env.WSIO_BIN || path.join(SOURCE, 'build/wsio');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ONLY = process.env.BROWSER_CHAT || '';
const part = name => ({ skip: ONLY !== '' && ONLY !== name ? `BROWSER_CHAT=${ONLY}` : false });
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// wsio on a free port of 127.0.0.1; resolves with its URL once it serves. wsio logs "listening" before its
// event loop runs and only then handles SIGTERM, so an answered request is what makes a stop clean.
async function startWsio(args = []) {
  const w = await new Wsio({ args, bin: WSIO }).start();
  const res = await fetch(`${w.url}/`);
  assert.equal(res.status, 200, `GET / on wsio ${args.join(' ')}`);
  assert.match(await res.text(), /<!doctype html>/i);
  return w;
}

// The newest modification time under p (a file or a folder, recursively).
function newest(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const e of fs.readdirSync(p)) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 100000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} in ${cwd} failed (${r.error || r.status}):\n${r.stdout}\n${r.stderr}`);
}

// examples/vue-chat/dist, built only when something it is made from is newer.
function buildVueApp() {
  // The same stamp as scripts/deps: node_modules is as new as the lock when it is newer than both files.
  const stamp = path.join(VUE_APP, 'node_modules/.wsio-stamp');
  const pinned = ['package.json', 'package-lock.json'].map(f => fs.statSync(path.join(VUE_APP, f)).mtimeMs);
  if (!fs.existsSync(stamp) || fs.statSync(stamp).mtimeMs < Math.max(...pinned)) {
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], VUE_APP);
    fs.writeFileSync(stamp, '');
  }
  const index = path.join(VUE_APP, 'dist/index.html');
  const inputs = ['src', 'public', 'index.html', 'vite.config.js', 'package-lock.json'].map(f => newest(path.join(VUE_APP, f)));
  if (!fs.existsSync(index) || fs.statSync(index).mtimeMs <= Math.max(...inputs))
    run('npm', ['run', 'build', '--silent'], VUE_APP);
  assert.ok(fs.existsSync(index), 'the build wrote dist/index.html');
}

// ---- the browser side ---------------------------------------------------------------------------------------

// One chromium per suite, closed before its wsio stops: the browser keeps idle keep-alive connections open
// after its pages close, and a stopping wsio waits a few seconds for such peers to hang up.
let context, profile;
const pageErrors = [];

async function launchBrowser() {
  assert.ok(fs.existsSync(WSIO), `no wsio program at ${WSIO} (set WSIO_BIN)`);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsio-chromium-'));
  // A persistent context is how a fresh --user-data-dir is given to chromium through playwright.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000, viewport: { width: 1000, height: 640 },
  });
}

async function closeBrowser() {
  await context?.close();
  context = undefined;
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  profile = undefined;
}

async function openPage(url) {
  const page = await context.newPage();
  page.on('pageerror', e => pageErrors.push(`${url}: ${e}`));
  page.on('console', m => { if (m.type() === 'error') pageErrors.push(`${url}: console: ${m.text()} (${m.location().url})`); });
  page.on('response', r => { if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.url()}`); });
  await page.goto(url);
  // Both pages show "connected (polling)" first and "connected (websocket)" after the upgrade.
  await page.locator('#status', { hasText: 'connected (websocket)' }).waitFor({ timeout: 10000 * SCALE });
  return page;
}

// The names in a page's online list, sorted, once they equal `want`.
async function onlineIs(page, want) {
  const names = page.locator('#online li');
  await assert.doesNotReject(
    page.waitForFunction(w => [...document.querySelectorAll('#online li')].map(li => li.textContent).sort().join() === w,
      want.join(), { timeout: 10000 * SCALE }),
    `online list ${want}`);
  assert.deepEqual((await names.allTextContents()).sort(), want);
  assert.equal(await page.locator('#count').textContent(), `(${want.length})`);
}

// Types text into input #id and sends it with the form's button, or with Enter when enter is set.
async function say(page, id, text, enter = false) {
  await page.bringToFront();
  await page.fill(`#${id}`, text);
  if (enter) await page.press(`#${id}`, 'Enter');
  else await page.click(`form:has(#${id}) button`);
}

const logOf = page => page.locator('#log li').allTextContents();
const shows = (page, text) => page.locator('#log li', { hasText: text }).waitFor({ timeout: 10000 * SCALE });

// Acting on a page brings it to the front, as a person would: a click in a background tab is slow to
// complete (rendering there is throttled).
async function setNick(page, name) {
  await page.bringToFront();
  await page.fill('#nick', name);
  await page.click('#nickf button');
}

async function joinRoom(page, room) {
  await page.bringToFront();
  await page.fill('#room', room);
  await page.click('#roombtn');
  await page.locator('#inroom', { hasText: `In room: ${room}` }).waitFor({ timeout: 10000 * SCALE });
}

// Two people on one chat page: the same exchange for the demo and for the Vue app, which speak the same
// events and show them the same way.
async function twoPeopleChat(url, shot) {
  const errorsBefore = pageErrors.length;
  const alice = await openPage(url);
  const bob = await openPage(url);

  await setNick(alice, 'alice');
  await setNick(bob, 'bob');
  await onlineIs(alice, ['alice', 'bob']);
  await onlineIs(bob, ['alice', 'bob']);

  await say(alice, 'msg', 'hello from alice ✓');
  await shows(bob, 'alice: hello from alice ✓');
  await say(bob, 'msg', 'hi alice', true);
  await shows(alice, 'bob: hi alice');

  await joinRoom(alice, 'lobby');
  await joinRoom(bob, 'lobby');
  await say(alice, 'roommsg', 'anyone in the lobby?');
  await shows(bob, '[lobby] alice: anyone in the lobby?');
  await say(bob, 'roommsg', 'me', true);
  await shows(alice, '[lobby] bob: me');

  // Everything each one saw, in order: the sender gets no copy of its own messages from the server.
  assert.deepEqual(await logOf(alice), ['me: hello from alice ✓', 'bob: hi alice', 'joined lobby',
    '[lobby] me: anyone in the lobby?', '[lobby] bob: me']);
  assert.deepEqual(await logOf(bob), ['alice: hello from alice ✓', 'me: hi alice', 'joined lobby',
    '[lobby] alice: anyone in the lobby?', '[lobby] me: me']);

  await alice.bringToFront();
  await alice.screenshot({ path: `${shot}_alice.png` });
  await bob.bringToFront();
  await bob.screenshot({ path: `${shot}_bob.png` });
  for (const who of ['alice', 'bob'])
    assert.ok(fs.statSync(`${shot}_${who}.png`).size > 1000, `a screenshot of ${who}'s page was written`);

  // Leaving: closing bob's tab takes bob off alice's list.
  await bob.close();
  await onlineIs(alice, ['alice']);
  await alice.close();
  assert.deepEqual(pageErrors.slice(errorsBefore), []);
}

describe('the demo chat page', part('demo'), () => {
  let wsio;
  before(async () => {
    await launchBrowser();
    wsio = await startWsio();
  });
  after(async () => {
    await closeBrowser();
    await wsio?.stopClean();
  });

  it('two people chat, see each other online and talk in a room', async () => {
    await twoPeopleChat(wsio.url + '/', 'browser_chat_demo');
  });
});

describe('examples/vue-chat', part('vue'), () => {
  let wsio, vite;
  before(async () => {
    buildVueApp();
    await launchBrowser();
    wsio = await startWsio(['--web-root', path.join(VUE_APP, 'dist')]);
  });
  after(async () => {
    await closeBrowser();
    if (vite) await vite.stop();
    await wsio?.stopClean();
  });

  it('built into dist/ and served by wsio', async () => {
    const res = await fetch(wsio.url + '/');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<div id="app">/);
    await twoPeopleChat(wsio.url + '/', 'browser_chat_vue');
  });

  it('from the Vite dev server, which proxies /socket.io (polling and WebSocket) to wsio', async () => {
    const port = await freePort();
    vite = new Child(process.execPath, [path.join(VUE_APP, 'node_modules/vite/bin/vite.js'),
      '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--clearScreen', 'false'],
    { cwd: VUE_APP, env: { CHAT_SERVER: wsio.url }, stdout: true }).spawn();
    await vite.waitLog(/Local:\s+http:\/\/127\.0\.0\.1:\d+/, 20000);
    await twoPeopleChat(`http://127.0.0.1:${port}/`, 'browser_chat_vite');
  });
});
