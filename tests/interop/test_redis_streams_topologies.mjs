// Interop: the streams mode (as @socket.io/redis-streams-adapter 0.3) beyond one redis-server, with real
// peers the test starts itself. STREAMS_TOPOLOGY selects one:
//   cluster   a 3-primary Redis Cluster (as test_redis_cluster.mjs); two wsio nodes and one Node socket.io
//             server whose streams adapter runs over node-redis createCluster (the package documents that
//             client). Broadcasts and recovery across every pair of nodes, with the session keys on other
//             primaries than the stream; a session's slot moves before its client comes back; the stream's
//             slot moves to another primary (its key migrated) while each node broadcasts; then that
//             primary dies and its replica takes over: delivery and recovery resume on the wsio nodes.
//   sentinel  a master, a replica and three sentinels (as test_redis_sentinel.mjs); two wsio nodes given only
//             the sentinels (node-redis 4.7 has no Sentinel client, so no Node node). Broadcasts, recovery,
//             then the master dies: delivery resumes, and a client that left before the failover comes back
//             after it with what it missed on both sides of it.
//   count     one redis-server, stream_count 3: two wsio nodes and a Node node with streamCount 3. "/", "/chat"
//             and "/news" are on streams 2, 1 and 0; broadcasts in each reach every node, and clients recover
//             in namespaces on streams 1 and 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, createCluster } from 'redis';
import { io as connectClient } from 'socket.io-client';
import { ClusterFixture, RedisAdmin, startSentinels } from './redis_fixtures.mjs';
import { quiet, within, ack, next, collect, until, freePort, startProc, stopProc, openClient, onExit }
  from './redis_harness.mjs';

const TOPOLOGY = process.env.STREAMS_TOPOLOGY || 'count';
const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const RECOVERY_MS = 60000;
const OFFSET = /^\d+-\d+$/;
const dir = mkdtempSync(join(tmpdir(), 'wsio-redis-streams-topo-'));
onExit(() => rmSync(dir, { recursive: true, force: true }));

const clients = [];
const procs = [];      // wsio and Node servers
const open = (url, opts) => openClient(clients, url, opts);
// An event's arguments without the offset recovery appends, and the offset.
const split = args => [args.slice(0, -1), args.at(-1)];
const listening = /^listening on .*:(\d+)$/;
async function wsioNode(url, ...more) {
  const r = await startProc('wsio', NODE_BIN, ['--redis', url, '--streams', '--recovery', String(RECOVERY_MS), ...more],
                            {}, listening);
  procs.push(r.proc);
  return `http://127.0.0.1:${r.m[1]}`;
}
async function nodeNode(env) {
  const r = await startProc('node', process.execPath, [NODE_SERVER],
                            { REDIS_MODE: 'streams', RECOVERY_MS: String(RECOVERY_MS), ...env }, listening);
  procs.push(r.proc);
  return `http://127.0.0.1:${r.m[1]}`;
}
const redisServer = (port, ...more) => startProc(`redis:${port}`, REDIS_SERVER, [
  '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...more,
], {}, /Ready to accept/).then(r => r.proc);

// io.emit (in the namespace of the clients in `to`) from `from` reaches each of `to` once, with one offset
// for all: true, or what went wrong.
async function delivered(from, to, tag) {
  const got = to.map(s => collect(s, 'ping', 500));
  await ack(from, 'emit', 'ping', tag);
  const runs = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag));
  const counts = runs.map(g => g.length);
  if (!counts.every(c => c === 1)) return `received ${JSON.stringify(counts)}`;
  const offsets = runs.map(g => g[0].at(-1));
  return (OFFSET.test(offsets[0]) && offsets.every(o => o === offsets[0])) || `offsets ${JSON.stringify(offsets)}`;
}

// A new client of url joins room rr, gets a broadcast from ticker (so it has an offset) and loses its
// transport. Resolves to it and what `me` told before, once its session is in Redis (probe: a node-redis
// client or cluster).
async function leaveWithOffset(url, ticker, probe, label) {
  const s = await open(url);
  assert.equal(s.recovered, false);
  await ack(s, 'join', 'rr');
  const before = await ack(s, 'me');
  const first = next(s, 'tick');
  await ack(ticker, 'emit', 'tick', 0);
  assert.match(split(await first)[1], OFFSET);
  const gone = next(s, 'disconnect');
  s.io.engine.close();
  await gone;
  await until(`${label}: session saved`, async () => (await probe.exists(`sio:session:${s._pid}`)) === 1, 5000);
  return { s, before };
}

