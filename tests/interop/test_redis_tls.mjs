// Interop: the Redis adapter over TLS (rediss://). The test makes a throwaway CA and certificates (openssl,
// in a temp dir), starts redis-server on a TLS port only, then three nodes sharing it: redis_node (the C
// API, wsio_redis_config's tls fields), the wsio program ([redis] tls_* settings as flags) and a Node
// socket.io 4.8 server whose node-redis clients trust the same CA. Broadcasts cross every pair both ways.
// Then the refusals: a CA that did not sign the server's certificate, a name the certificate does not
// carry, a plain redis:// URL against the TLS port, verification off (works, with a warning), and mutual
// TLS on a second server (tls-auth-clients yes) with and without a client certificate. A degraded start
// that cannot verify keeps running and counts its failures. Last, the TLS server is killed and restarted:
// delivery resumes across the nodes. REDIS_MODE=classic or sharded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { quiet, ack, until, freePort, startProc, stopProc, openClient } from './redis_harness.mjs';
import { NODE_BIN, WSIO, REDIS_SERVER, tempDir, makePki, startRedis, cNode, programNode, refusedAtStart, metric, deliveredTo,
         ioEmit } from './redis_tls_harness.mjs';

const MODE = process.env.REDIS_MODE || 'classic';
const SHARDED = MODE === 'sharded';
const NODE_SERVER = fileURLToPath(new URL('./redis_node_server.mjs', import.meta.url));
const dir = tempDir('wsio-redis-tls-');
const pki = makePki(dir);

