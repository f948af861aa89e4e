#!/usr/bin/python3
"""The wsio program's abuse limits against the Python `websockets` client (Debian python3-websockets):
connections per address (HTTP 503 + Retry-After), the handshake rate (HTTP 429 + Retry-After) and the
message rate (close 1008 "rate limit"), each leaving the other clients alone, and the metrics counting them.

Usage: test_limits_python.py PATH_TO_WSIO
"""
import asyncio
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

try:
    import websockets
    import websockets.exceptions
except ImportError:
    print("skipped: python3-websockets is not importable by", sys.executable)
    sys.exit(77)

WSIO = None
CHILD_ENV = {k: v for k, v in os.environ.items() if not k.startswith("WSIO_")}
# Deadlines stretch for a slower server (tests/reliability/valgrind.sh sets INTEROP_TIMEOUT_SCALE).
SCALE = float(os.environ.get("INTEROP_TIMEOUT_SCALE") or 1)
TIMEOUT = 10 * SCALE


def _die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """wsio on 127.0.0.1 and a free port; stderr drained into self.log."""

    def __init__(self, *extra):
        self.proc = subprocess.Popen([WSIO, "--host", "127.0.0.1", "--port", "0", *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=CHILD_ENV, preexec_fn=_die_with_parent)
        self.log = []
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"listening on \S+:(\d+)", line)
                if m and not self.port:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(TIMEOUT) or not self.port:
            self.stop()
            raise RuntimeError("wsio did not start:\n" + "\n".join(self.log))
        self.url = "ws://127.0.0.1:%d" % self.port

    def metric(self, series, want=None):
        """The series' value; with want, retried for 5 s until it is want (other workers' counters are
        snapshots taken once per loop iteration)."""
        deadline = time.monotonic() + 5
        while True:
            v = self._metric(series)
            if want is None or want(v) or time.monotonic() > deadline:
                return v
            time.sleep(0.05)

    def _metric(self, series):
        # From another loopback address: the per-address limits of 127.0.0.1 do not apply to it.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT, source_address=("127.0.0.2", 0))
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        conn.close()
        for line in body.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        raise AssertionError("no series %s" % series)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30 * SCALE))


class Limits(unittest.TestCase):
    def serve(self, *flags):
        srv = Server(*flags)
        self.addCleanup(lambda: self.assertEqual(srv.stop(), 0, "\n".join(srv.log)))
        return srv

    def test_connections_per_address(self):
        srv = self.serve("--limits-max-connections-per-ip", "2")

        async def go():
            a = await websockets.connect(srv.url + "/echo")
            b = await websockets.connect(srv.url + "/echo")
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await websockets.connect(srv.url + "/echo")
            self.assertEqual(cm.exception.status_code, 503)
            self.assertEqual(cm.exception.headers.get("Retry-After"), "5")
            # Another address is not affected, the admitted ones still echo.
            c = await websockets.connect(srv.url + "/echo", local_addr=("127.0.0.2", 0))
            await c.send("other")
            self.assertEqual(await c.recv(), "other")
            await a.send("a")
            self.assertEqual(await a.recv(), "a")
            await b.close()
            deadline = time.monotonic() + 5
            while True:  # the server frees the place when it has seen b go
                try:
                    d = await websockets.connect(srv.url + "/echo")
                    break
                except websockets.exceptions.InvalidStatusCode:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
            for ws in (a, c, d):
                await ws.close()

        run(go())
        self.assertGreaterEqual(srv.metric("wsio_limit_ip_connections_refused_total", lambda v: v >= 1), 1)

    def test_handshake_rate(self):
        srv = self.serve("--limits-handshakes-per-ip-per-second", "2", "--limits-handshake-burst", "2")

        async def go():
            held = [await websockets.connect(srv.url + "/echo") for _ in range(2)]
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await websockets.connect(srv.url + "/echo")
            self.assertEqual(cm.exception.status_code, 429)
            self.assertEqual(cm.exception.headers.get("Retry-After"), "1")
            await asyncio.sleep(0.6)  # 2 per second: a token after 500 ms
            held.append(await websockets.connect(srv.url + "/echo"))
            for ws in held:
                await ws.close()

        run(go())
        self.assertEqual(srv.metric("wsio_limit_handshakes_refused_total", lambda v: v == 1), 1)

    def test_message_rate(self):
        srv = self.serve("--limits-messages-per-second", "10", "--limits-message-burst", "10")

        async def go():
            calm = await websockets.connect(srv.url + "/echo")
            flood = await websockets.connect(srv.url + "/echo")
            for i in range(50):
                await flood.send("m%d" % i)
            echoed = 0
            with self.assertRaises(websockets.exceptions.ConnectionClosedError) as cm:
                while True:
                    await flood.recv()
                    echoed += 1
            self.assertEqual(cm.exception.rcvd.code, 1008)
            self.assertEqual(cm.exception.rcvd.reason, "rate limit")
            self.assertTrue(10 <= echoed < 50, echoed)
            for i in range(5):
                await calm.send("c%d" % i)
                self.assertEqual(await calm.recv(), "c%d" % i)
                await asyncio.sleep(0.15)
            await calm.close()

        run(go())
        self.assertEqual(srv.metric('wsio_limit_message_rate_closes_total{protocol="websocket"}', lambda v: v == 1), 1)


def main():
    global WSIO
    if len(sys.argv) < 2:
        print("usage: test_limits_python.py PATH_TO_WSIO", file=sys.stderr)
        return 2
    WSIO = sys.argv.pop(1)
    return 0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
