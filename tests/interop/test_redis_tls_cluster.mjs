// Interop: the Redis adapter over a Redis Cluster whose nodes speak only TLS, to clients and to each
// other (tls-cluster yes). The test makes a throwaway CA (openssl, in a temp dir), starts three primaries
// on TLS ports, joins them with redis-cli --tls --cluster create, then two wsio nodes given different
// seeds (redis_node with the C API's TLS fields, the wsio program with [redis] flags) and a Node socket.io
// server on node-redis createCluster clients that trust the same CA. Sharded pub/sub (REDIS_MODE=sharded):
// each channel goes to the primary owning its slot, over a TLS connection to that primary. Broadcasts cross
// every node both ways, and rooms whose channels live on two different primaries reach their members only.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ack, until, freePort, startProc, stopProc, openClient, collect } from './redis_harness.mjs';
import { REDIS_CLI, tempDir, makePki, startRedis, cNode, programNode, metric, deliveredTo, ioEmit }
  from './redis_tls_harness.mjs';

const MODE = process.env.REDIS_MODE || 'sharded';
const SHARDED = MODE === 'sharded';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const dir = tempDir('wsio-redis-tls-cluster-');
const pki = makePki(dir);

describe(`Redis Cluster over TLS (${MODE}): two wsio nodes and a Node server over 3 primaries`, () => {
  const ports = [];
  const redis = [];
  const procs = [];
  const clients = [];
  let cA, cB, cC, nodeB;
  const rooms = [];
  const open = (u, opts) => openClient(clients, u, opts);
  const cli = (port, ...args) => execFileSync(REDIS_CLI, ['--tls', '--cacert', pki.ca, '-h', '127.0.0.1', '-p', String(port),
                                                          ...args], { encoding: 'utf8' }).trim();
  // The port of the primary serving the channel of room (sharded: KEY#/#room#).
  function ownerOf(room) {
    const slot = Number(cli(ports[0], 'CLUSTER', 'KEYSLOT', `socket.io#/#${room}#`));
    for (const line of cli(ports[0], 'CLUSTER', 'NODES').split('\n')) {
      const f = line.split(' ');
      if (!f[2].includes('master')) continue;
      for (const r of f.slice(8)) {
        const [a, b = a] = r.split('-').map(Number);
        if (slot >= a && slot <= b) return Number(f[1].split(':')[1].split('@')[0]);
      }
    }
    return -1;
  }

  before(async () => {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      redis.push(await startRedis(`redis:${port}`, port, pki, [
        '--tls-cluster', 'yes', '--tls-replication', 'yes', '--cluster-enabled', 'yes', '--cluster-port', String(bus),
        '--cluster-node-timeout', '2000', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir]));
    }
    execFileSync(REDIS_CLI, ['--tls', '--cacert', pki.ca, '--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`),
                             '--cluster-yes'], { stdio: 'ignore' });
    await until('the cluster ok on every node', async () =>
      ports.every(p => cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok')) || 'not yet', 20000);
    const a = await cNode(['--redis', `rediss://127.0.0.1:${ports[0]}`, '--tls-ca', pki.ca,
                           ...(SHARDED ? ['--sharded'] : [])]);
    procs.push(a.proc);
    nodeB = await programNode(['--redis', `rediss://127.0.0.1:${ports[1]}`, '--redis-tls-ca', pki.ca,
                               ...(SHARDED ? ['--redis-sharded', 'true'] : [])]);
    procs.push(nodeB.proc);
    const c = await startProc('node', process.execPath, [NODE_SERVER],
                              { REDIS_URL: `rediss://127.0.0.1:${ports[2]}`, REDIS_MODE: MODE, REDIS_CLUSTER: '1',
                                REDIS_TLS_CA: pki.ca }, /^listening on .*:(\d+)$/);
    procs.push(c.proc);
    cA = await open(a.url);
    cB = await open(nodeB.url);
    cC = await open(`http://127.0.0.1:${c.m[1]}`);
    // two rooms whose channels live on two different primaries
    const owners = new Map();
    for (let i = 0; i < 50 && rooms.length < 2; i++) {
      const o = ownerOf(`room${i}`);
      if (o > 0 && !owners.has(o)) {
        owners.set(o, true);
        rooms.push(`room${i}`);
      }
    }
    assert.equal(rooms.length, 2);
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all(procs.map(p => stopProc(p)));
    await Promise.all(redis.map(p => stopProc(p)));
  });

  it('the wsio nodes see the cluster through TLS and broadcasts cross every node both ways', async () => {
    await until('A in cluster mode over TLS', async () => {
      const st = await ack(cA, 'redis-stats');
      return (st.cluster && st.connected && st.primaries === 3) || JSON.stringify(st);
    }, 8000);
    await until('B in cluster mode over TLS', async () =>
      (await metric(nodeB.url, 'wsio_redis_cluster_primaries')) === 3 &&
      (await metric(nodeB.url, 'wsio_redis_connected')) === 1 || 'not yet', 8000);
    assert.match(nodeB.proc.stderrText, /redis: adapter on 127\.0\.0\.1:\d+ \(Redis Cluster\) over TLS/);
    assert.match(nodeB.proc.stderrText, /redis publish 127\.0\.0\.1:\d+: connected to 127\.0\.0\.1:\d+ over TLSv1\.3/);
    for (const [from, tag] of [[cA, 'a'], [cC, 'c']])
      await until(`io.emit from ${tag} reaches all`, () => deliveredTo([cA, cB, cC], 'hi', tag, ioEmit(from, tag)), 8000);
    await until('B\'s broadcast reaches A and C',
                () => deliveredTo([cA, cC], 'clientMsg', 'b', async () => cB.emit('serverMsg', 'b')), 8000);
  });

  it('rooms on two primaries reach their members only', async () => {
    const [r1, r2] = rooms;
    assert.equal(await ack(cB, 'join', r1), 'ok');
    assert.equal(await ack(cB, 'join', r2), 'ok');
    assert.equal(await ack(cC, 'join', r2), true);
    for (const [room, members] of [[r1, [0, 1, 0]], [r2, [0, 1, 1]]]) {
      await until(`to(${room}) from A`, async () => {
        const got = [cA, cB, cC].map(s => collect(s, 'room-ev', 600));
        await ack(cA, 'to', room, 'room-ev', room);
        const counts = (await Promise.all(got)).map(g => g.length);
        return JSON.stringify(counts) === JSON.stringify(members) || `${room}: ${JSON.stringify(counts)}`;
      }, 8000);
    }
  });
});
