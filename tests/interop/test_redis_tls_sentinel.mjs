// Interop: the Redis adapter through protected Redis Sentinels over TLS (rediss+sentinel://). The test
// makes a throwaway CA (openssl, in a temp dir) and starts, on TLS ports only, a master with a password
// (requirepass) and two sentinels that require a password of their own (requirepass, and sentinel
// auth-pass for the master), one of which also knows an ACL user. Two wsio nodes find the master through
// the sentinels: redis_node (the C API's sentinel_password, checked at start) and the wsio program
// ([redis] settings from a file, the password from WSIO_REDIS_SENTINEL_PASSWORD, degraded start: the
// running link asks the sentinels). Broadcasts cross both ways. Then the refusals: no sentinel password,
// a wrong one, the data password given to the sentinels, the sentinels' CA missing. Last, the failover of
// a protected master is followed: the replica is promoted, the nodes move there. REDIS_MODE=classic.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ack, until, freePort, startProc, stopProc, openClient } from './redis_harness.mjs';
import { NODE_BIN, WSIO, REDIS_SERVER, REDIS_CLI, tempDir, makePki, tlsArgs, startRedis, cNode, programNode,
         refusedAtStart, metric, deliveredTo, ioEmit } from './redis_tls_harness.mjs';

const dir = tempDir('wsio-redis-tls-sentinel-');
const pki = makePki(dir);
const NAME = 'mymaster';
const DATA_PW = 'data-pw';
const SENTINEL_PW = 'sentinel:pw/1';

