// Interop: wsio's Redis adapter over a Redis Cluster that grows while it runs, then shrinks. The test starts a
// 3-primary Redis Cluster (as test_redis_cluster.mjs), two wsio nodes (redis_node) and one Node socket.io
// server over node-redis createCluster (redis_node_server.mjs), then adds two primaries that no node has met
// and moves slots in use onto them. REDIS_MODE:
//   sharded  a room's channel moves to the first new primary: a node that does not hold the channel learns it
//            from the -MOVED to its next message, which must still arrive; then the main channel (io.emit and
//            every request) moves to the second one.
//   streams  the stream's slot moves to the first new primary with its key: what the wsio nodes broadcast
//            meanwhile meets -ASK to a node they have no connection to, and must be in the stream and reach
//            every node; then a session's slot moves to the second one before its client comes back to a wsio
//            node that meets -MOVED to it.
//   classic  the main channel's and a room's slots move to the new primaries (cluster-wide pub/sub does not
//            follow slots: delivery simply goes on), and the wsio nodes count five primaries.
// Last, the slots move back and both primaries leave the cluster: delivery goes on, and the wsio nodes let go
// of their connections to them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCluster } from 'redis';
import { ClusterFixture, connectedPorts } from './redis_fixtures.mjs';
import { within, ack, next, collect, until, startProc, stopProc, openClient, onExit }
  from './redis_harness.mjs';

const MODE = process.env.REDIS_MODE || 'sharded';
const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const RECOVERY_MS = 60000;
const OFFSET = /^\d+-\d+$/;
const listening = /^listening on .*:(\d+)$/;
const dir = mkdtempSync(join(tmpdir(), 'wsio-redis-grow-'));
onExit(() => rmSync(dir, { recursive: true, force: true }));

