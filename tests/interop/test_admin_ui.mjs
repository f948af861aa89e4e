// Interop: the Socket.IO Admin UI (npm @socket.io/admin-ui 0.5.1) against sio_server instrumented with
// wsio_io_instrument (--admin-ui). The same scenario runs against a Node socket.io 4.8.4 server with
// instrument() and the same options, started here, and the admin events both send must match in names and
// shapes (values that must differ, such as ids, dates and pids, are checked for their form only). Then the
// actions (emit, join, leave, _disconnect), basic auth with a bcrypt hash, readonly mode, hostile action
// arguments, and the real dashboard (its static build) in headless chromium. With SIO_WORKERS set the
// server runs that many workers (sio_server_workers.sh): every worker reports as a server of its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { io as ioc } from 'socket.io-client';
import { Server } from 'socket.io';
import { instrument } from '@socket.io/admin-ui';
import bcrypt from 'bcryptjs';
import { SioServer, SCALE, quiet, within, eventually, waitEvent, ackOf } from './sio_harness.mjs';

const WORKERS = Number(process.env.SIO_WORKERS) || 0;
const require = createRequire(import.meta.url);
const UI_DIST = join(dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const PASSWORD = 's3cret';
// bcryptjs, the library instrument() checks with; cost 4 keeps the tests quick.
const HASH = bcrypt.hashSync(PASSWORD, 4);

// ---- helpers ----

function connect(url, nsp = '/', opts = {}) {
  const s = ioc(url + nsp, { forceNew: true, reconnection: false, ...opts });
  const log = [];
  s.onAny((ev, ...args) => log.push({ ev, args }));
  return { s, log };
}

async function connected(c) {
  if (!c.s.connected) await waitEvent(c.s, 'connect');
  return c;
}

async function upgraded(c) {
  await eventually(() => assert.equal(c.s.io.engine.transport.name, 'websocket'));
}

// Waits until the log has not grown for ms (the server has said what it had to say), then takes it.
async function settle(log, ms = 300) {
  let n = -1;
  while (n !== log.length) {
    n = log.length;
    await quiet(ms * SCALE);
  }
  return log.splice(0).filter(e => e.ev !== 'server_stats');
}

// An admin event as a comparable value: known socket ids become their role, dates "<date>", a client id
// its form, a handshake the names and types of its fields (its headers' names too).
function shaper(known) {
  const typeOf = v => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  const handshake = h => {
    const out = {};
    for (const k of Object.keys(h).sort()) {
      if (k === 'headers' || k === 'query') out[k] = Object.fromEntries(Object.keys(h[k]).sort().map(n => [n, typeOf(h[k][n])]));
      else out[k] = typeOf(h[k]);
    }
    return out;
  };
  const shape = v => {
    if (typeof v === 'string') return known.get(v) ?? (ISO.test(v) ? '<date>' : v);
    if (Array.isArray(v)) return v.map(shape);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v).sort()) {
        if (k === 'handshake') o[k] = handshake(v[k]);
        else if (k === 'clientId') {
          assert.match(v[k], /^[\w-]{12}$/, 'clientId: the first 12 characters of the Engine.IO id');
          o[k] = '<clientId>';
        } else o[k] = shape(v[k]);
      }
      return o;
    }
    return v;
  };
  return events => events.map(({ ev, args }) => {
    let a = shape(args);
    if (ev === 'all_sockets') a = [a[0].map(x => JSON.stringify(x)).sort()];
    return JSON.stringify([ev, ...a]);
  }).sort();
}

