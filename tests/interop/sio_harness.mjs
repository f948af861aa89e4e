// What the Socket.IO interop suites share: sio_server as a child process, and promise helpers with
// deadlines (a test that waits forever is a test that hides a bug).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';

const SERVER = process.env.SIO_SERVER;
const CLIENT_DIR = process.env.SIO_CLIENT_DIR;
// SIO_PARSER=msgpack: servers start with --parser msgpack, and clients must use socket.io-msgpack-parser.
export const PARSER = process.env.SIO_PARSER || '';
// What io() and new Manager() take for that parser (nothing for the default one).
export const parserOpts = PARSER === 'msgpack' ? { parser: (await import('socket.io-msgpack-parser')).default } : {};
const live = new Set();
// Deadlines stretch for a slower server (tests/reliability/valgrind.sh sets INTEROP_TIMEOUT_SCALE).
export const SCALE = Number(process.env.INTEROP_TIMEOUT_SCALE) || 1;
// Whatever happens to the test process, no server outlives it.
process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });

export function quiet(ms) { return new Promise(resolve => setTimeout(resolve, ms)); }

export function within(promise, ms, what) {
  ms *= SCALE;
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Retries fn (which asserts) until it passes or the deadline passes; resolves with its value. For state the
// server updates on its own time (gauges, counters, a session's end).
export async function eventually(fn, ms = 5000) {
  const end = Date.now() + ms * SCALE;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await quiet(25);
    }
  }
}

// The arguments of the next `event` on an emitter.
export function waitEvent(emitter, event, ms = 5000) {
  return within(new Promise(resolve => emitter.once(event, (...args) => resolve(args))), ms, `event ${event}`);
}

// Emits with an ack callback and resolves with every argument of the ack.
export function ackOf(socket, event, ...args) {
  return within(new Promise(resolve => socket.emit(event, ...args, (...res) => resolve(res))), 5000,
                `ack of ${event}`);
}

export class SioServer {
  constructor(extra = []) {
    assert.ok(SERVER, 'SIO_SERVER must name the sio_server binary');
    this.extra = extra;
    this.lines = [];
    this.waiters = [];
    this.proc = null;
    this.port = 0;
  }

  // Starts the server (port 0: any free one) and resolves with its base URL once it listens (https:// when
  // it was given a TLS certificate).
  async start(port = 0) {
    const args = ['--port', String(port), ...this.extra];
    if (PARSER) args.push('--parser', PARSER);
    if (CLIENT_DIR) args.push('--client-dir', CLIENT_DIR);
    const proc = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise(resolve => proc.once('exit', (code, sig) => { live.delete(proc); resolve({ code, sig }); }));
    proc.stderr.on('data', d => process.stderr.write(`[sio_server] ${d}`));
    createInterface({ input: proc.stdout }).on('line', line => this.onLine(line));
    const m = await within(this.next(/^listening on .*:(\d+)$/), 5000, 'sio_server to listen');
    this.port = Number(m[1]);
    return `${this.extra.includes('--tls-cert') ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  onLine(line) {
    this.lines.push(line);
    this.waiters = this.waiters.filter(w => {
      const m = line.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }

  next(re) {
    return new Promise(resolve => this.waiters.push({ re, resolve }));
  }

  // Resolves with the match of the first stdout line (seen so far or to come) matching re.
  waitLine(re, ms = 5000) {
    for (const line of this.lines) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    return within(this.next(re), ms, `server line ${re}`);
  }

  // Dies at once, as a crash would: clients see their transport close.
  kill() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  // Stops it and asserts a clean exit: the graceful stop finished in time, and under sanitizers nothing
  // was reported (they exit non-zero).
  async stopClean() {
    assert.deepEqual(await this.stop(), { code: 0, sig: null }, 'sio_server exits cleanly on SIGTERM');
  }

  // SIGTERM (a graceful stop), then SIGKILL if it lingers. Resolves with how it exited.
  async stop() {
    const proc = this.proc;
    if (!proc) return null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const hard = setTimeout(() => proc.kill('SIGKILL'), 3000 * SCALE);
    const how = await this.exited;
    clearTimeout(hard);
    return how;
  }
}
