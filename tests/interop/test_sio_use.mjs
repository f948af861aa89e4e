// Interop: socket.use (event middlewares), socket.on("error") and socket.onAnyOutgoing. The same client script runs against
// sio_server's "/use" namespace (tests/interop/sio_server_use.c) and against a Node socket.io 4.8 server
// written the JavaScript way below; both must give the same observations: which steps ran in which order
// (onAny, each middleware, the handler), which events were dropped or refused, what the acks and the
// error events carried. Then what only wsio promises: kept events are capped per socket, and a socket that
// leaves with events still kept costs nothing (the sanitizer runs check that too).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { SioServer, ackOf, waitEvent, within, quiet, parserOpts, PARSER } from './sio_harness.mjs';

const EVENTS = ['plain', 'later', 'refuse', 'later-refuse', 'ack-refuse', 'drop', 'kick'];

// The reference: what a socket.io user writes for the behaviour sio_server_use.c has.
function nodeReference(io) {
  io.of('/use').on('connection', socket => {
    const log = [];
    let errors = 0, outs = 0;
    socket.onAny(ev => log.push(`any:${ev}`));
    socket.onAnyOutgoing((ev, ...args) => { outs++; log.push(`out:${ev}:${args.length}`); });
    socket.use(([ev, ...args], next) => {
      log.push(`mw1:${ev}`);
      const ack = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : null;
      if (ev === 'refuse') return next(Object.assign(new Error('refused'), { data: { why: args[0] ?? null } }));
      if (ev === 'ack-refuse') { if (ack) ack('no'); return; }
      if (ev === 'drop') return;
      if (ev === 'later') return void setTimeout(() => next(), 30);
      if (ev === 'later-refuse') return void setTimeout(() => next(new Error('later')), 30);
      if (ev === 'kick') { socket.disconnect(); return next(); }
      next();
    });
    socket.use(([ev], next) => { log.push(`mw2:${ev}`); next(); });
    socket.on('error', err => {
      errors++;
      socket.emit('mw-error', err.message, err.data ?? null);
    });
    for (const ev of EVENTS) {
      socket.on(ev, (...args) => {
        log.push(`handler:${ev}`);
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        if (ack) ack('handled', ...args);
      });
    }
    socket.on('log', ack => { ack(log.splice(0)); });
    socket.on('error-count', ack => ack(errors));
    socket.on('out-count', ack => ack(outs));
    socket.on('shout', (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      io.of('/use').emit('shouted', ...args);
      if (ack) ack();
    });
  });
}

function open(url, opts = {}) {
  const s = connect(`${url}/use`, { forceNew: true, reconnection: false, transports: ['websocket'], ...parserOpts,
                                    ...opts });
  return within(new Promise((resolve, reject) => { s.once('connect', () => resolve(s)); s.once('connect_error', reject); }),
                5000, `connect ${url}/use`);
}

// The script: every kind of event, with and without acks, in an order whose log says who ran when.
async function observe(url) {
  const seen = {};
  const s = await open(url);
  const errors = [];
  s.on('mw-error', (...a) => errors.push(a));
  seen.plain = await ackOf(s, 'plain', 1, 'two', { three: 3 });
  seen.plainLog = (await ackOf(s, 'log'))[0];
  seen.binary = await ackOf(s, 'plain', Buffer.from([0, 1, 2, 255]));
  seen.binary = seen.binary.map(x => Buffer.isBuffer(x) ? [...x] : x);
  await ackOf(s, 'log');
  // Dropped: no ack ever comes, the handler never runs.
  let answered = false;
  s.emit('drop', 'x', () => { answered = true; });
  s.emit('plain'); // events that follow are not held up by a dropped one
  await quiet(150);
  seen.dropAnswered = answered;
  seen.dropLog = (await ackOf(s, 'log'))[0];
  // A middleware answers the ack itself and stops the event.
  seen.ackRefuse = await ackOf(s, 'ack-refuse', 7);
  await quiet(50);
  seen.ackRefuseLog = (await ackOf(s, 'log'))[0];
  // Refused now and later: the error callback emits mw-error; the event's ack never comes.
  answered = false;
  const e1 = waitEvent(s, 'mw-error');
  s.emit('refuse', { k: 'v' }, () => { answered = true; });
  seen.refuseError = await e1;
  const e2 = waitEvent(s, 'mw-error');
  s.emit('later-refuse', () => { answered = true; });
  seen.laterRefuseError = await e2;
  await quiet(100);
  seen.refuseAnswered = answered;
  seen.refuseLog = (await ackOf(s, 'log'))[0];
  seen.errorCount = (await ackOf(s, 'error-count'))[0];
  // Passed on later: the handler runs once the middleware answers, with the ack, and events sent after it
  // are not held up meanwhile.
  const later = ackOf(s, 'later', 'a', 2);
  seen.afterLater = await ackOf(s, 'plain', 'quick');
  seen.later = await later;
  seen.laterLog = (await ackOf(s, 'log'))[0];
  // Outgoing: what it is sent, by an emit to it (mw-error above) or a broadcast to the namespace.
  const other = await open(url);
  const heard = waitEvent(other, 'shouted');
  const own = waitEvent(s, 'shouted');
  await ackOf(s, 'shout', 'all of you', Buffer.from([7, 8]));
  seen.shouted = (await heard).map(x => Buffer.isBuffer(x) ? [...x] : x);
  await own;
  seen.shoutLog = (await ackOf(s, 'log'))[0];
  seen.otherLog = (await ackOf(other, 'log'))[0];
  seen.outCount = (await ackOf(s, 'out-count'))[0];
  other.disconnect();
  // A middleware that disconnects the socket: its next() reaches no handler.
  const gone = waitEvent(s, 'disconnect');
  s.emit('kick');
  seen.kickReason = (await gone)[0];
  seen.errors = errors;
  s.disconnect();
  return seen;
}

