// Talks to a running examples/embed with the official npm clients (tests/node_modules): the socket.io
// bundle it serves must be the installed one, /ws greets and echoes, /app answers add(2, 40) with 42 and
// gets its hello answered, "/" receives the clock. Exits 0 when all of that happened within 15 s.
// Usage: node embed_client.mjs http://127.0.0.1:PORT INSTALLED_SOCKET_IO_JS
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import WebSocket from "ws";

const [url, bundle] = process.argv.slice(2);
const fail = (msg) => {
  console.error(`embed_client: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail("timed out after 15 s"), 15000).unref();

const served = Buffer.from(await (await fetch(`${url}/socket.io/socket.io.js`)).arrayBuffer());
if (!served.equals(readFileSync(bundle))) fail(`/socket.io/socket.io.js is not ${bundle}`);

const raw = new Promise((resolve, reject) => {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws`);
  const seen = [];
  ws.on("message", (m) => {
    const text = m.toString();
    if (/^\d{4}-\d\d-\d\dT/.test(text)) return; // the clock, every second
    seen.push(text);
    if (seen.length === 1) {
      if (text !== "hello from embed") reject(new Error(`greeting was ${JSON.stringify(text)}`));
      ws.send("echo me");
    } else {
      if (text !== "echo me") reject(new Error(`echo was ${JSON.stringify(text)}`));
      ws.close();
      resolve();
    }
  });
  ws.on("error", reject);
});

const app = new Promise((resolve, reject) => {
  const s = io(`${url}/app`, { transports: ["websocket"], reconnection: false });
  s.on("hello", (msg, ack) => ack("hi from the install test"));
  s.on("connect_error", reject);
  s.on("connect", async () => {
    const sum = await s.timeout(5000).emitWithAck("add", 2, 40);
    if (sum !== 42) reject(new Error(`add(2, 40) answered ${JSON.stringify(sum)}`));
    s.close();
    resolve();
  });
});

const clock = new Promise((resolve, reject) => {
  const s = io(url, { reconnection: false }); // long-polling first, then the upgrade
  s.on("connect_error", reject);
  s.on("clock", (t) => {
    s.close();
    resolve(t);
  });
});

try {
  await Promise.all([raw, app, clock]);
} catch (e) {
  fail(e.message);
}
console.log("embed_client: bundle, /ws echo, /app add and hello, / clock: ok");
process.exit(0);
