// Vite for the chat: in development its server proxies Socket.IO (polling and the WebSocket upgrade) to a
// running wsio, so the page and the socket share one origin exactly as when wsio serves the built dist/.
// CHAT_SERVER names that wsio (default http://127.0.0.1:3000). The name avoids the WSIO_ prefix on purpose:
// wsio refuses WSIO_* variables that are not its own settings, and both often run from the same shell.
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

const target = process.env.CHAT_SERVER || 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      '/socket.io': { target, ws: true, changeOrigin: true },
    },
  },
  // Relative asset URLs: dist/ works from any folder wsio serves it from.
  base: './',
});
