// Interop: wsio's Redis adapter through Redis Sentinel. The test starts a master, a replica and three
// sentinels itself (redis-server --sentinel on free ports in a temp dir), then two wsio nodes (redis_node)
// given only the sentinels' addresses and the master's name (redis+sentinel://.../mymaster).
// REDIS_MODE=classic or sharded. Then: a sentinel dies (the nodes keep asking the others), the master is
// killed and its replica promoted, and delivery between the nodes must resume within seconds of the
// switch; the old master, back as a replica, must not take the nodes back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisAdmin, startSentinels } from './redis_fixtures.mjs';
import { within, ack, collect, until, spawnTracked, startProc, stopProc, openClient, onExit }
  from './redis_harness.mjs';

const MODE = process.env.REDIS_MODE || 'classic';
const SHARDED = MODE === 'sharded';
const NODE_BIN = process.env.REDIS_NODE;
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const dir = mkdtempSync(join(tmpdir(), 'wsio-redis-sentinel-'));
onExit(() => rmSync(dir, { recursive: true, force: true }));
const NAME = 'mymaster';

describe(`Redis Sentinel adapter (${MODE}): two wsio nodes, a master, a replica and three sentinels`, () => {
  const procs = [];     // wsio nodes
  const clients = [];
  const admin = new RedisAdmin();
  let master, replica, masterPort, replicaPort;
  const sentinels = []; // { port, proc }
  let url, cA, cB, urlA, urlB;

  const open = (u, opts) => openClient(clients, u, opts);
  const client = port => admin.client(port);
  const cmd = (port, ...args) => admin.cmd(port, ...args);
  const redisServer = (port, ...more) => startProc(`redis:${port}`, REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...more,
  ], {}, /Ready to accept/).then(r => r.proc);
  // What a sentinel says the master is, as "host:port".
  const masterOf = async port => (await cmd(port, 'SENTINEL', 'get-master-addr-by-name', NAME)).join(':');
  const wsioNode = (...more) => startProc('wsio', NODE_BIN, ['--redis', url, ...(SHARDED ? ['--sharded'] : []),
                                                            ...more], {}, /^listening on .*:(\d+)$/);
  // io.emit from each of from reaches every client of to, once.
  async function delivered(from, to, tag) {
    const got = to.map(s => collect(s, 'ping', 500));
    await ack(from, 'emit', 'ping', tag);
    const counts = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag).length);
    return counts.every(c => c === 1) || `received ${JSON.stringify(counts)}`;
  }

  before(async () => {
    const set = await startSentinels({ redisServer: REDIS_SERVER, startServer: redisServer, dir, name: NAME, admin });
    ({ masterPort, replicaPort, master, replica, url } = set);
    sentinels.push(...set.sentinels);
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all(procs.map(p => stopProc(p)));
    await admin.close();
    await Promise.all([master, replica, ...sentinels.map(s => s.proc)].map(p => stopProc(p)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a master no sentinel knows is refused at start with a clear error', async () => {
    const p = spawnTracked('wsio', NODE_BIN, ['--redis', url.replace(`/${NAME}`, '/nosuch')]);
    assert.equal(await within(p.exited, 10000, 'wsio to give up'), 1);
    assert.match(p.stderrText, /cannot find the master nosuch: sentinel 127\.0\.0\.1:\d+ does not know a master named nosuch/);
  });

  it('two nodes find the master through the sentinels and share broadcasts', async () => {
    let r = await wsioNode();
    procs.push(r.proc);
    urlA = `http://127.0.0.1:${r.m[1]}`;
    r = await wsioNode('--degraded'); // not asked at start: the sentinels are asked by the running link
    procs.push(r.proc);
    urlB = `http://127.0.0.1:${r.m[1]}`;
    cA = await open(urlA);
    cB = await open(urlB, { transports: ['polling'] });
    for (const s of [cA, cB]) {
      await until('connected through Sentinel', async () => {
        const st = await ack(s, 'redis-stats');
        return (st.sentinel && st.connected && !st.cluster) || JSON.stringify(st);
      }, 5000);
    }
    for (const [from, i] of [[cA, 0], [cB, 1]]) await until(`io.emit from node ${i} reaches both`,
                                                             () => delivered(from, [cA, cB], `first-${i}`), 5000);
    const got = [cA, cB].map(s => collect(s, 'room-hi', 600));
    await ack(cB, 'join', 'r1');
    await ack(cA, 'to', 'r1', 'room-hi', 1);
    assert.deepEqual((await Promise.all(got)).map(g => g.length), [0, 1]);
  });

  it('the master dies, its replica is promoted: the nodes follow within seconds, past a dead sentinel', async () => {
    // The first sentinel of the URL goes first: the nodes must ask the others.
    await stopProc(sentinels[0].proc, 'SIGKILL');
    const alive = sentinels.slice(1);
    const before = await ack(cA, 'redis-stats');
    await stopProc(master, 'SIGKILL');
    await until('the sentinels promote the replica', async () => {
      for (const { port } of alive) {
        const m = await masterOf(port);
        if (m !== `127.0.0.1:${replicaPort}`) return `sentinel ${port} says ${m}`;
      }
      return true;
    }, 20000);
    // The nodes are told (+switch-master) or ask every second while their master is away.
    let n = 0;
    for (const [from, i] of [[cA, 0], [cB, 1]])
      await until(`io.emit from node ${i} reaches both after the failover`,
                  () => delivered(from, [cA, cB], `after-${i}-${++n}`), 4000);
    for (const s of [cA, cB]) {
      const st = await ack(s, 'redis-stats');
      assert.equal(st.connected, true);
      assert.equal(st.switches, 1, 'one failover followed');
    }
    const after = await ack(cA, 'redis-stats');
    assert.ok(after.switches > before.switches);
  });

  it('the old master, back as a replica, does not take the nodes back', async () => {
    master = await redisServer(masterPort);
    await until('the sentinels make the old master a replica of the new one', async () => {
      const role = await cmd(masterPort, 'ROLE');
      return (role[0] === 'slave' && Number(role[2]) === replicaPort) || JSON.stringify(role);
    }, 20000);
    for (const [from, i] of [[cA, 0], [cB, 1]])
      await until(`io.emit from node ${i} still reaches both`, () => delivered(from, [cA, cB], `late-${i}`), 4000);
    for (const s of [cA, cB]) assert.equal((await ack(s, 'redis-stats')).switches, 1);
  });
});
