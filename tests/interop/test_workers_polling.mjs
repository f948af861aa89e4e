// Long-polling against two workers (sio_server --workers 2): every polling request is its own HTTP request
// and lands on either worker; those for a session of the other worker are handed to it with their socket.
// Many npm socket.io-client clients on polling only and on polling upgraded to WebSocket connect, exchange
// events and acks, and all get a broadcast sent from any of them. Without the hand-over about half of the
// requests would meet "Session ID unknown" and the clients would fail.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { SioServer, within, waitEvent, ackOf } from './sio_harness.mjs';

const N = 60;

describe('long-polling sessions across two workers', () => {
  let server, url;
  const clients = [];
  before(async () => {
    server = new SioServer(['--workers', '2']);
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
});