describe(`Redis adapter over TLS (${MODE}): redis_node, the wsio program and a Node server`, () => {
  let redis, port, url, cA, cB, cC, nodeA, nodeB;
  const procs = [];
  const clients = [];
  const extra = []; // servers of single cases
  const open = (u, opts) => openClient(clients, u, opts);
  const sharded = SHARDED ? ['--sharded'] : [];
  const progSharded = SHARDED ? ['--redis-sharded', 'true'] : [];

  // Every client gets io.emit from A and C (the Node server), and B's clientMsg route reaches A's and C's.
  async function allDeliver(tag) {
    await until(`io.emit from the C API node reaches all (${tag})`,
                () => deliveredTo([cA, cB, cC], 'hi', `${tag}-a`, ioEmit(cA, `${tag}-a`)), 8000);
    await until(`io.emit from the Node server reaches all (${tag})`,
                () => deliveredTo([cA, cB, cC], 'hi', `${tag}-c`, ioEmit(cC, `${tag}-c`)), 8000);
    await until(`a broadcast from the program's client reaches the others (${tag})`,
                () => deliveredTo([cA, cC], 'clientMsg', `${tag}-b`, async () => cB.emit('serverMsg', `${tag}-b`)),
                8000);
  }

  before(async () => {
    port = await freePort();
    url = `rediss://127.0.0.1:${port}`;
    redis = await startRedis('redis-tls', port, pki);
    nodeA = await cNode(['--redis', url, '--tls-ca', pki.ca, ...sharded]);
    procs.push(nodeA.proc);
    nodeB = await programNode(['--redis', url, '--redis-tls-ca', pki.ca, ...progSharded]);
    procs.push(nodeB.proc);
    const r = await startProc('node', process.execPath, [NODE_SERVER],
                              { REDIS_URL: url, REDIS_MODE: MODE, REDIS_TLS_CA: pki.ca }, /^listening on .*:(\d+)$/);
    procs.push(r.proc);
    cA = await open(nodeA.url);
    cB = await open(nodeB.url, { transports: ['polling'] });
    cC = await open(`http://127.0.0.1:${r.m[1]}`);
  });
  after(async () => {
    for (const s of clients) s.disconnect();
    await Promise.all([...procs, ...extra].map(p => stopProc(p)));
    await stopProc(redis);
  });

  it('the nodes connect over TLS and broadcasts cross every node both ways', async () => {
    const st = await ack(cA, 'redis-stats');
    assert.equal(st.connected, true);
    assert.equal(await metric(nodeB.url, 'wsio_redis_connected'), 1);
    assert.match(nodeB.proc.stderrText, /redis: adapter on 127\.0\.0\.1:\d+ over TLS/);
    assert.match(nodeB.proc.stderrText, /redis publish: connected to 127\.0\.0\.1:\d+ over TLSv1\.3/);
    await allDeliver('first');
    for (const s of [cA, cC]) await until('server count 3', async () => (await ack(s, 'server-count')) === 3);
  });

  it('a CA that did not sign the server certificate is refused at start, with OpenSSL\'s reason', async () => {
    const c = await refusedAtStart(NODE_BIN, ['--redis', url, '--tls-ca', pki.other]);
    assert.equal(c.code, 1);
    assert.match(c.log, /redis: cannot use 127\.0\.0\.1:\d+: TLS: certificate verify failed \(self-signed certificate in certificate chain\)/);
    const p = await refusedAtStart(WSIO, ['--port', '0', '--workers', '1', '--redis', url, '--redis-tls-ca', pki.other]);
    assert.equal(p.code, 1);
    assert.match(p.log, /TLS: certificate verify failed/);
    assert.match(p.log, /wsio: \[redis\]: TLS setup failed/);
    // without a CA: the system's trust store, which knows nothing of this test's CA
    const s = await refusedAtStart(NODE_BIN, ['--redis', url]);
    assert.match(s.log, /TLS: certificate verify failed/);
  });

  it('a degraded start that cannot verify runs local-only, retrying and counting, without crashing', async () => {
    const d = await programNode(['--redis', url, '--redis-tls-ca', pki.other, '--redis-degraded-start', 'true']);
    extra.push(d.proc);
    await until('failures counted', async () => (await metric(d.url, 'wsio_redis_disconnects_total')) >= 4, 10000);
    assert.equal(await metric(d.url, 'wsio_redis_connected'), 0);
    assert.match(d.proc.stderrText,
                 /redis publish: cannot connect to 127\.0\.0\.1:\d+ \(TLS: certificate verify failed \(self-signed certificate in certificate chain\)\); retrying/);
    // one line per state change, not one per attempt
    assert.equal(d.proc.stderrText.match(/redis publish: cannot connect/g).length, 1);
    const c = await open(d.url);
    assert.equal(c.connected, true);
    assert.equal(d.proc.exitCode, null);
    await stopProc(d.proc);
    assert.equal(d.proc.signalCode ?? d.proc.exitCode, 0, 'a clean exit');
  });

  it('a certificate that does not name the host is refused; the right name given apart is accepted', async () => {
    const c = await refusedAtStart(NODE_BIN, ['--redis', url, '--tls-ca', pki.ca, '--tls-server-name', 'redis.example']);
    assert.equal(c.code, 1);
    assert.match(c.log, /TLS: certificate verify failed \(hostname mismatch\)/);
    const ok = await cNode(['--redis', url, '--tls-ca', pki.ca, '--tls-server-name', 'localhost', ...sharded]);
    extra.push(ok.proc);
    const s = await open(ok.url);
    await until('connected', async () => (await ack(s, 'redis-stats')).connected || 'not yet', 5000);
    await until('io.emit from it reaches the others',
                () => deliveredTo([cA, cC], 'hi', 'named', ioEmit(s, 'named')), 5000);
  });

  it('redis:// against the TLS port, and rediss:// against a plain one, say what is likely wrong', async () => {
    const c = await refusedAtStart(NODE_BIN, ['--redis', `redis://127.0.0.1:${port}`]);
    assert.equal(c.code, 1);
    assert.match(c.log, /closed by the server before answering \(a TLS port\? then rediss:\/\/\)/);
    const plainPort = await freePort();
    extra.push((await startProc('redis-plain', REDIS_SERVER, ['--port', String(plainPort), '--bind', '127.0.0.1',
                                                              '--save', '', '--appendonly', 'no'], {},
                                /Ready to accept/)).proc);
    const p = await refusedAtStart(NODE_BIN, ['--redis', `rediss://127.0.0.1:${plainPort}`, '--tls-ca', pki.ca]);
    assert.equal(p.code, 1);
    assert.match(p.log, /cannot use 127\.0\.0\.1:\d+: timed out in the TLS handshake \(a plain port\? then redis:\/\/\)/);
  });

  it('verification off connects to any certificate, with a warning', async () => {
    const n = await cNode(['--redis', url, '--tls-ca', pki.other, '--tls-insecure', ...sharded]);
    extra.push(n.proc);
    assert.match(n.proc.stderrText, /warn redis: TLS without certificate verification \(tls_insecure\)/);
    const s = await open(n.url);
    await until('connected', async () => (await ack(s, 'redis-stats')).connected || 'not yet', 5000);
    await until('io.emit from it reaches the others',
                () => deliveredTo([cA, cB, cC], 'hi', 'insecure', ioEmit(s, 'insecure')), 5000);
  });

  it('mutual TLS: a client certificate is required, and a node with one joins', async () => {
    const mport = await freePort();
    const murl = `rediss://127.0.0.1:${mport}`;
    extra.push(await startRedis('redis-mtls', mport, pki, [], true));
    const c = await refusedAtStart(NODE_BIN, ['--redis', murl, '--tls-ca', pki.ca]);
    assert.equal(c.code, 1);
    assert.match(c.log, /redis: cannot use 127\.0\.0\.1:\d+: TLS: (tlsv13 alert certificate required|the server requires a client certificate)/);
    const p = await refusedAtStart(WSIO, ['--port', '0', '--workers', '1', '--redis', murl, '--redis-tls-ca', pki.ca]);
    assert.equal(p.code, 1);
    const certArgs = ['--tls-cert', pki.clientCert, '--tls-key', pki.clientKey];
    const n1 = await cNode(['--redis', murl, '--tls-ca', pki.ca, ...certArgs, ...sharded]);
    extra.push(n1.proc);
    const n2 = await programNode(['--redis', murl, '--redis-tls-ca', pki.ca, '--redis-tls-cert', pki.clientCert,
                                  '--redis-tls-key', pki.clientKey, ...progSharded]);
    extra.push(n2.proc);
    const s1 = await open(n1.url), s2 = await open(n2.url);
    await until('io.emit crosses the mutual-TLS server',
                () => deliveredTo([s1, s2], 'hi', 'mtls', ioEmit(s1, 'mtls')), 8000);
    await until('and back', () => deliveredTo([s1], 'clientMsg', 'mtls-back', async () => s2.emit('serverMsg', 'mtls-back')),
                8000);
  });

  it('the TLS server restarts: delivery across the nodes resumes', async () => {
    await stopProc(redis, 'SIGKILL');
    await quiet(500);
    // locally, broadcasts go on
    assert.equal(await deliveredTo([cA], 'hi', 'alone', ioEmit(cA, 'alone')), true);
    redis = await startRedis('redis-tls', port, pki);
    await allDeliver('after');
    const st = await ack(cA, 'redis-stats');
    assert.equal(st.connected, true);
    assert.ok(await metric(nodeB.url, 'wsio_redis_disconnects_total') >= 2);
    assert.match(nodeB.proc.stderrText, /redis (publish|subscribe): connection to 127\.0\.0\.1:\d+ lost/);
  });
});