describe(`socket.use and socket.on("error")${PARSER ? ` (${PARSER} parser)` : ''}`, () => {
  const server = new SioServer();
  let url, ref, refUrl, http;

  before(async () => {
    url = await server.start();
    http = createServer();
    ref = new Server(http, { transports: ['websocket'], ...parserOpts });
    nodeReference(ref);
    await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
    refUrl = `http://127.0.0.1:${http.address().port}`;
  });
  after(async () => {
    ref.close();
    await server.stopClean();
  });

  it('wsio and Node socket.io observe the same thing', async () => {
    const theirs = await observe(refUrl);
    const ours = await observe(url);
    // Spot checks of the reference, so that a broken script cannot make both agree on nothing.
    assert.deepEqual(theirs.plain, ['handled', 1, 'two', { three: 3 }]);
    assert.deepEqual(theirs.plainLog.slice(0, 4), ['any:plain', 'mw1:plain', 'mw2:plain', 'handler:plain']);
    assert.equal(theirs.dropAnswered, false);
    assert.deepEqual(theirs.ackRefuse, ['no']);
    assert.deepEqual(theirs.refuseError, ['refused', { why: { k: 'v' } }]);
    assert.deepEqual(theirs.laterRefuseError, ['later', null]);
    assert.equal(theirs.errorCount, 2);
    assert.deepEqual(theirs.later, ['handled', 'a', 2]);
    assert.equal(theirs.kickReason, 'io server disconnect');
    assert.deepEqual(theirs.shouted, ['all of you', [7, 8]]);
    assert.ok(theirs.shoutLog.includes('out:shouted:2') && theirs.otherLog.includes('out:shouted:2'));
    assert.ok(theirs.refuseLog.includes('out:mw-error:2'));
    assert.deepEqual(ours, theirs);
  });

  it('an outgoing handler that emits from within a broadcast leaves the broadcast intact', async () => {
    const socks = await Promise.all([0, 1, 2].map(() => open(url)));
    const got = socks.map(s => Promise.all([waitEvent(s, 'shouted'), waitEvent(s, 'inside')]));
    await ackOf(socks[0], 'shout', 'emit-inside', { n: 1 }, Buffer.from([1, 2, 3]));
    for (const [shouted, inside] of await Promise.all(got)) {
      assert.deepEqual(shouted.map(x => Buffer.isBuffer(x) ? [...x] : x), ['emit-inside', { n: 1 }, [1, 2, 3]]);
      assert.deepEqual(inside, ['from the fan-out']);
    }
    // What the handler sent is not reported to the outgoing handlers again.
    const [log] = await ackOf(socks[1], 'log');
    assert.ok(log.includes('out:shouted:3'));
    assert.ok(!log.some(x => x.startsWith('out:inside')), JSON.stringify(log));
    for (const s of socks) s.disconnect();
  });

  it('a socket holds at most WSIO_MAX_KEPT_EVENTS kept events; the rest are dropped', async () => {
    const s = await open(url);
    for (let i = 0; i < 1100; i++) s.emit('hold', i);
    const [counts] = await ackOf(s, 'hold-count');
    assert.deepEqual(counts, { held: 1024, refused: 76 });
    assert.equal(s.connected, true);
    s.disconnect();
  });

  it('a socket that leaves with events kept, or while a middleware holds one, leaves the server serving', async () => {
    for (let round = 0; round < 20; round++) {
      const s = await open(url);
      s.emit('hold', round);
      s.emit('later', round, () => {});
      s.disconnect();
    }
    await quiet(100); // the held "later" events come due after their sockets left
    const s = await open(url);
    assert.deepEqual(await ackOf(s, 'plain', 'still here'), ['handled', 'still here']);
    s.disconnect();
  });
});