describe(`Redis Cluster adapter (${MODE}) over a cluster that grows from 3 primaries to 5 and back`, () => {
  const cl = new ClusterFixture({ redisServer: REDIS_SERVER, redisCli: REDIS_CLI, dir });
  const { ports } = cl;
  const procs = [];     // wsio A, wsio B, Node C
  const clients = [];
  const primaries = [0, 1, 2];
  const moved = [];     // [slot, its first owner, the new primary]
  let cA, cB, cC, urlA, urlB, probe, room;
  let D, E;             // the new primaries' indices

  const open = (url, opts) => openClient(clients, url, opts);
  const cmd = (i, ...args) => cl.cmd(i, ...args);
  const chan = r => (r ? `socket.io#/#${r}#` : 'socket.io#/#');
  const modeFlags = { sharded: ['--sharded'], streams: ['--streams', '--recovery', String(RECOVERY_MS)], classic: [] };

  // A broadcast from `from` reaches each of cA, cB, cC once (with one offset, streams): true, or what went wrong.
  async function reaches(from, tag) {
    const got = [cA, cB, cC].map(s => collect(s, 'ping', 500));
    await ack(from, 'emit', 'ping', tag);
    const runs = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag));
    if (!runs.every(g => g.length === 1)) return `received ${JSON.stringify(runs.map(g => g.length))}`;
    if (MODE !== 'streams') return true;
    const offsets = runs.map(g => g[0].at(-1));
    return (OFFSET.test(offsets[0]) && offsets.every(o => o === offsets[0])) || `offsets ${JSON.stringify(offsets)}`;
  }
  let tags = 0;
  const everyNodeReaches = async (what, ms) => {
    for (const [i, from] of [cA, cB, cC].entries())
      await until(`${what}: io.emit from node ${i} reaches every node`, () => reaches(from, `${what}-${++tags}`), ms);
  };

  // Moves slot to primary dst, remembering where it was for the end.
  async function moveTo(slot, dst, mid) {
    const src = await cl.ownerOf(slot);
    await cl.moveSlot(slot, src, dst, primaries, mid);
    moved.push([slot, src, dst]);
  }

  before(async () => {
    for (let i = 0; i < 3; i++) await cl.startNode();
    await cl.create();
    for (const [seed, more] of [[0, []], [1, ['--degraded']]]) {
      const r = await startProc('wsio', NODE_BIN, ['--redis', `redis://127.0.0.1:${ports[seed]}`, ...modeFlags[MODE],
                                                   ...more], {}, listening);
      procs.push(r.proc);
      if (seed === 0) urlA = `http://127.0.0.1:${r.m[1]}`;
      else urlB = `http://127.0.0.1:${r.m[1]}`;
    }
    const r = await startProc('node', process.execPath, [NODE_SERVER],
                              { REDIS_URL: `redis://127.0.0.1:${ports[2]}`, REDIS_MODE: MODE, REDIS_CLUSTER: '1',
                                RECOVERY_MS: String(RECOVERY_MS) }, listening);
    procs.push(r.proc);
    cA = await open(urlA);
    cB = await open(urlB, { transports: ['polling'] });
    cC = await open(`http://127.0.0.1:${r.m[1]}`);
    for (const s of [cA, cB, cC]) s.on('poll', cb => cb(s.id));
    if (MODE === 'streams') {
      probe = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${ports[0]}` }] });
      probe.on('error', () => {});
      await probe.connect();
    }
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all(procs.map(p => stopProc(p)));
    await probe?.disconnect().catch(() => {});
    await cl.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('three primaries: every node counts three servers and reaches the others', async () => {
    for (const s of [cA, cB]) {
      await until('cluster mode, 3 primaries', async () => {
        const st = await ack(s, 'redis-stats');
        return (st.cluster && st.primaries === 3 && st.connected) || JSON.stringify(st);
      }, 5000);
    }
    for (const s of [cA, cB, cC]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
    await everyNodeReaches('start', 3000);
  });

  it('two primaries join the cluster, serving nothing yet: nothing changes', async () => {
    D = await cl.addPrimary(primaries);
    E = await cl.addPrimary([...primaries, D]);
    primaries.push(D, E);
    for (const s of [cA, cB])
      assert.equal((await ack(s, 'redis-stats')).primaries, 3, 'slotless nodes are no primaries');
    await everyNodeReaches('joined', 3000);
  });

  if (MODE === 'sharded') {
    it('a room\'s channel moves to a new primary: the first message from a node that does not hold it arrives', async () => {
      room = 'grow-room';
      for (const s of [cB, cC]) assert.equal(await ack(s, 'join', room), true);
      const slot = await cl.slotOf(chan(room));
      const subscribers = async i => Number((await cmd(i, 'PUBSUB', 'SHARDNUMSUB', chan(room)))[1]);
      const first = await cl.ownerOf(slot);
      await until('the room\'s channel held by B and C', async () => (await subscribers(first)) === 2, 5000);
      const before = await ack(cA, 'redis-stats');
      await moveTo(slot, D);
      // B and C were told (sunsubscribe) and subscribe on D; A, which holds no room channel, was not
      await until('the room\'s channel held on the new primary', async () => (await subscribers(D)) === 2, 5000);
      const got = [cA, cB, cC].map(s => collect(s, 'grown', 1000));
      await ack(cA, 'to', room, 'grown', 1);
      assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1, 1],
                       'the message that met -MOVED to the new primary was sent there');
      const after = await ack(cA, 'redis-stats');
      assert.equal(after.dropped, before.dropped, 'nothing dropped');
      assert.ok(after.redirects > before.redirects, 'the message met -MOVED');
    });

    it('the main channel moves to the other new primary: io.emit and requests work from every node', async () => {
      await moveTo(await cl.slotOf(chan()), E);
      await everyNodeReaches('main moved', 8000);
      for (const s of [cA, cB]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
      const [err, answers] = await ack(cA, 'bcast-ack', 3000);
      assert.equal(err, null);
      assert.deepEqual(answers.map(a => a[0]).sort(), [cA.id, cB.id, cC.id].sort());
      const st = await ack(cA, 'redis-stats');
      assert.equal(st.primaries, 5);
    });
  }

  if (MODE === 'streams') {
    it('the stream moves to a new primary: broadcasts met by -ASK to it are kept, and reach every node', async () => {
      const slot = await cl.slotOf('socket.io');
      const length = Number(await cmd(await cl.ownerOf(slot), 'XLEN', 'socket.io'));
      const before = await Promise.all([cA, cB].map(s => ack(s, 'redis-stats')));
      const during = [cA, cB, cC].map(s => collect(s, 'mid', 4000));
      await moveTo(slot, D, async () => {
        for (const [i, from] of [cA, cB].entries()) await ack(from, 'emit', 'mid', i);
      });
      await until('the two entries made during the move in the stream', async () =>
        Number(await cmd(D, 'XLEN', 'socket.io')) === length + 2, 3000);
      await everyNodeReaches('stream moved', 10000);
      const mids = await Promise.all(during);
      for (let i = 0; i < 2; i++) {
        const runs = mids.map(g => g.filter(([x]) => x === i));
        assert.deepEqual(runs.map(g => g.length), [1, 1, 1], `the broadcast of wsio node ${i} made during the move`);
        assert.ok(runs.every(g => OFFSET.test(g[0][1]) && g[0][1] === runs[0][0][1]), `wsio node ${i}'s offsets`);
      }
      for (const [i, s] of [cA, cB].entries()) {
        const st = await ack(s, 'redis-stats');
        assert.equal(st.dropped, before[i].dropped, `nothing dropped by wsio node ${i}`);
        assert.ok(st.redirects > before[i].redirects, `wsio node ${i} met -ASK`);
      }
    });

    it('a session\'s slot moves to the other new primary: its client is restored on a node that meets -MOVED', async () => {
      const s = await open(urlA);
      await ack(s, 'join', 'rr');
      const first = next(s, 'tick');
      await ack(cC, 'emit', 'tick', 0);
      assert.match((await first).at(-1), OFFSET);
      const gone = next(s, 'disconnect');
      s.io.engine.close();
      await gone;
      const key = `sio:session:${s._pid}`;
      await until('session saved', async () => (await probe.exists(key)) === 1, 5000);
      const seen = [];
      s.on('missed', (...args) => seen.push(args[0]));
      await ack(cC, 'to', 'rr', 'missed', 'while-away');
      await until('the entry in the stream', async () =>
        (await probe.xRevRange('socket.io', '+', '-', { COUNT: 1 }))[0]?.message.data.includes('while-away'), 5000);
      const before = await ack(cB, 'redis-stats');
      await moveTo(await cl.slotOf(key), E);
      s.io.uri = urlB;
      s.connect();
      await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'reconnect');
      assert.equal(s.recovered, true, 'restored from the new primary');
      await until('the missed broadcast', async () => seen.length >= 1, 3000).catch(() => {});
      assert.deepEqual(seen, ['while-away']);
      assert.ok((await ack(cB, 'redis-stats')).redirects > before.redirects, 'B met -MOVED');
      s.disconnect();
    });
  }

  if (MODE === 'classic') {
    it('the main channel\'s and a room\'s slots move to the new primaries: delivery goes on, five primaries counted', async () => {
      room = 'grow-room';
      for (const s of [cB, cC]) assert.equal(await ack(s, 'join', room), true);
      await moveTo(await cl.slotOf(chan(room)), D);
      await moveTo(await cl.slotOf(chan()), E);
      for (const [i, from] of [cA, cB, cC].entries()) assert.equal(await reaches(from, `classic-${i}`), true);
      const got = [cA, cB, cC].map(s => collect(s, 'grown', 700));
      await ack(cA, 'to', room, 'grown', 1);
      assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1, 1]);
      // no redirection tells a classic node: it reads the topology every 10 s
      for (const s of [cA, cB])
        await until('five primaries', async () => (await ack(s, 'redis-stats')).primaries === 5, 12000);
      for (const s of [cA, cB]) assert.equal(await ack(s, 'server-count'), 3);
    });
  }

  it('the slots move back and the two primaries leave: delivery goes on, and the wsio nodes let go of them', async () => {
    const gone = [ports[D], ports[E]];
    for (const i of [0, 1])
      assert.ok(connectedPorts(procs[i].pid).some(p => gone.includes(p)), `wsio node ${i} uses the new primaries`);
    for (const [slot, src, dst] of moved.reverse()) await cl.moveSlot(slot, dst, src, primaries);
    // every server follows the moves before the two leave (a node that left answers -CLUSTERDOWN, not -MOVED)
    await everyNodeReaches('moved back', 8000);
    if (room) {
      // A, which holds no room channel, meets -MOVED back to a primary it knows (sharded)
      const got = [cA, cB, cC].map(s => collect(s, 'back', 700));
      await ack(cA, 'to', room, 'back', 1);
      assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1, 1]);
    }
    await cl.removeNode(D, [0, 1, 2, E]);
    await cl.removeNode(E, [0, 1, 2]);
    primaries.splice(3);
    await everyNodeReaches('shrunk', 3000);
    for (const [i, s] of [cA, cB].entries()) {
      await until(`wsio node ${i}: three primaries, no connection to the two that left`, async () => {
        const st = await ack(s, 'redis-stats');
        const held = connectedPorts(procs[i].pid).filter(p => gone.includes(p));
        return (st.primaries === 3 && st.connected && !held.length) ||
               `${st.primaries} primaries, connected ${st.connected}, connections to them: ${held.length}`;
      }, 15000);
    }
  });
});
