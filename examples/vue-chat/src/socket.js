// One Socket.IO connection for the whole app, to the page's own origin: in development Vite proxies
// /socket.io to wsio; built, wsio serves the page itself.
import { reactive } from 'vue';
import { io } from 'socket.io-client';

export const socket = io();

// Connection state the template can show: connected or not, and the transport in use (the client starts on
// HTTP long-polling and upgrades to WebSocket).
export const conn = reactive({ connected: false, transport: '', reason: '' });

function track() {
  conn.connected = socket.connected;
  conn.transport = socket.io.engine ? socket.io.engine.transport.name : '';
}
socket.on('connect', () => {
  track();
  socket.io.engine.once('upgrade', track);
});
socket.on('disconnect', reason => {
  conn.reason = reason;
  track();
});
