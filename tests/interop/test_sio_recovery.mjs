// Connection state recovery with the official npm socket.io-client against sio_server --recovery, with one
// worker and with two (a client comes back on whichever worker the kernel picks): many clients lose their
// transport, a broadcast goes out while they are away, and each comes back with socket.recovered, its id,
// its room and exactly the event it missed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient } from 'socket.io-client';
import { SioServer, within, waitEvent, ackOf, quiet, parserOpts } from './sio_harness.mjs';

const io = (url, opts) => ioClient(url, { ...parserOpts, ...opts }); // SIO_PARSER=msgpack: that parser

const CLIENTS = 50;

for (const workers of [1, 2]) {
  describe(`recovery with --workers ${workers}`, () => {
    let server, url;
    const open = []; // closed in after(), whatever the test did: a reconnecting client keeps node alive
    before(async () => {
      server = new SioServer(['--recovery', '60000', '--workers', String(workers)]);
      url = await server.start();
    });
    after(async () => {
      for (const s of open) s.close();
      await server.stop();
    });

    it(`${CLIENTS} clients cut their transport and come back recovered with what they missed`, async () => {
      const clients = [];
      for (let i = 0; i < CLIENTS; i++) {
        const s = io(url, { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 200,
                            forceNew: true });
        clients.push(s);
        open.push(s);
      }
      await within(Promise.all(clients.map(s => s.connected ? null : waitEvent(s, 'connect'))), 10000, 'connects');
      const before = [];
      for (const s of clients) {
        assert.equal(s.recovered, false);
        await ackOf(s, 'join', 'news');
        before.push({ id: s.id, worker: (await ackOf(s, 'info'))[0].worker });
      }
      // One broadcast they all get, so each has an offset.
      const firsts = clients.map(s => waitEvent(s, 'room-msg', 5000));
      const sender = io(url, { transports: ['websocket'], forceNew: true });
      open.push(sender);
      await waitEvent(sender, 'connect');
      await ackOf(sender, 'to-room', 'news', 'first');
      for (const [args] of [await Promise.all(firsts)]) assert.deepEqual(args.slice(0, 2), ['news', 'first']);

      // Every transport cut from the client side: the client reconnects and sends its pid and offset.
      const missed = clients.map(s => new Promise(resolve => {
        const got = [];
        s.on('room-msg', (...a) => { got.push(a[1]); if (got.length === 2) resolve(got); });
      }));
      const gone = clients.map(s => waitEvent(s, 'disconnect', 5000));
      for (const s of clients) s.io.engine.close();
      await within(Promise.all(gone), 5000, 'disconnects');
      await ackOf(sender, 'to-room', 'news', 'while-away');
      await ackOf(sender, 'to-room', 'elsewhere', 'not-theirs');
      await within(Promise.all(clients.map(s => s.connected ? null : waitEvent(s, 'connect', 10000))), 15000,
                   'reconnects');
      let moved = 0;
      for (let i = 0; i < CLIENTS; i++) {
        const s = clients[i];
        assert.equal(s.recovered, true, `client ${i} recovered`);
        assert.equal(s.id, before[i].id, 'the same socket id');
        const [info] = await ackOf(s, 'info');
        assert.equal(info.recovered, true);
        assert.ok(info.rooms.includes('news'), 'its room came back');
        if (info.worker !== before[i].worker) moved++;
      }
      // After the reconnect, a new broadcast to the room: the second event each one counts.
      await ackOf(sender, 'to-room', 'news', 'after');
      const got = await within(Promise.all(missed), 5000, 'missed and later events');
      for (const g of got) assert.deepEqual(g, ['while-away', 'after']);
      if (workers > 1) assert.ok(moved > 0, 'some clients came back on the other worker');
      await quiet(50);
    });
  });
}
