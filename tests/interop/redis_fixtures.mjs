// Redis set-ups the interop tests share: admin clients by port (RedisAdmin), a master with a replica and
// three sentinels (startSentinels), a Redis Cluster a test starts, grows, shrinks and stops (ClusterFixture),
// and the Redis servers a process is connected to (connectedPorts). Used by test_redis_cluster.mjs,
// test_redis_cluster_grow.mjs, test_redis_sentinel.mjs and test_redis_streams_topologies.mjs.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { within, until, freePort, spawnTracked, startProc, stopProc } from './redis_harness.mjs';

// A node-redis client per port, made on first use and made again once closed (a sentinel reconfiguring a
// server kills its clients).
export class RedisAdmin {
  constructor() { this.clients = new Map(); }
  async client(port) {
    const m = this.clients;
    if (m.has(port) && !m.get(port).isOpen) m.delete(port);
    if (!m.has(port)) {
      const c = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
      c.on('error', () => {});
      await c.connect();
      m.set(port, c);
    }
    return m.get(port);
  }
  async cmd(port, ...args) { return (await this.client(port)).sendCommand(args.map(String)); }
  async close() { await Promise.all([...this.clients.values()].map(c => c.disconnect().catch(() => {}))); }
}

// A master, its replica, and three sentinels watching it as `name` (a quorum of two; the master counts as
// down after a second), waited for until the replica is in sync and every sentinel knows it and the two
// other sentinels. startServer(port, ...args) starts a redis-server and resolves to its process; admin is
// a RedisAdmin. Resolves to { masterPort, replicaPort, master, replica, sentinels: [{ port, proc }], url }.
export async function startSentinels({ redisServer, startServer, dir, name, admin }) {
  const masterPort = await freePort(), replicaPort = await freePort();
  const master = await startServer(masterPort);
  const replica = await startServer(replicaPort, '--replicaof', '127.0.0.1', String(masterPort));
  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
                         `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
                         `sentinel down-after-milliseconds ${name} 1000`,
                         `sentinel failover-timeout ${name} 4000`, ''].join('\n'));
    const proc = (await startProc(`sentinel:${port}`, redisServer, [conf, '--sentinel'], {},
                                  /\+monitor master/)).proc;
    sentinels.push({ port, proc });
  }
  const url = `redis+sentinel://${sentinels.map(s => `127.0.0.1:${s.port}`).join(',')}/${name}`;
  await until('the replica in sync, and every sentinel knows it and the two other sentinels', async () => {
    if (!String(await admin.cmd(replicaPort, 'INFO', 'replication')).includes('master_link_status:up')) return false;
    for (const { port } of sentinels) {
      if ((await admin.cmd(port, 'SENTINEL', 'replicas', name)).length !== 1) return `sentinel ${port}: no replica yet`;
      if ((await admin.cmd(port, 'SENTINEL', 'sentinels', name)).length !== 2) return `sentinel ${port}: alone`;
    }
    return true;
  }, 20000);
  return { masterPort, replicaPort, master, replica, sentinels, url };
}

// The remote ports of the established TCP connections of process pid (Linux: its socket descriptors looked
// up in /proc/net/tcp and tcp6), one entry per connection.
export function connectedPorts(pid) {
  // '' for a descriptor closed meanwhile
  const target = fd => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } };
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(target(fd));
    if (m) inodes.add(m[1]);
  }
  const ports = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (the 10th field); state 01 is ESTABLISHED
      if (f.length > 9 && f[3] === '01' && inodes.has(f[9])) ports.push(parseInt(f[2].split(':')[1], 16));
    }
  }
  return ports;
}

// A Redis Cluster: redis-server processes on free ports (each with a cluster bus port of its own), a
// node-redis admin client per node, the slot questions the tests ask, a replica added to a primary for
// failover tests, primaries added and removed, and slots moved between them.
export class ClusterFixture {
  // redisServer, redisCli: the programs; dir: where the nodes keep their cluster configuration files.
  constructor({ redisServer, redisCli, dir }) {
    this.redisServer = redisServer;
    this.redisCli = redisCli;
    this.dir = dir;
    this.ports = [];
    this.buses = [];   // their cluster bus ports
    this.redis = [];   // redis-server processes
    this.admin = [];   // a node-redis client per node
    this.taken = new Set();
  }

  // A free port no node of this cluster has taken yet.
  async freshPort() {
    let p;
    do p = await freePort(); while (this.taken.has(p));
    this.taken.add(p);
    return p;
  }

  cmd(i, ...args) { return this.admin[i].sendCommand(args.map(String)); }
  async slotOf(name) { return Number(await this.cmd(0, 'CLUSTER', 'KEYSLOT', name)); }

  // The index (in ports) of the primary that serves slot, as node i sees it; -1 when none does.
  async ownerOf(slot, i = 0) {
    for (const [start, end, [, port]] of await this.cmd(i, 'CLUSTER', 'SLOTS'))
      if (slot >= start && slot <= end) return this.ports.indexOf(Number(port));
    return -1;
  }

  // A cluster-enabled node with an admin client; its index. A short node timeout lets a replica take over
  // from a dead primary within a few seconds. more: further redis-server arguments.
  async startNode(...more) {
    const port = await this.freshPort(), bus = await this.freshPort();
    this.ports.push(port);
    this.buses.push(bus);
    this.redis.push((await startProc(`redis:${port}`, this.redisServer, [
      '--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      '--cluster-node-timeout', '1500', '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
      '--dir', this.dir, '--save', '', '--appendonly', 'no', ...more,
    ], {}, /Ready to accept/)).proc);
    const c = createClient({ url: `redis://127.0.0.1:${port}` });
    c.on('error', () => {});
    await c.connect();
    this.admin.push(c);
    return this.ports.length - 1;
  }