// A client of `from` in namespace nsp joins room rr, gets a broadcast (its offset) and drops; the emits
// ([client, stream, ...args], their last argument a tag) go out while it is away, each in its stream before
// the next; it comes back to `to` and must be recovered with exactly the tags in want, in order, and live
// again. r: { probe (a node-redis client or cluster, or a function giving one), ticker (a client of nsp on
// another node) }.
async function recoverAcross(r, { from, to, nsp = '/', emits, want, label }) {
  const probe = typeof r.probe === 'function' ? await r.probe() : r.probe;
  const { s, before } = await leaveWithOffset(nsp === '/' ? from : `${from}${nsp}`, r.ticker, probe, label);
  const seen = [];
  s.on('missed', (...args) => seen.push(split(args)));
  for (const [i, [c, stream, ...args]] of emits.entries()) {
    await ack(c, ...args);
    await until(`${label}: entry ${i} in ${stream}`, async () =>
      (await probe.xRevRange(stream, '+', '-', { COUNT: 1 }))[0]?.message.data.includes(args.at(-1)), 5000);
  }
  s.io.uri = to;
  s.connect();
  await within(new Promise(resolve => s.once('connect', resolve)), 5000, `${label}: reconnect`);
  assert.equal(s.recovered, true, `${label}: recovered`);
  assert.equal(s.id, before.id);
  await until(`${label}: the missed broadcasts`, async () => seen.length >= want.length, 3000).catch(() => {});
  await quiet(300);
  assert.deepEqual(seen.map(([a]) => a[0]), want, `${label}: exactly the broadcasts it missed, in order`);
  for (const [, off] of seen) assert.match(off, OFFSET);
  assert.deepEqual(await ack(s, 'me'), { ...before, recovered: true });
  const live = collect(s, 'live', 600);
  await ack(r.ticker, 'emit', 'live', label);
  assert.deepEqual((await live).map(a => a[0]), [label]);
  s.disconnect();
}

// The usual set while a client of the root namespace is away: to everyone, to its room, except its room,
// to another room; from the given clients in turn.
function rootEmits(stream, [c1, c2, c3], label) {
  return {
    emits: [[c1, stream, 'emit', 'missed', `${label}-all`], [c2, stream, 'to', 'rr', 'missed', `${label}-room`],
            [c3, stream, 'except', 'rr', 'missed', `${label}-not-rr`], [c1, stream, 'to', 'other', 'missed', `${label}-other`],
            [c3, stream, 'emit', 'missed', `${label}-all-2`]],
    want: [`${label}-all`, `${label}-room`, `${label}-all-2`],
  };
}