describe('Redis adapter through protected sentinels over TLS', () => {
  let masterPort, replicaPort, master, replica, url, cA, cB, nodeB;
  const sentinels = []; // { port, proc }
  const procs = [];
  const clients = [];
  const open = (u, opts) => openClient(clients, u, opts);
  // redis-cli over TLS to port, with a password; the reply as text.
  const cli = (port, pw, ...args) => execFileSync(REDIS_CLI, ['--tls', '--cacert', pki.ca, '-h', '127.0.0.1', '-p',
                                                              String(port), '--no-auth-warning', '-a', pw, ...args],
                                                  { encoding: 'utf8' }).trim();
  const masterOf = port => cli(port, SENTINEL_PW, 'SENTINEL', 'get-master-addr-by-name', NAME).split('\n').join(':');

  before(async () => {
    [masterPort, replicaPort] = [await freePort(), await freePort()];
    const data = ['--requirepass', DATA_PW, '--masterauth', DATA_PW, '--tls-replication', 'yes'];
    master = await startRedis('master', masterPort, pki, data);
    replica = await startRedis('replica', replicaPort, pki, [...data, '--replicaof', '127.0.0.1', String(masterPort)]);
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      const args = tlsArgs(pki);
      const lines = [`tls-port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'tls-replication yes',
                     `requirepass "${SENTINEL_PW}"`, `sentinel announce-port ${port}`,
                     `sentinel sentinel-pass "${SENTINEL_PW}"`,
                     `sentinel monitor ${NAME} 127.0.0.1 ${masterPort} 1`, `sentinel auth-pass ${NAME} ${DATA_PW}`,
                     `sentinel down-after-milliseconds ${NAME} 1000`, `sentinel failover-timeout ${NAME} 4000`];
      for (let k = 0; k < args.length; k += 2) lines.push(`${args[k].slice(2)} ${args[k + 1]}`);
      if (i === 1) lines.push('user watcher on >watcher-pw allcommands allchannels');
      writeFileSync(conf, lines.join('\n') + '\n');
      const proc = (await startProc(`sentinel:${port}`, REDIS_SERVER, [conf, '--sentinel'], {}, /\+monitor master/)).proc;
      sentinels.push({ port, proc });
    }
    url = `rediss+sentinel://:${DATA_PW}@${sentinels.map(s => `127.0.0.1:${s.port}`).join(',')}/${NAME}`;
    await until('the replica in sync and known to the sentinels', async () => {
      if (!cli(replicaPort, DATA_PW, 'INFO', 'replication').includes('master_link_status:up')) return 'replica';
      for (const { port } of sentinels)
        if (!cli(port, SENTINEL_PW, 'SENTINEL', 'replicas', NAME).includes(String(replicaPort))) return `sentinel ${port}`;
      return true;
    }, 20000);
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all(procs.map(p => stopProc(p)));
    await Promise.all([master, replica, ...sentinels.map(s => s.proc)].map(p => stopProc(p)));
  });

  it('two nodes find the master through the protected sentinels and share broadcasts', async () => {
    const a = await cNode(['--redis', url, '--tls-ca', pki.ca, '--sentinel-password', SENTINEL_PW]);
    procs.push(a.proc);
    const conf = join(dir, 'wsio.conf');
    writeFileSync(conf, `[redis]\nurl = ${url}\ntls_ca = ${pki.ca}\ndegraded_start = true\n\n` +
                        '[route "serverMsg"]\nemit = clientMsg\nto = others\n');
    nodeB = await programNode(['--config', conf], { WSIO_REDIS_SENTINEL_PASSWORD: SENTINEL_PW });
    procs.push(nodeB.proc);
    cA = await open(a.url);
    cB = await open(nodeB.url);
    await until('A through Sentinel', async () => {
      const st = await ack(cA, 'redis-stats');
      return (st.sentinel && st.connected) || JSON.stringify(st);
    }, 5000);
    await until('B through Sentinel', async () => (await metric(nodeB.url, 'wsio_redis_connected')) === 1, 8000);
    assert.match(nodeB.proc.stderrText, /redis: the sentinels name 127\.0\.0\.1:\d+ master of mymaster/);
    assert.match(nodeB.proc.stderrText, /redis sentinel 127\.0\.0\.1:\d+: connected to 127\.0\.0\.1:\d+ over TLSv1\.3/);
    await until('io.emit from A reaches both', () => deliveredTo([cA, cB], 'hi', 'a1', ioEmit(cA, 'a1')), 5000);
    await until('B\'s broadcast reaches A', () => deliveredTo([cA], 'clientMsg', 'b1', async () => cB.emit('serverMsg', 'b1')),
                5000);
  });

  it('an ACL user of the sentinels works (sentinel_user)', async () => {
    const only = `rediss+sentinel://:${DATA_PW}@127.0.0.1:${sentinels[1].port}/${NAME}`;
    const n = await cNode(['--redis', only, '--tls-ca', pki.ca, '--sentinel-user', 'watcher',
                           '--sentinel-password', 'watcher-pw', '--degraded']);
    procs.push(n.proc);
    const s = await open(n.url);
    await until('connected as watcher', async () => (await ack(s, 'redis-stats')).connected || 'not yet', 8000);
    await until('io.emit reaches the others', () => deliveredTo([cA, cB], 'hi', 'acl', ioEmit(s, 'acl')), 5000);
    await stopProc(n.proc);
  });

  it('without the sentinels\' password, or with a wrong one, the start is refused with the reason', async () => {
    let r = await refusedAtStart(NODE_BIN, ['--redis', url, '--tls-ca', pki.ca]);
    assert.equal(r.code, 1);
    assert.match(r.log, /redis: cannot find the master mymaster: sentinel 127\.0\.0\.1:\d+: NOAUTH Authentication required\. \(the sentinels require a password: sentinel_password\)/);
    r = await refusedAtStart(NODE_BIN, ['--redis', url, '--tls-ca', pki.ca, '--sentinel-password', 'wrong']);
    assert.equal(r.code, 1);
    assert.match(r.log, /sentinel 127\.0\.0\.1:\d+: WRONGPASS invalid username-password pair/);
    // the data servers' password is not the sentinels'
    r = await refusedAtStart(NODE_BIN, ['--redis', url, '--tls-ca', pki.ca, '--sentinel-password', DATA_PW]);
    assert.match(r.log, /WRONGPASS/);
    // the sentinels over TLS need the CA too
    r = await refusedAtStart(NODE_BIN, ['--redis', url, '--sentinel-password', SENTINEL_PW]);
    assert.match(r.log, /cannot find the master mymaster: sentinel 127\.0\.0\.1:\d+: TLS: certificate verify failed/);
    // the program says which setting is missing too
    r = await refusedAtStart(WSIO, ['--port', '0', '--workers', '1', '--redis', url,
                                                        '--redis-tls-ca', pki.ca]);
    assert.equal(r.code, 1);
    assert.match(r.log, /NOAUTH Authentication required\. \(the sentinels require a password: sentinel_password\)/);
  });

  it('while running, a refused sentinel is a lost connection: logged, retried, never a crash', async () => {
    const n = await cNode(['--redis', url, '--tls-ca', pki.ca, '--degraded']);
    procs.push(n.proc);
    const s = await open(n.url);
    await until('the refusal logged', async () =>
      /redis sentinel 127\.0\.0\.1:\d+: cannot connect to 127\.0\.0\.1:\d+ \(refused: NOAUTH Authentication required\.\); retrying/
        .test(n.proc.stderrText) || 'not yet', 5000);
    assert.equal((await ack(s, 'redis-stats')).connected, false);
    assert.equal(n.proc.exitCode, null, 'still running');
    await stopProc(n.proc);
  });

  it('a failover of the protected master is followed through the protected sentinels', async () => {
    await stopProc(master, 'SIGKILL');
    await until('the sentinels promote the replica', async () => {
      for (const { port } of sentinels) {
        const m = masterOf(port);
        if (m !== `127.0.0.1:${replicaPort}`) return `sentinel ${port} says ${m}`;
      }
      return true;
    }, 25000);
    let n = 0;
    await until('io.emit from A reaches both after the failover', () => {
      const tag = `after-${++n}`;
      return deliveredTo([cA, cB], 'hi', tag, ioEmit(cA, tag));
    }, 8000);
    await until('B\'s broadcast reaches A after the failover', () => {
      const tag = `after-b-${++n}`;
      return deliveredTo([cA], 'clientMsg', tag, async () => cB.emit('serverMsg', tag));
    }, 8000);
    const st = await ack(cA, 'redis-stats');
    assert.equal(st.switches, 1);
  });
});
