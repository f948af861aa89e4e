// Interop: wsio's Redis adapter over a Redis Cluster, with Node socket.io. The test starts a 3-primary Redis
// Cluster itself (redis-server --cluster-enabled on free ports in a temp dir, redis-cli --cluster create),
// two wsio nodes (redis_node) and one Node socket.io 4.8 server whose @socket.io/redis-adapter runs over
// node-redis createCluster clients (redis_node_server.mjs), each given a different primary as its seed.
// REDIS_MODE=sharded (createShardedAdapter: SSUBSCRIBE/SPUBLISH routed to slot owners) or classic
// (createAdapter: cluster-wide pub/sub, server counts summed over the primaries). Rooms are picked so that
// their channels land on different primaries; then the slot of a channel in use is moved to another primary
// while running, and delivery across nodes must resume. Last, a replica joins the primary that serves the main
// channel, that primary is killed, and delivery must resume once the replica has taken over.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterFixture } from './redis_fixtures.mjs';
import { quiet, within, ack, next, collect, until, spawnTracked, startProc, stopProc, openClient, onExit }
  from './redis_harness.mjs';

const MODE = process.env.REDIS_MODE || 'sharded';
const SHARDED = MODE === 'sharded';
const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wsio-redis-cluster-'));
onExit(() => rmSync(dir, { recursive: true, force: true }));

