// What the Redis adapter's interop tests (test_redis.mjs, test_redis_cluster.mjs) share: child processes
// that die with the test, deadlines, and the client helpers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { io as connectClient } from 'socket.io-client';

// Deadlines stretch for a slower server (tests/reliability/valgrind.sh sets INTEROP_TIMEOUT_SCALE).
export const SCALE = Number(process.env.INTEROP_TIMEOUT_SCALE) || 1;

const live = new Set();
const atExit = [];
// fn runs when the process exits, after the children are killed (temp dirs, for instance).
export function onExit(fn) { atExit.push(fn); }
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
  for (const fn of atExit) fn();
});
// A runner's timeout ends this process with a signal, which skips 'exit' handlers: stop the children first.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(1));

export const quiet = ms => new Promise(resolve => setTimeout(resolve, ms));
export function within(promise, ms, what) {
  ms *= SCALE;
  let timer;
  const deadline = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
export const ack = (socket, ev, ...args) =>
  within(new Promise(resolve => socket.emit(ev, ...args, res => resolve(res))), 6000, `ack of ${ev}`);
export const next = (socket, ev, ms = 3000) =>
  within(new Promise(resolve => socket.once(ev, (...args) => resolve(args))), ms, `${ev} on ${socket.id}`);
// Resolves with every `ev` the socket gets within ms.
export function collect(socket, ev, ms) {
  const got = [];
  const on = (...args) => got.push(args);
  socket.on(ev, on);
  return quiet(ms).then(() => { socket.off(ev, on); return got; });
}
// Polls fn (which resolves true when done) until it is, or fails with what.
export async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms * SCALE;
  let last;
  while (Date.now() < end) {
    last = await fn().catch(e => e);
    if (last === true) return;
    await quiet(200);
  }
  assert.fail(`${what} (last: ${last})`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A child killed when the test ends; its stderr is echoed and kept in stderrText.
export function spawnTracked(name, cmd, args, env = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  live.add(proc);
  proc.exited = new Promise(resolve => proc.once('exit', code => { live.delete(proc); resolve(code); }));
  proc.stderrText = '';
  proc.stderr.on('data', d => { proc.stderrText += d; process.stderr.write(`[${name}] ${d}`); });
  return proc;
}
// A child, ready once a stdout line matches ready (the match is returned with it).
export async function startProc(name, cmd, args, env, ready) {
  const proc = spawnTracked(name, cmd, args, env);
  const m = await within(new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', line => { const r = line.match(ready); if (r) resolve(r); });
    proc.once('exit', code => reject(new Error(`${name} exited (${code})`)));
  }), 10000, `${name} to start`);
  return { proc, m };
}
export async function stopProc(p, sig = 'SIGTERM') {
  if (!p || p.exitCode !== null || p.signalCode) return;
  p.kill(sig);
  await within(p.exited, 5000, 'child exit').catch(() => p.kill('SIGKILL'));
}

// A connected socket.io-client socket over WebSocket, added to clients (for closing them at the end).
export function openClient(clients, url, opts = {}) {
  const s = connectClient(url, { forceNew: true, reconnection: false, transports: ['websocket'], ...opts });
  clients.push(s);
  return within(new Promise((resolve, reject) => { s.once('connect', () => resolve(s)); s.once('connect_error', reject); }),
                5000, `connect ${url}`);
}