  // The nodes started so far made one cluster of primaries, waited for until every node says ok.
  async create() {
    const create = spawnTracked('redis-cli', this.redisCli, ['--cluster', 'create',
      ...this.ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    assert.equal(await within(create.exited, 15000, 'redis-cli --cluster create'), 0);
    const n = this.ports.length;
    await until('cluster_state:ok on every node', async () => {
      for (let i = 0; i < n; i++) {
        if (!String(await this.cmd(i, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        if ((await this.cmd(i, 'CLUSTER', 'SLOTS')).length !== n) return false;
      }
      return true;
    });
  }

  // A new node made a replica of primary `victim`, in sync and known to every primary in `primaries`;
  // its index.
  async addReplica(victim, primaries) {
    const victimId = String(await this.cmd(victim, 'CLUSTER', 'MYID'));
    const replica = await this.startNode();
    const replicaId = String(await this.cmd(replica, 'CLUSTER', 'MYID'));
    await this.cmd(replica, 'CLUSTER', 'MEET', '127.0.0.1', this.ports[victim], this.buses[victim]);
    await until('the new node known to the cluster', async () =>
      String(await this.cmd(replica, 'CLUSTER', 'NODES')).includes(victimId), 5000);
    await this.cmd(replica, 'CLUSTER', 'REPLICATE', victimId);
    await until('the replica in sync and known to every primary', async () => {
      if (!String(await this.cmd(replica, 'INFO', 'replication')).includes('master_link_status:up')) return false;
      for (const i of primaries)
        if (!String(await this.cmd(i, 'CLUSTER', 'NODES')).split('\n').some(l => l.startsWith(replicaId) &&
                                                                            l.includes(`slave ${victimId}`)))
          return `primary ${i} does not list the replica yet`;
      return true;
    }, 10000);
    return replica;
  }

  // Primary `victim` killed; waits until every node of `nodes` is ok again and sees `replica` serve slot.
  async failOver(victim, replica, slot, nodes) {
    await stopProc(this.redis[victim], 'SIGKILL');
    await until('the replica serves the slot and the cluster is ok again', async () => {
      for (const i of nodes) {
        if (!String(await this.cmd(i, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return `node ${i} not ok`;
        if ((await this.ownerOf(slot, i)) !== replica) return `node ${i} has not seen the failover`;
      }
      return true;
    }, 20000);
  }

  // A new node made a primary without slots, known to every node of `nodes`; its index. It stays a primary
  // when its last slot moves away (Redis would make it a replica of the slot's new owner), until removed.
  async addPrimary(nodes) {
    const i = await this.startNode('--cluster-allow-replica-migration', 'no');
    const id = String(await this.cmd(i, 'CLUSTER', 'MYID'));
    await this.cmd(i, 'CLUSTER', 'MEET', '127.0.0.1', this.ports[nodes[0]], this.buses[nodes[0]]);
    await until('the new primary known to every node', async () => {
      for (const k of nodes) {
        const line = String(await this.cmd(k, 'CLUSTER', 'NODES')).split('\n').find(l => l.startsWith(id));
        if (!line || !/ master /.test(line) || !/ connected/.test(line)) return `node ${k} does not see it yet`;
      }
      return true;
    }, 10000);
    return i;
  }

  // Slot moved from primary src to dst with every key in it (MIGRATE), SETSLOT NODE told to dst, src and the
  // rest of `nodes` (every primary), in that order; waits until each of `nodes` sees dst serve it. mid(), if
  // given, runs while the keys are on dst and the slot is still src's (-ASK there).
  async moveSlot(slot, src, dst, nodes, mid) {
    const [srcId, dstId] = [await this.cmd(src, 'CLUSTER', 'MYID'), await this.cmd(dst, 'CLUSTER', 'MYID')];
    await this.cmd(dst, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId);
    await this.cmd(src, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId);
    for (;;) {
      const keys = await this.cmd(src, 'CLUSTER', 'GETKEYSINSLOT', slot, 100);
      if (!keys.length) break;
      await this.cmd(src, 'MIGRATE', '127.0.0.1', this.ports[dst], '', 0, 5000, 'KEYS', ...keys);
    }
    await mid?.();
    for (const i of [dst, src, ...nodes.filter(k => k !== src && k !== dst)])
      await this.cmd(i, 'CLUSTER', 'SETSLOT', slot, 'NODE', dstId);
    await until(`slot ${slot} served by its new owner everywhere`, async () => {
      for (const i of nodes) if ((await this.ownerOf(slot, i)) !== dst) return false;
      return true;
    }, 5000);
  }

  // Node i, which serves no slot any more, taken out of the cluster as redis-cli --cluster del-node does:
  // forgotten by every node of `nodes`, then reset to a cluster of its own (it keeps running).
  async removeNode(i, nodes) {
    const id = String(await this.cmd(i, 'CLUSTER', 'MYID'));
    for (const k of nodes) await this.cmd(k, 'CLUSTER', 'FORGET', id);
    await this.cmd(i, 'CLUSTER', 'RESET', 'SOFT');
  }

  async stop() {
    await Promise.all(this.admin.map(c => c.disconnect().catch(() => {}))); // quit would wait for a dead node
    await Promise.all(this.redis.map(p => stopProc(p)));
  }
}