if (TOPOLOGY === 'cluster') {
  describe('Redis streams over a 3-primary Redis Cluster: two wsio nodes and a Node node (createCluster)', () => {
    const cl = new ClusterFixture({ redisServer: REDIS_SERVER, redisCli: REDIS_CLI, dir });
    const { ports } = cl;
    let probe, cA, cB, cC, urlA, urlB, urlC;
    const cmd = (i, ...args) => cl.cmd(i, ...args);
    const slotOf = name => cl.slotOf(name);
    const ownerOf = (slot, i = 0) => cl.ownerOf(slot, i);
    const r = { get probe() { return probe; }, get ticker() { return cC; } };

    before(async () => {
      for (let i = 0; i < 3; i++) await cl.startNode();
      await cl.create();
      probe = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${ports[0]}` }] });
      probe.on('error', () => {});
      await probe.connect();
      // each server seeded with a different primary
      urlA = await wsioNode(`redis://127.0.0.1:${ports[0]}`);
      urlB = await wsioNode(`redis://127.0.0.1:${ports[1]}`);
      urlC = await nodeNode({ REDIS_URL: `redis://127.0.0.1:${ports[2]}`, REDIS_CLUSTER: '1' });
      cA = await open(urlA);
      cB = await open(urlB, { transports: ['polling'] });
      cC = await open(urlC);
    });
    after(async () => {
      for (const s of clients) s.disconnect();
      await Promise.all(procs.map(p => stopProc(p)));
      await probe?.disconnect().catch(() => {});
      await cl.stop();
    });

    it('every node counts three servers, and the wsio nodes run in cluster mode', async () => {
      for (const s of [cA, cB, cC]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
      for (const s of [cA, cB]) {
        const st = await ack(s, 'redis-stats');
        assert.ok(st.cluster && st.primaries === 3 && st.connected, JSON.stringify(st));
      }
    });

    it('a broadcast from any node reaches every node, with its entry id as the offset', async () => {
      for (const [i, from] of [cA, cB, cC].entries()) {
        const got = Promise.all([cA, cB, cC].map(s => next(s, 'hi')));
        await ack(from, 'emit', 'hi', { from: i });
        const offsets = (await got).map(args => { const [rest, off] = split(args); assert.deepEqual(rest, [{ from: i }]); return off; });
        assert.match(offsets[0], OFFSET);
        assert.deepEqual(offsets, [offsets[0], offsets[0], offsets[0]]);
        const [entry] = await probe.xRange('socket.io', offsets[0], offsets[0]);
        assert.equal(entry?.message.type, '3');
      }
      // the stream lives on its slot's primary
      const slot = await slotOf('socket.io');
      const owner = await ownerOf(slot);
      assert.equal(Number(await cmd(owner, 'EXISTS', 'socket.io')), 1);
      for (let i = 0; i < 3; i++) if (i !== owner) assert.equal(Number(await cmd(i, 'CLUSTER', 'COUNTKEYSINSLOT', slot)), 0);
    });

    it('clients recover across nodes in every direction', async () => {
      // session keys land on the primaries their pids hash to, mostly not the stream's
      let e = rootEmits('socket.io', [cB, cC, cA], 'a2c');
      await recoverAcross(r, { from: urlA, to: urlC, ...e, label: 'wsio to node' });
      e = rootEmits('socket.io', [cA, cB, cC], 'c2b');
      await recoverAcross(r, { from: urlC, to: urlB, ...e, label: 'node to wsio' });
      e = rootEmits('socket.io', [cC, cA, cB], 'b2a');
      await recoverAcross(r, { from: urlB, to: urlA, ...e, label: 'wsio to wsio' });
    });

    // Moves slot (and every key in it) from primary src to dst; mid(), if given, runs while the keys are on
    // dst and the slot is still src's (-ASK there).
    const moveSlot = (slot, src, dst, mid) => cl.moveSlot(slot, src, dst, [0, 1, 2], mid);

    it('a session whose slot moved since the node last read the topology is restored there', async () => {
      const { s } = await leaveWithOffset(urlA, cC, probe, 'moved session');
      const key = `sio:session:${s._pid}`;
      const seen = [];
      s.on('missed', (...args) => seen.push(split(args)[0][0]));
      await ack(cC, 'to', 'rr', 'missed', 'while-away');
      await until('the entry in the stream', async () =>
        (await probe.xRevRange('socket.io', '+', '-', { COUNT: 1 }))[0]?.message.data.includes('while-away'), 5000);
      // B reads the topology every 10 s: it meets the move first as a -MOVED to its GETDEL
      const slot = await slotOf(key);
      const src = await ownerOf(slot);
      await moveSlot(slot, src, (src + 1) % 3);
      s.io.uri = urlB;
      s.connect();
      await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'reconnect');
      assert.equal(s.recovered, true, 'recovered after the session\'s slot moved');
      await until('the missed broadcast', async () => seen.length >= 1, 3000).catch(() => {});
      assert.deepEqual(seen, ['while-away']);
      s.disconnect();
    });

    it('the stream\'s slot moves to another primary with its key: broadcasts made meanwhile arrive, delivery and recovery resume', async () => {
      const slot = await slotOf('socket.io');
      const src = await ownerOf(slot);
      const dst = (src + 1) % 3;
      const before = await ack(cA, 'redis-stats');
      const length = Number(await cmd(src, 'XLEN', 'socket.io'));
      // while the stream is on dst and its slot still src's, each node broadcasts once (-ASK for XADD on src)
      const during = [cA, cB, cC].map(s => collect(s, 'mid', 6000));
      await moveSlot(slot, src, dst, async () => {
        for (const [i, from] of [cA, cB, cC].entries()) await ack(from, 'emit', 'mid', i);
      });
      await until('the three entries made during the move in the stream', async () =>
        Number(await cmd(dst, 'XLEN', 'socket.io')) === length + 3, 3000);
      let n = 0;
      for (const [i, from] of [cA, cB, cC].entries())
        await until(`io.emit from node ${i} reaches every node after the move`,
                    () => delivered(from, [cA, cB, cC], `moved-${++n}`), 10000);
      const after = await ack(cA, 'redis-stats');
      assert.ok(after.redirects > before.redirects || after.refreshes > before.refreshes, 'the move was noticed');
      // each of them once on every node, with one offset
      const mids = await Promise.all(during);
      for (let i = 0; i < 3; i++) {
        const runs = mids.map(g => g.filter(([x]) => x === i));
        assert.deepEqual(runs.map(g => g.length), [1, 1, 1], `the broadcast of node ${i} made during the move`);
        assert.ok(runs.every(g => OFFSET.test(g[0][1]) && g[0][1] === runs[0][0][1]), `node ${i}'s offsets`);
      }
      const e = rootEmits('socket.io', [cC, cB, cA], 'moved');
      await recoverAcross(r, { from: urlA, to: urlB, ...e, label: 'after the move' });
    });

    it('the stream\'s primary dies and its replica takes over: delivery and recovery resume on the wsio nodes', async () => {
      const slot = await slotOf('socket.io');
      const victim = await ownerOf(slot);
      const live = [0, 1, 2].filter(i => i !== victim);
      const replica = await cl.addReplica(victim, [victim, ...live]);
      // a client of A leaves before the failover; what it misses on both sides of it must come back
      const { s } = await leaveWithOffset(urlA, cB, probe, 'before the failover');
      const seen = [];
      s.on('missed', (...args) => seen.push(split(args)[0][0]));
      await ack(cB, 'emit', 'missed', 'before-failover');
      await until('the entry on the primary', async () =>
        JSON.stringify(await cmd(victim, 'XREVRANGE', 'socket.io', '+', '-', 'COUNT', 1)).includes('before-failover'), 5000);
      // every write so far on the replica too (the session's primary is not the one that dies, or is)
      assert.equal(Number(await cmd(victim, 'WAIT', 1, 2000)), 1);
      await cl.failOver(victim, replica, slot, [...live, replica]);
      // node-redis 4.7's cluster client is not under test across a failover (see test_redis_cluster.mjs)
      let n = 0;
      for (const [i, from] of [cA, cB].entries())
        await until(`io.emit from wsio node ${i} reaches both after the failover`,
                    () => delivered(from, [cA, cB], `failover-${++n}`), 6000);
      await ack(cA, 'to', 'rr', 'missed', 'after-failover');
      await until('the entry on the new primary', async () =>
        JSON.stringify(await cmd(replica, 'XREVRANGE', 'socket.io', '+', '-', 'COUNT', 1)).includes('after-failover'), 5000);
      s.io.uri = urlB;
      s.connect();
      await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'reconnect after the failover');
      assert.equal(s.recovered, true);
      await until('the missed broadcasts', async () => seen.length >= 2, 3000).catch(() => {});
      await quiet(300);
      assert.deepEqual(seen, ['before-failover', 'after-failover']);
      for (const c of [cA, cB]) {
        const st = await ack(c, 'redis-stats');
        assert.equal(st.connected, true);
        assert.equal(st.primaries, 3, 'the dead primary left the topology');
      }
    });
  });
}

