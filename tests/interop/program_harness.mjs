// What the tests of the wsio program (test_program.mjs, test_limits.mjs, test_trusted_proxies.mjs,
// test_browser_chat.mjs) share: the program under test, run as a child with none of the test's WSIO_*
// variables (wsio takes each as a setting), its log lines, and children and temp dirs that end with the test.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCALE, within } from './sio_harness.mjs';

// Deadlines stretch by SCALE (INTEROP_TIMEOUT_SCALE); within() applies it.
export { SCALE, within, eventually, quiet as sleep } from './sio_harness.mjs';

const TESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// require() of the npm packages in tests/node_modules (scripts/deps installs them).
export const require = createRequire(path.join(TESTS_DIR, 'package.json'));
// The wsio program: the test's first argument, or WSIO_BIN.
const WSIO = process.argv[2] || process.env.WSIO_BIN;

const running = new Set();
const temps = [];
// Whatever happens to the test, no child outlives it; then its temp dirs go.
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

// socket.io-client and ws from tests/node_modules, once the test is known to be able to run: exits 77
// (skipped) when they are not installed, 2 when no wsio program is named.
export function prerequisites() {
  let io, WebSocket;
  try {
    ({ io } = require('socket.io-client'));
    WebSocket = require('ws');
  } catch {
    console.error(`socket.io-client or ws is not installed in ${TESTS_DIR}/node_modules (run scripts/deps): skipped`);
    process.exit(77);
  }
  if (!WSIO || !fs.existsSync(WSIO)) {
    console.error(`name the wsio program as the first argument or in WSIO_BIN (got ${WSIO})`);
    process.exit(2);
  }
  return { io, WebSocket };
}

// A new directory under the system's temp dir (wsio-NAME-XXXXXX), removed when the test exits.
export function tempDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wsio-${name}-`));
  temps.push(dir);
  return dir;
}

// The test's environment minus WSIO_* (every WSIO_* variable must be a setting), plus env.
function childEnv(env = {}) {
  const out = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WSIO_')) out[k] = v;
  return { ...out, ...env };
}

// Runs wsio to completion (configuration checks): { status, stdout, stderr }.
export function runWsio(args, env = {}) {
  const r = spawnSync(WSIO, args, { env: childEnv(env), encoding: 'utf8', timeout: 10000 * SCALE });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// A port of 127.0.0.1 that nothing listens on (for a child that must be told one).
export async function freePort() {
  const srv = net.createServer();
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise(resolve => srv.close(resolve));
  return port;
}

// A child process (started by spawn()) whose output lines are kept and can be waited for: its stderr, and
// its stdout too with `stdout: true`, without terminal color codes. It gets childEnv(env).
export class Child {
  constructor(cmd, args, { env = {}, cwd, stdout = false } = {}) {
    this.cmd = cmd;
    this.args = args;
    this.opts = { env, cwd, stdout };
    this.lines = [];
    this.waiters = [];
  }

  spawn() {
    const { env, cwd, stdout } = this.opts;
    const proc = spawn(this.cmd, this.args,
                       { env: childEnv(env), cwd, stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    this.exited = new Promise(resolve => proc.once('exit', (code, sig) => { running.delete(proc); resolve({ code, sig }); }));
    for (const stream of [proc.stdout, proc.stderr]) {
      if (!stream) continue;
      let pending = '';
      stream.on('data', chunk => {
        pending += chunk.toString('utf8');
        let i;
        while ((i = pending.indexOf('\n')) >= 0) {
          this.onLine(pending.slice(0, i).replace(/\x1b\[[0-9;]*m/g, ''));
          pending = pending.slice(i + 1);
        }
      });
    }
    return this;
  }

  onLine(line) {
    this.lines.push(line);
    this.waiters = this.waiters.filter(w => {
      const m = line.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }

  // The first line from index `from` on (seen or still to come) that matches re; fails early if the
  // process exits first.
  waitLog(re, ms = 5000, from = 0) {
    for (const line of this.lines.slice(from)) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    const name = path.basename(this.cmd);
    const died = this.exited.then(({ code, sig }) => {
      throw new Error(`${name} exited (${code ?? sig}) before logging ${re}:\n${this.lines.join('\n')}`);
    });
    return within(Promise.race([new Promise(resolve => this.waiters.push({ re, resolve })), died]), ms,
                  `${name} log line ${re}`);
  }

  // SIGTERM (a graceful stop), then SIGKILL if it lingers. Resolves with how it exited.
  async stop() {
    const proc = this.proc;
    if (!proc) return null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const hard = setTimeout(() => proc.kill('SIGKILL'), 5000 * SCALE);
    const how = await this.exited;
    clearTimeout(hard);
    return how;
  }
}

// A running wsio: with listenFlags on a free port of 127.0.0.1 (--host 127.0.0.1 --port 0 before args),
// else with args alone (a config file or env naming where to listen). start() resolves once it logs
// "listening on HOST:PORT", with port, url and wsUrl set. bin is the program (the one the test was given).
export class Wsio extends Child {
  constructor({ args = [], env = {}, listenFlags = true, bin = WSIO } = {}) {
    super(bin, listenFlags ? ['--host', '127.0.0.1', '--port', '0', ...args] : args, { env });
  }

  async start() {
    const m = await this.spawn().waitLog(/listening on (\S+):(\d+)/, 10000);
    this.port = Number(m[2]);
    this.url = `http://127.0.0.1:${this.port}`;
    this.wsUrl = `ws://127.0.0.1:${this.port}`;
    return this;
  }

  // Stops it and asserts a graceful exit (under the sanitizers, also that nothing was reported).
  async stopClean() {
    assert.deepEqual(await this.stop(), { code: 0, sig: null }, `wsio exits 0 on SIGTERM; log:\n${this.lines.join('\n')}`);
  }
}