describe(`Redis Cluster adapter (${MODE}): two wsio nodes and a Node socket.io node over 3 primaries`, () => {
  const cl = new ClusterFixture({ redisServer: REDIS_SERVER, redisCli: REDIS_CLI, dir });
  const { ports } = cl;
  const procs = [];     // wsio and Node servers
  const clients = [];
  let cA, cB, cC, urlA, urlB, urlC;
  const rooms = [];     // two rooms whose channels live on two different primaries

  const open = (url, opts) => openClient(clients, url, opts);
  const cmd = (i, ...args) => cl.cmd(i, ...args);
  const slotOf = name => cl.slotOf(name);
  const ownerOf = (slot, i = 0) => cl.ownerOf(slot, i);
  const wsioNode = (port, ...more) => startProc('wsio', NODE_BIN, ['--redis', `redis://127.0.0.1:${port}`,
                                                                  ...(SHARDED ? ['--sharded'] : []), ...more],
                                                {}, /^listening on .*:(\d+)$/);

  before(async () => {
    for (let i = 0; i < 3; i++) await cl.startNode();
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all(procs.map(p => stopProc(p)));
    await cl.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cluster that is not ok is refused at start with a clear error', async () => {
    // the nodes run, but no slot is assigned yet: cluster_state:fail
    const p = spawnTracked('wsio', NODE_BIN, ['--redis', `redis://127.0.0.1:${ports[0]}`]);
    assert.equal(await within(p.exited, 5000, 'wsio to give up'), 1);
    assert.match(p.stderrText, /Redis Cluster that is not ok \(cluster_state:fail\)/);
  });

  it('the cluster forms, and every node takes part', async () => {
    await cl.create();
    // Two rooms whose channels land on two different primaries.
    const byOwner = new Map();
    for (let k = 0; byOwner.size < 3 && k < 100; k++) {
      const owner = await ownerOf(await slotOf(`socket.io#/#room-${k}#`));
      if (!byOwner.has(owner)) byOwner.set(owner, `room-${k}`);
    }
    rooms.push(...[...byOwner.values()].slice(0, 2));
    assert.equal(rooms.length, 2);
    // Each server gets a different primary as its seed.
    let r = await wsioNode(ports[0]);
    procs.push(r.proc);
    urlA = `http://127.0.0.1:${r.m[1]}`;
    r = await wsioNode(ports[1], '--degraded'); // not probed at start: finds out it is a cluster on connecting
    procs.push(r.proc);
    urlB = `http://127.0.0.1:${r.m[1]}`;
    r = await startProc('node', process.execPath, [NODE_SERVER],
                        { REDIS_URL: `redis://127.0.0.1:${ports[2]}`, REDIS_MODE: MODE, REDIS_CLUSTER: '1' },
                        /^listening on .*:(\d+)$/);
    procs.push(r.proc);
    urlC = `http://127.0.0.1:${r.m[1]}`;
    cA = await open(urlA);
    cB = await open(urlB, { transports: ['polling'] });
    cC = await open(urlC);
    for (const s of [cA, cB, cC]) s.on('poll', cb => cb(s.id));
    for (const s of [cA, cB]) {
      await until('cluster mode, 3 primaries', async () => {
        const st = await ack(s, 'redis-stats');
        return (st.cluster && st.primaries === 3 && st.connected) || JSON.stringify(st);
      }, 5000);
    }
  });

  it('every node counts three servers (subscribers summed over the primaries)', async () => {
    for (const s of [cA, cB, cC]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
  });

  it('io.emit from any node reaches the clients of every node', async () => {
    for (const [i, from] of [cA, cB, cC].entries()) {
      const got = Promise.all([cA, cB, cC].map(s => next(s, 'hi')));
      await ack(from, 'emit', 'hi', { from: i });
      for (const [x] of await got) assert.deepEqual(x, { from: i });
    }
  });

  it('rooms on different primaries, and except, hold across nodes', async () => {
    const [r1, r2] = rooms;
    for (const [s, room] of [[cB, r1], [cC, r1], [cA, r2], [cC, r2]]) assert.equal(await ack(s, 'join', room), true);
    if (SHARDED) {
      // dynamic mode: the members' nodes hold the room's channel, on the primary that owns its slot only
      for (const room of rooms) {
        const ch = `socket.io#/#${room}#`;
        const owner = await ownerOf(await slotOf(ch));
        await until(`${room} subscribed on its owner`, async () => {
          const counts = [];
          for (let i = 0; i < 3; i++) counts.push(Number((await cmd(i, 'PUBSUB', 'SHARDNUMSUB', ch))[1]));
          return counts.every((n, i) => n === (i === owner ? 2 : 0)) || JSON.stringify(counts);
        }, 5000);
      }
    } else {
      await quiet(300);
    }
    for (const [room, members, froms] of [[r1, [0, 1, 1], [cA, cC]], [r2, [1, 0, 1], [cB, cA]]]) {
      for (const from of froms) {
        const got = [cA, cB, cC].map(s => collect(s, 'room-ev', 700));
        await ack(from, 'to', room, 'room-ev', 7);
        assert.deepEqual((await Promise.all(got)).map(g => g.length), members, `to ${room}`);
        const ex = [cA, cB, cC].map(s => collect(s, 'ex-ev', 700));
        await ack(from, 'except', room, 'ex-ev', 8);
        assert.deepEqual((await Promise.all(ex)).map(g => g.length), members.map(m => 1 - m), `except ${room}`);
      }
    }
  });

  it('fetchSockets sees the sockets of every node', async () => {
    const all = [cA.id, cB.id, cC.id].sort();
    for (const s of [cA, cB, cC]) {
      assert.deepEqual(await ack(s, 'fetch', null), [null, all]);
      assert.deepEqual(await ack(s, 'fetch', rooms[0]), [null, [cB.id, cC.id].sort()]);
    }
  });

  it('serverSideEmit reaches the other nodes, with and without acks', async () => {
    const portOf = u => u.split(':')[2];
    for (const [from, others, names] of [
      [cA, [cB, cC], [`node:${portOf(urlC)}`, `wsio:${portOf(urlB)}`]],
      [cC, [cA, cB], [`wsio:${portOf(urlA)}`, `wsio:${portOf(urlB)}`]],
    ]) {
      const got = Promise.all(others.map(s => next(s, 'server-hello')));
      await ack(from, 'sse', 'hello', { n: 1 });
      for (const [x] of await got) assert.deepEqual(x, { n: 1 });
      const [err, answers] = await ack(from, 'sse-ack', 'whoami', 0);
      assert.equal(err, null);
      assert.deepEqual(answers.map(a => a[0]).sort(), names.sort());
    }
  });

  it('broadcast with acks collects every client of every node', async () => {
    const want = [cA.id, cB.id, cC.id].sort();
    for (const from of [cA, cC]) {
      const [err, answers] = await ack(from, 'bcast-ack', 3000);
      assert.equal(err, null);
      assert.deepEqual(answers.map(a => a[0]).sort(), want);
    }
  });

  it('a channel\'s slot moved to another primary: delivery across nodes resumes', async () => {
    // The main channel carries io.emit (and, sharded, every request), then a room's. One move at a time:
    // node-redis 4.7 may resubscribe on a stale topology when a second move comes during its rediscovery.
    const before = await ack(cA, 'redis-stats');
    let n = 0;
    for (const ch of ['socket.io#/#', `socket.io#/#${rooms[0]}#`]) {
      const slot = await slotOf(ch);
      const src = await ownerOf(slot);
      await cl.moveSlot(slot, src, (src + 1) % 3, [0, 1, 2]);
      for (const from of [cA, cB, cC]) {
        await until(`io.emit reaches every node again after ${ch} moved`, async () => {
          const tag = ++n;
          const got = [cA, cB, cC].map(s => collect(s, 'moved', 500));
          await ack(from, 'emit', 'moved', tag);
          const counts = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag).length);
          if (counts.every(c => c === 1)) return true;
          const subs = [];
          for (let i = 0; i < 3; i++) subs.push(Number((await cmd(i, 'PUBSUB', 'SHARDNUMSUB', ch))[1]));
          return `from ${[cA, cB, cC].indexOf(from)}: received ${JSON.stringify(counts)}, ` +
                 `subscribers per primary ${JSON.stringify(subs)}`;
        }, 8000);
      }
    }
    const got = [cA, cB, cC].map(s => collect(s, 'room-after', 700));
    await ack(cA, 'to', rooms[0], 'room-after', 1);
    assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1, 1]);
    // wsio nodes only: node-redis 4.7's cluster lists some primaries twice in `masters` after a rediscovery,
    // so the Node adapter, which sums PUBSUB SHARDNUMSUB over that list, counts more servers than there are.
    for (const s of [cA, cB]) {
      await until('server count 3 after the move', async () => {
        const n = await ack(s, 'server-count');
        return n === 3 || `${n} counted by ${[cA, cB, cC].indexOf(s)}`;
      });
    }
    const after = await ack(cA, 'redis-stats');
    if (SHARDED) {
      // classic pub/sub crosses the cluster whatever the slots: only sharded subscriptions have to follow
      assert.ok(after.redirects > before.redirects, 'the move was noticed (sunsubscribe or MOVED)');
      assert.ok(after.refreshes > before.refreshes, 'the topology was read again');
    }
    assert.equal(after.connected, true);
  });
  it('the primary of the main channel dies and its replica takes over: delivery across nodes resumes', async () => {
    const slot = await slotOf('socket.io#/#');
    const victim = await ownerOf(slot);
    const live = [0, 1, 2].filter(i => i !== victim);
    const replica = await cl.addReplica(victim, [victim, ...live]);
    const before = await ack(cA, 'redis-stats');
    await cl.failOver(victim, replica, slot, [...live, replica]);
    // wsio nodes only (node-redis 4.7's cluster client is not under test here). While a primary is away the
    // link reads the topology every second, so delivery resumes soon after the replica takes over, not at
    // the next periodic refresh (10 s).
    let n = 0;
    for (const from of [cA, cB]) {
      await until('io.emit reaches every wsio node again after the failover', async () => {
        const tag = ++n;
        const got = [cA, cB].map(s => collect(s, 'failover', 500));
        await ack(from, 'emit', 'failover', tag);
        const counts = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag).length);
        return counts.every(c => c === 1) || `from ${[cA, cB].indexOf(from)}: received ${JSON.stringify(counts)}`;
      }, 4000);
    }
    const got = [cA, cB].map(s => collect(s, 'room-failover', 700));
    await ack(cA, 'to', rooms[0], 'room-failover', 1); // cB is in it, cA is not
    assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1]);
    for (const s of [cA, cB]) {
      const st = await ack(s, 'redis-stats');
      assert.equal(st.connected, true);
      assert.equal(st.primaries, 3, 'the dead primary left the topology');
    }
    const after = await ack(cA, 'redis-stats');
    assert.ok(after.refreshes > before.refreshes, 'the topology was read again');
  });
});
