// What the Redis-over-TLS interop tests (test_redis_tls*.mjs) share: a throwaway PKI made with the openssl
// program in a temp dir (removed at exit, never committed), redis-server over TLS, the wsio program as a
// node (settings through flags, a file or the environment) beside redis_node (the C API), and delivery
// checks.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { within, ack, collect, spawnTracked, startProc, onExit } from './redis_harness.mjs';

export const NODE_BIN = process.env.REDIS_NODE;
export const WSIO = process.env.PROGRAM_WSIO;
export const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
export const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A CA, a second CA nobody trusts, a server certificate for 127.0.0.1 and localhost, a client certificate
// signed by the CA. Returns their paths.
export function makePki(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const key = name => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', name];
  ssl('req', '-x509', ...key('ca.key'), '-days', '2', '-subj', '/CN=wsio test CA', '-out', 'ca.crt');
  ssl('req', '-x509', ...key('other.key'), '-days', '2', '-subj', '/CN=another CA', '-out', 'other.crt');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('req', ...key('server.key'), '-subj', '/CN=localhost', '-out', 'server.csr');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', 'server.ext', '-out', 'server.crt');
  ssl('req', ...key('client.key'), '-subj', '/CN=wsio node', '-out', 'client.csr');
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-out', 'client.crt');
  const p = name => join(dir, name);
  return { ca: p('ca.crt'), other: p('other.crt'), cert: p('server.crt'), key: p('server.key'),
           clientCert: p('client.crt'), clientKey: p('client.key') };
}

// redis-server's TLS settings for pki: TLS only (no plain port), clients' certificates asked when mtls.
export const tlsArgs = (pki, mtls = false) => ['--port', '0', '--tls-cert-file', pki.cert, '--tls-key-file', pki.key,
  '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', mtls ? 'yes' : 'no'];

export const startRedis = (name, port, pki, more = [], mtls = false) =>
  startProc(name, REDIS_SERVER, ['--tls-port', String(port), ...tlsArgs(pki, mtls), '--bind', '127.0.0.1',
                                 '--save', '', '--appendonly', 'no', ...more], {}, /Ready to accept/)
    .then(r => r.proc);

// redis_node (the C API) with its flags; resolves { proc, url } once it listens.
export async function cNode(args) {
  const r = await startProc('wsio-c', NODE_BIN, args, {}, /^listening on .*:(\d+)$/);
  return { proc: r.proc, url: `http://127.0.0.1:${r.m[1]}` };
}

// The environment minus WSIO_* (each is a setting of the program), plus env.
function programEnv(env) {
  const out = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WSIO_')) out[k] = v;
  return { ...out, ...env };
}

// The wsio program (one worker); resolves { proc, url } once it logs that it listens. Its log lines are
// kept in proc.stderrText.
export async function programNode(args, env = {}) {
  const proc = spawnTracked('wsio', WSIO, ['--host', '127.0.0.1', '--port', '0', '--workers', '1', ...args],
                            programEnv(env));
  const m = await within(new Promise((resolve, reject) => {
    createInterface({ input: proc.stderr }).on('line', line => {
      const r = line.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (r) resolve(r);
    });
    proc.once('exit', code => reject(new Error(`wsio exited (${code}):\n${proc.stderrText}`)));
  }), 10000, 'wsio to listen');
  return { proc, url: `http://127.0.0.1:${m[1]}` };
}

// Runs a node that must give up at start: resolves with its exit code and log.
export async function refusedAtStart(cmd, args, env = {}) {
  const p = spawnTracked('refused', cmd, args, programEnv(env));
  const code = await within(p.exited, 15000, `${cmd} to give up`);
  return { code, log: p.stderrText };
}

// A value of the program's /metrics.
export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// ev emitted with tag (by send, which triggers it) reaches each client of to exactly once.
export async function deliveredTo(to, ev, tag, send, ms = 600) {
  const got = to.map(s => collect(s, ev, ms));
  await send();
  const counts = (await Promise.all(got)).map(g => g.filter(([x]) => x === tag || x?.tag === tag).length);
  return counts.every(c => c === 1) || `${ev} ${tag}: received ${JSON.stringify(counts)}`;
}

// io.emit("hi", tag) from a redis_node or Node server client.
export const ioEmit = (from, tag) => () => ack(from, 'emit', 'hi', tag);