function checkStats(s) {
  assert.deepEqual(Object.keys(s), ['serverId', 'hostname', 'pid', 'uptime', 'clientsCount', 'pollingClientsCount',
    'aggregatedEvents', 'namespaces']);
  assert.equal(typeof s.serverId, 'string');
  assert.equal(typeof s.hostname, 'string');
  assert.ok(Number.isInteger(s.pid) && s.pid > 0);
  assert.ok(typeof s.uptime === 'number' && s.uptime >= 0);
  assert.ok(Number.isInteger(s.clientsCount) && Number.isInteger(s.pollingClientsCount));
  for (const e of s.aggregatedEvents) {
    assert.ok(Number.isInteger(e.timestamp) && e.timestamp % 1000 === 0, 'timestamps are whole seconds');
    assert.ok(['rawConnection', 'rawDisconnection', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut'].includes(e.type));
    assert.ok(Number.isInteger(e.count) && e.count > 0);
    assert.equal('subType' in e, e.type === 'rawDisconnection');
  }
  for (const n of s.namespaces) {
    assert.deepEqual(Object.keys(n), ['name', 'socketsCount']);
    assert.ok(Number.isInteger(n.socketsCount));
  }
}

// The Node reference: socket.io 4.8.4 with instrument(), and the handlers of sio_server's "/" that the
// scenario uses; sio_server's other static namespaces exist there too, so both list the same ones.
async function startNode(opts) {
  const http = createServer();
  const io = new Server(http);
  instrument(io, { auth: false, mode: 'development', ...opts });
  for (const name of ['/nodata', '/use']) io.of(name);
  io.on('connection', s => {
    s.emit('welcome', { id: s.id });
    s.on('join', (room, ack) => { s.join(room); ack?.([...s.rooms]); });
    s.on('leave', (room, ack) => { s.leave(room); ack?.([...s.rooms]); });
    s.on('echo', (...args) => { if (typeof args[args.length - 1] === 'function') args.pop(); s.emit('echo', ...args); });
  });
  await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${http.address().port}`, close: () => new Promise(r => { io.close(); r(); }) };
}

// One scenario, the same against both servers: the steps' admin events, shaped.
async function scenario(url, auth) {
  const known = new Map();
  const shape = shaper(known);
  const steps = {};
  const admin = connect(url, '/admin', { auth });
  await connected(admin);
  known.set(admin.s.id, '<admin>');
  await eventually(() => assert.ok(admin.log.some(e => e.ev === 'all_sockets')));
  await upgraded(admin);
  steps.adminConnects = shape(await settle(admin.log));

  const c1 = await connected(connect(url));
  known.set(c1.s.id, '<c1>');
  await upgraded(c1);
  steps.clientConnects = shape(await settle(admin.log));

  await ackOf(c1.s, 'join', 'r1');
  steps.join = shape(await settle(admin.log));

  const echoed = waitEvent(c1.s, 'echo');
  c1.s.emit('echo', 1, 'two', { three: [3] });
  await echoed;
  steps.events = shape(await settle(admin.log));

  await ackOf(c1.s, 'leave', 'r1');
  steps.leave = shape(await settle(admin.log));

  await ackOf(c1.s, 'join', 'r2');
  await settle(admin.log);
  c1.s.disconnect();
  steps.clientDisconnects = shape(await settle(admin.log));

  const [stats] = await waitEvent(admin.s, 'server_stats', 5000);
  checkStats(stats);
  admin.s.disconnect();
  return { steps, stats };
}

// ---- parity ----

describe('admin events: sio_server and Node socket.io with instrument()', () => {
  const server = new SioServer(['--admin-ui', 'development']);
  let url, node;
  before(async () => {
    url = await server.start();
    node = await startNode({});
  });
  after(async () => {
    await node?.close();
    await server.stopClean();
  });

  it('sends the same events with the same shapes, step by step', async () => {
    const ours = await scenario(url);
    const theirs = await scenario(node.url);
    if (process.env.ADMIN_UI_DEBUG) console.log(JSON.stringify({ ours, theirs }, null, 1));
    for (const step of Object.keys(theirs.steps)) {
      assert.ok(theirs.steps[step].length > 0, `the reference says something at ${step}`);
      assert.deepEqual(ours.steps[step], theirs.steps[step], `admin events at step ${step}`);
    }
    // Both list the same namespaces.
    const names = s => s.namespaces.map(n => n.name).sort();
    assert.deepEqual(names(ours.stats), names(theirs.stats));
  });

  it('reports the disconnect before the rooms left, as instrument() does', async () => {
    const admin = await connected(connect(url, '/admin'));
    const c = await connected(connect(url));
    await ackOf(c.s, 'join', 'rx');
    await settle(admin.log);
    c.s.disconnect();
    const evs = (await settle(admin.log)).map(e => e.ev);
    assert.equal(evs[0], 'socket_disconnected');
    assert.deepEqual(evs.slice(1), ['room_left', 'room_left']);
    admin.s.disconnect();
  });

  it('counts connections, disconnections and traffic in server_stats', async () => {
    const admin = await connected(connect(url, '/admin'));
    const c = await connected(connect(url));
    await ackOf(c.s, 'join', 'r');
    c.s.disconnect();
    const seen = new Set();
    let total = null;
    // Every server's stats (with workers, they come together: each is listened to).
    admin.s.on('server_stats', s => {
      checkStats(s);
      for (const e of s.aggregatedEvents) seen.add(e.type + (e.subType ? ':' + e.subType : ''));
      total = s;
    });
    await eventually(() => {
      for (const t of ['rawConnection', 'rawDisconnection:transport close', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut'])
        assert.ok(seen.has(t), `${t} in ${[...seen]}`);
    }, 10000);
    if (!WORKERS) {
      assert.equal(total.clientsCount, 1, 'the dashboard itself');
      assert.equal(total.namespaces.find(n => n.name === '/admin').socketsCount, 1);
    }
    admin.s.disconnect();
  });

  it('reports every worker as a server of its own', { skip: !WORKERS }, async () => {
    const admin = await connected(connect(url, '/admin'));
    const ids = new Set();
    // The workers' stats come together (their timers are started alike): every one is listened to.
    admin.s.on('server_stats', s => { checkStats(s); ids.add(s.serverId); });
    await eventually(() => assert.equal(ids.size, WORKERS), 10000);
    for (const id of ids) assert.match(id, /#\d+#\d+$/, 'host#pid#index');
    admin.s.disconnect();
  });
});

// ---- actions ----

describe('admin actions reach the sockets', () => {
  const server = new SioServer(['--admin-ui', 'development']);
  let url;
  before(async () => { url = await server.start(); });
  after(() => server.stopClean());

  it('join, emit to a room, leave, emit with binaries, _disconnect', async () => {
    const admin = await connected(connect(url, '/admin'));
    const c1 = await connected(connect(url));
    const c2 = await connected(connect(url));
    await settle(admin.log);

    admin.s.emit('join', '/', 'r9', c1.s.id);
    await eventually(() => assert.ok(admin.log.some(e => e.ev === 'room_joined' && e.args[1] === 'r9')));
    const got1 = waitEvent(c1.s, 'ping');
    let c2got = false;
    c2.s.on('ping', () => { c2got = true; });
    admin.s.emit('emit', '/', 'r9', 'ping', 1, { a: 'b' });
    assert.deepEqual(await got1, [1, { a: 'b' }]);

    // Several sockets by a filter array; binaries go through as they came.
    admin.s.emit('join', '/', 'both', [c1.s.id, c2.s.id]);
    await eventually(() => assert.equal(admin.log.filter(e => e.ev === 'room_joined' && e.args[1] === 'both').length, 2));
    const bin = waitEvent(c2.s, 'bin');
    admin.s.emit('emit', '/', 'both', 'bin', Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
    const [b, nested] = await bin;
    assert.deepEqual([...b], [1, 2, 3]);
    assert.deepEqual([...nested.nested], [4]);

    admin.s.emit('leave', '/', 'r9', c1.s.id);
    await eventually(() => assert.ok(admin.log.some(e => e.ev === 'room_left' && e.args[1] === 'r9')));
    let c1again = false;
    c1.s.on('ping2', () => { c1again = true; });
    admin.s.emit('emit', '/', 'r9', 'ping2');
    // No filter: the whole namespace.
    const all1 = waitEvent(c1.s, 'all');
    const all2 = waitEvent(c2.s, 'all');
    admin.s.emit('emit', '/', null, 'all', 'x');
    await Promise.all([all1, all2]);
    assert.equal(c1again, false, 'left r9');
    assert.equal(c2got, false, 'never in r9');

    const gone = waitEvent(c1.s, 'disconnect');
    admin.s.emit('_disconnect', '/', false, c1.s.id);
    assert.equal((await gone)[0], 'io server disconnect');
    assert.ok(c2.s.connected);
    c2.s.disconnect();
    admin.s.disconnect();
  });
});

// ---- auth and readonly ----

describe('basic auth with a bcrypt hash, and readonly mode', () => {
  const server = new SioServer(['--admin-ui', 'production', '--admin-user', 'admin', '--admin-hash', HASH]);
  const readonly = new SioServer(['--admin-ui', 'development', '--admin-readonly', '1']);
  let url, roUrl, node;
  before(async () => {
    url = await server.start();
    roUrl = await readonly.start();
    node = await startNode({ mode: 'production', auth: { type: 'basic', username: 'admin', password: HASH } });
  });
  after(async () => {
    await node?.close();
    await server.stopClean();
    await readonly.stopClean();
  });

  for (const target of ['sio_server', 'node']) {
    it(`refuses a wrong password and takes the right one (${target})`, async () => {
      const base = target === 'node' ? node.url : url;
      const tries = [{ username: 'admin', password: 'nope' }, { username: 'root', password: PASSWORD }, {},
        { sessionId: 'deadbeefdeadbeef' }];
      // instrument() hands a missing password to bcryptjs, whose rejection nobody catches: Node never answers
      // (and, with Node's default, the process dies). We refuse it.
      if (target !== 'node') tries.push({ username: 'admin' }, { username: 'admin', password: 42 });
      for (const auth of tries) {
        const c = connect(base, '/admin', { auth });
        const [err] = await waitEvent(c.s, 'connect_error');
        assert.equal(err.message, 'invalid credentials', JSON.stringify(auth));
        c.s.close();
      }
      const ok = await connected(connect(base, '/admin', { auth: { username: 'admin', password: PASSWORD } }));
      await eventually(() => assert.ok(ok.log.some(e => e.ev === 'config')));
      const session = ok.log.find(e => e.ev === 'session');
      assert.match(session.args[0], /^[0-9a-f]{16}$/);
      const config = ok.log.find(e => e.ev === 'config').args[0];
      assert.deepEqual(config, { supportedFeatures: ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE',
        'MDISCONNECT', 'AGGREGATED_EVENTS'] });
      assert.ok(!ok.log.some(e => e.ev === 'all_sockets'), 'production mode: no sockets');
      ok.s.disconnect();
      // The dashboard reconnects with its session id.
      const again = await connected(connect(base, '/admin', { auth: { sessionId: session.args[0] } }));
      again.s.disconnect();
    });
  }

  it('refuses a flood of wrong logins without harm, then takes a right one', async () => {
    const flood = Array.from({ length: 20 }, () => connect(url, '/admin', { auth: { username: 'admin', password: 'x' } }));
    const refused = flood.map(c => waitEvent(c.s, 'connect_error'));
    for (const [i, c] of flood.entries()) {
      const [err] = await refused[i];
      assert.equal(err.message, 'invalid credentials');
      c.s.close();
    }
    const ok = await connected(connect(url, '/admin', { auth: { username: 'admin', password: PASSWORD } }));
    ok.s.disconnect();
  });

  it('readonly: offers no action and ignores them', async () => {
    const admin = await connected(connect(roUrl, '/admin'));
    await eventually(() => assert.ok(admin.log.some(e => e.ev === 'config')));
    assert.deepEqual(admin.log.find(e => e.ev === 'config').args[0],
      { supportedFeatures: ['AGGREGATED_EVENTS', 'ALL_EVENTS'] });
    const c = await connected(connect(roUrl));
    let got = false;
    c.s.on('x', () => { got = true; });
    admin.s.emit('emit', '/', null, 'x');
    admin.s.emit('join', '/', 'ro', c.s.id);
    admin.s.emit('_disconnect', '/', true);
    await settle(admin.log);
    assert.equal(got, false);
    assert.ok(c.s.connected);
    assert.ok(!admin.log.some(e => e.ev === 'room_joined' && e.args[1] === 'ro'));
    c.s.disconnect();
    admin.s.disconnect();
  });
});

// ---- hostile arguments ----

describe('malformed actions from an authenticated dashboard', () => {
  const server = new SioServer(['--admin-ui', 'development', '--admin-user', 'admin', '--admin-hash', HASH]);
  let url;
  before(async () => { url = await server.start(); });
  after(() => server.stopClean());

  it('leave the server serving everyone', async () => {
    const admin = await connected(connect(url, '/admin', { auth: { username: 'admin', password: PASSWORD } }));
    const c = await connected(connect(url));
    let disconnected = false, gotX = false;
    c.s.on('disconnect', () => { disconnected = true; });
    c.s.on('x', () => { gotX = true; });
    const huge = 'y'.repeat(300000);
    const bad = [
      ['emit'], ['emit', 1, 2, 3], ['emit', '/', 5, 'x'], ['emit', '/', {}, 'x'], ['emit', '/nope', null, 'x'],
      ['emit', null, null, 'x'], ['emit', '/', null, 'connect'], ['emit', '/', null, 'disconnect'],
      ['emit', '/', null, 12], ['emit', '/', huge, 'x'], ['emit', '/', Array(5000).fill('r'), 'x'],
      ['emit', '/', [[[[]]]], 'x'], ['emit', '/', null, huge], ['emit', { nsp: '/' }, null, 'x'],
      ['emit', '/', 'a\u0000b', 'x'], ['emit', '\u0000', null, 'x'], ['emit', huge, null, 'x'],
      ['join'], ['join', '/', { a: 1 }], ['join', '/', huge], ['join', '/', ['a', 5, null], 'nobody'],
      ['join', 'nonexistent', 'r'], ['join', '/', 'r', 12345], ['join', '/', Array(5000).fill('z'), 'nobody'],
      ['leave', '/', null, null, null], ['leave', 5], ['leave', '/', [], 'nobody'],
      ['_disconnect'], ['_disconnect', '/', 'yes', {}], ['_disconnect', '/nope', true], ['_disconnect', '/', true, 7],
      ['_disconnect', '/', true, [1, 2]], ['_disconnect', [], true], ['unknown-action', 1, 2],
      ['emit', '/', Buffer.from('r'), 'x'], ['_disconnect', '/', true, Buffer.from('r')],
      ['emit', '/', ['a\u0000b'], 'x'], ['emit', '/', Array(17).fill(0).map((_, i) => `r${i}`), 'x'],
    ];
    for (const args of bad) admin.s.emit(...args);
    for (let i = 0; i < 200; i++) admin.s.emit('join', '/', `flood-${i}`, 'nobody');
    // Everyone is still served: the client, a newcomer, the dashboard.
    const echoed = waitEvent(c.s, 'echo');
    c.s.emit('echo', 'still here');
    assert.deepEqual(await echoed, ['still here']);
    const n = await connected(connect(url));
    n.s.disconnect();
    await waitEvent(admin.s, 'server_stats', 5000);
    assert.ok(admin.s.connected);
    assert.equal(disconnected, false);
    assert.equal(gotX, false, 'no malformed emit reached anyone');
    c.s.disconnect();
    admin.s.disconnect();
  });
});

// ---- the real dashboard ----

describe('the Admin UI dashboard in headless chromium', () => {
  const server = new SioServer(['--admin-ui', 'development', '--admin-user', 'admin', '--admin-hash', HASH,
    '--web-root', UI_DIST]);
  let url, context, profile;
  before(async () => {
    url = await server.start();
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'wsio-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, locale: 'en-US', timeout: 30000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    // Offline: the page's web fonts and icons (Google Fonts, jsDelivr) fail at once instead of hanging.
    await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, r => r.abort());
  });
  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await server.stopClean();
  });

  it('logs in and shows the connected sockets as they come', async () => {
    const c1 = await connected(connect(url));
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    await page.goto(`${url}/`, { waitUntil: 'domcontentloaded' });
    await page.getByLabel('Server URL').fill(url);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.goto(`${url}/#/sockets/`, { waitUntil: 'domcontentloaded' });
    await within(page.getByText(c1.s.id).first().waitFor(), 15000, 'the first client on the sockets page');
    // One that connects now appears too (socket_connected).
    const c2 = await connected(connect(url));
    await within(page.getByText(c2.s.id).first().waitFor(), 15000, 'a new client on the sockets page');
    await page.screenshot({ path: 'admin_ui.png' });
    c1.s.disconnect();
    c2.s.disconnect();
    assert.deepEqual(errors, []);
    await page.close();
  });
});