if (TOPOLOGY === 'sentinel') {
  describe('Redis streams through Sentinel: two wsio nodes, a master, a replica and three sentinels', () => {
    const NAME = 'mymaster';
    const admin = new RedisAdmin();
    const sentinels = [];
    let master, replica, masterPort, replicaPort, url, cA, cB, urlA, urlB;
    const client = port => admin.client(port);
    const cmd = (port, ...args) => admin.cmd(port, ...args);
    const masterOf = async port => (await cmd(port, 'SENTINEL', 'get-master-addr-by-name', NAME)).join(':');
    let current;  // the master's port, as the test knows it
    const r = { probe: () => client(current), get ticker() { return cB; } };

    before(async () => {
      const set = await startSentinels({ redisServer: REDIS_SERVER, startServer: redisServer, dir, name: NAME, admin });
      ({ masterPort, replicaPort, master, replica, url } = set);
      sentinels.push(...set.sentinels);
      current = masterPort;
      urlA = await wsioNode(url);
      urlB = await wsioNode(url, '--degraded'); // the sentinels asked by the running link, not at start
      cA = await open(urlA);
      cB = await open(urlB, { transports: ['polling'] });
    });
    after(async () => {
      for (const s of clients) s.disconnect();
      await Promise.all(procs.map(p => stopProc(p)));
      await admin.close();
      await Promise.all([master, replica, ...sentinels.map(s => s.proc)].map(p => stopProc(p)));
    });

    it('both nodes find the master and share broadcasts, with the entry id as the offset', async () => {
      for (const s of [cA, cB]) {
        await until('connected through Sentinel', async () => {
          const st = await ack(s, 'redis-stats');
          return (st.sentinel && st.connected && !st.cluster) || JSON.stringify(st);
        }, 5000);
      }
      for (const s of [cA, cB]) await until('server count 2', async () => (await ack(s, 'server-count')) === 2);
      for (const [i, from] of [cA, cB].entries()) {
        await until(`io.emit from node ${i} reaches both`, () => delivered(from, [cA, cB], `first-${i}`), 5000);
      }
      const [last] = await (await client(masterPort)).xRevRange('socket.io', '+', '-', { COUNT: 1 });
      assert.ok(last?.message.data.includes('first-1'));
    });

    it('clients recover across the nodes both ways', async () => {
      let e = rootEmits('socket.io', [cB, cA, cB], 'a2b');
      await recoverAcross({ ...r, ticker: cB }, { from: urlA, to: urlB, ...e, label: 'a to b' });
      e = rootEmits('socket.io', [cA, cB, cA], 'b2a');
      await recoverAcross({ ...r, ticker: cA }, { from: urlB, to: urlA, ...e, label: 'b to a' });
    });

    it('the master dies: delivery resumes, and a client gone before comes back with all it missed', async () => {
      const m = await client(masterPort);
      const { s } = await leaveWithOffset(urlA, cB, m, 'before the failover');
      const seen = [];
      s.on('missed', (...args) => seen.push(split(args)[0][0]));
      await ack(cB, 'emit', 'missed', 'before-failover');
      await until('the entry on the master', async () =>
        (await m.xRevRange('socket.io', '+', '-', { COUNT: 1 }))[0]?.message.data.includes('before-failover') ?? false, 5000);
      assert.equal(Number(await cmd(masterPort, 'WAIT', 1, 2000)), 1);
      const before = await ack(cA, 'redis-stats');
      await stopProc(master, 'SIGKILL');
      await until('the sentinels promote the replica', async () => {
        for (const { port } of sentinels) {
          const at = await masterOf(port);
          if (at !== `127.0.0.1:${replicaPort}`) return `sentinel ${port} says ${at}`;
        }
        return true;
      }, 20000);
      current = replicaPort;
      let n = 0;
      for (const [i, from] of [cA, cB].entries())
        await until(`io.emit from node ${i} reaches both after the failover`,
                    () => delivered(from, [cA, cB], `after-${i}-${++n}`), 6000);
      for (const c of [cA, cB]) {
        const st = await ack(c, 'redis-stats');
        assert.equal(st.connected, true);
        assert.equal(st.switches, 1, 'one failover followed');
      }
      assert.ok((await ack(cA, 'redis-stats')).switches > before.switches);
      await ack(cA, 'to', 'rr', 'missed', 'after-failover');
      const p = await client(replicaPort);
      await until('the entry on the new master', async () =>
        (await p.xRevRange('socket.io', '+', '-', { COUNT: 1 }))[0]?.message.data.includes('after-failover') ?? false, 5000);
      s.io.uri = urlB;
      s.connect();
      await within(new Promise(resolve => s.once('connect', resolve)), 5000, 'reconnect after the failover');
      assert.equal(s.recovered, true);
      await until('the missed broadcasts', async () => seen.length >= 2, 3000).catch(() => {});
      await quiet(300);
      assert.deepEqual(seen, ['before-failover', 'after-failover']);
      // and a recovery wholly after the failover
      const e = rootEmits('socket.io', [cA, cB, cA], 'late');
      await recoverAcross({ ...r, ticker: cA }, { from: urlB, to: urlA, ...e, label: 'after the failover' });
    });
  });
}

if (TOPOLOGY === 'count') {
  describe('Redis streams with streamCount 3: two wsio nodes and a Node node, namespaces on three streams', () => {
    let redis, probe, urlA, urlB, urlC;
    const STREAM = { '/': 'socket.io-2', '/chat': 'socket.io-1', '/news': 'socket.io-0' };
    const cs = {}; // namespace -> [client of A, of B, of C]

    before(async () => {
      const port = await freePort();
      redis = await redisServer(port);
      const url = `redis://127.0.0.1:${port}`;
      probe = createClient({ url });
      probe.on('error', () => {});
      await probe.connect();
      urlA = await wsioNode(url, '--stream-count', '3');
      urlB = await wsioNode(url, '--stream-count', '3');
      urlC = await nodeNode({ REDIS_URL: url, STREAM_COUNT: '3' });
      for (const nsp of Object.keys(STREAM)) {
        const path = nsp === '/' ? '' : nsp;
        cs[nsp] = [await open(`${urlA}${path}`), await open(`${urlB}${path}`, { transports: ['polling'] }),
                   await open(`${urlC}${path}`)];
      }
    });
    after(async () => {
      for (const s of clients) s.disconnect();
      await Promise.all(procs.map(p => stopProc(p)));
      await probe.quit().catch(() => {});
      await stopProc(redis);
    });

    it('every node counts three servers', async () => {
      for (const s of cs['/']) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
    });

    it('each namespace\'s broadcasts go to its own stream and reach every node', async () => {
      for (const [nsp, stream] of Object.entries(STREAM)) {
        for (const [i, from] of cs[nsp].entries()) {
          const tag = `${nsp}-${i}`;
          const got = Promise.all(cs[nsp].map(s => next(s, 'hi')));
          const elsewhere = Object.keys(STREAM).filter(n => n !== nsp).flatMap(n => cs[n]).map(s => collect(s, 'hi', 400));
          await ack(from, 'emit', 'hi', tag);
          const offsets = (await got).map(args => { const [rest, off] = split(args); assert.deepEqual(rest, [tag]); return off; });
          assert.match(offsets[0], OFFSET);
          assert.deepEqual(offsets, [offsets[0], offsets[0], offsets[0]], `${tag}: one offset`);
          const [entry] = await probe.xRange(stream, offsets[0], offsets[0]);
          assert.equal(entry?.message.nsp, nsp, `${tag}: in ${stream}`);
          assert.ok(entry.message.data.includes(tag));
          assert.deepEqual((await Promise.all(elsewhere)).map(g => g.length), Array(6).fill(0), `${tag}: its namespace only`);
        }
      }
      assert.equal(Number(await probe.exists('socket.io')), 0, 'no unsuffixed stream');
      for (const stream of Object.values(STREAM)) assert.ok(Number(await probe.xLen(stream)) >= 3, stream);
    });

    it('rooms in a namespace on stream 0 hold across nodes', async () => {
      const [a, b, c] = cs['/news'];
      await ack(b, 'join', 'n1');
      await ack(c, 'join', 'n1');
      for (const from of [a, c]) {
        const got = [a, b, c].map(s => collect(s, 'room-ev', 600));
        await ack(from, 'to', 'n1', 'room-ev', 1);
        assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1, 1]);
      }
    });

    // emits in the client's namespace, plus one in "/" it must not get
    const nspEmits = (nsp, [c1, c2], label) => ({
      emits: [[c1, STREAM[nsp], 'emit', 'missed', `${label}-all`], [cs['/'][2], STREAM['/'], 'emit', 'missed', `${label}-root`],
              [c2, STREAM[nsp], 'to', 'rr', 'missed', `${label}-room`], [c1, STREAM[nsp], 'to', 'other', 'missed', `${label}-other`],
              [c2, STREAM[nsp], 'emit', 'missed', `${label}-all-2`]],
      want: [`${label}-all`, `${label}-room`, `${label}-all-2`],
    });

    it('a client of /chat (stream 1) recovers across nodes both ways', async () => {
      const [a, b, c] = cs['/chat'];
      await recoverAcross({ probe, ticker: b }, { from: urlA, to: urlC, nsp: '/chat', ...nspEmits('/chat', [b, c], 'chat-a2c'),
                                                  label: '/chat wsio to node' });
      await recoverAcross({ probe, ticker: a }, { from: urlC, to: urlB, nsp: '/chat', ...nspEmits('/chat', [a, b], 'chat-c2b'),
                                                  label: '/chat node to wsio' });
    });

    it('a client of /news (stream 0) recovers across nodes', async () => {
      const [a, b, c] = cs['/news'];
      await recoverAcross({ probe, ticker: c }, { from: urlB, to: urlA, nsp: '/news', ...nspEmits('/news', [c, a], 'news-b2a'),
                                                  label: '/news wsio to wsio' });
      await recoverAcross({ probe, ticker: a }, { from: urlA, to: urlC, nsp: '/news', ...nspEmits('/news', [b, a], 'news-a2c'),
                                                  label: '/news wsio to node' });
    });
  });
}
