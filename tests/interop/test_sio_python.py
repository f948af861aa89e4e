#!/usr/bin/python3
"""Interop: Debian's python3-socketio client against sio_server (tests/interop/sio_server.c).

Usage: test_sio_python.py   (SIO_SERVER names the server binary; run with /usr/bin/python3, whose
packages include python3-socketio, python3-websocket and python3-requests.)

Each test class starts sio_server on a free port and stops it at the end, also on failure (and the kernel
kills it if this process dies: PR_SET_PDEATHSIG). Every test runs over polling and over WebSocket. With
SIO_PARSER=msgpack the server runs with --parser msgpack and the client with serializer="msgpack".
"""
import ctypes
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

try:
    import engineio.payload
    import socketio
    import socketio.exceptions
    import requests  # noqa: F401  the polling transport needs it
    import websocket  # noqa: F401  the WebSocket transport needs it
except ImportError as e:
    print("skipped: %s is not importable by %s" % (e.name, sys.executable))
    sys.exit(77)

# python-engineio refuses a polling payload of more than 16 packets and drops the session (a known limitation
# of that client; the reference servers batch whatever is queued, as wsio does). Its documented workaround:
engineio.payload.Payload.max_decode_packets = 256

SERVER = os.environ.get("SIO_SERVER")
PARSER = os.environ.get("SIO_PARSER") or "default"
CLIENT_DIR = os.environ.get("SIO_CLIENT_DIR")
# Deadlines stretch for a slower server (tests/reliability/valgrind.sh sets INTEROP_TIMEOUT_SCALE).
SCALE = float(os.environ.get("INTEROP_TIMEOUT_SCALE") or 1)
TIMEOUT = 5 * SCALE


def _die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """sio_server on 127.0.0.1 and a free port; its stdout lines are kept for waitline()."""

    def __init__(self, *extra):
        args = [SERVER, "--port", "0", "--parser", PARSER, *extra]
        if CLIENT_DIR:
            args += ["--client-dir", CLIENT_DIR]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        m = self.waitline(r"^listening on (.*):(\d+)$")
        self.url = "http://127.0.0.1:%s" % m.group(2)

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def waitline(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError("no server line matching %r; got %r" % (pattern, self.lines))
                self.cond.wait(left)

    def stop(self):
        """SIGTERM (a graceful stop); returns the exit code, or None when it had to be killed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


class Events:
    """Collects events a client receives, for waiting on them with a deadline."""

    def __init__(self, sio, *names, namespace="/"):
        self.q = queue.Queue()
        for name in names:
            sio.on(name, self._handler(name), namespace=namespace)

    def _handler(self, name):
        def on(*args):
            self.q.put((name, list(args)))
        return on

    def next(self, timeout=TIMEOUT):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event within %s s" % timeout) from None


class SocketIOPython:
    """The tests; subclasses pick the transport."""
    TRANSPORT = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        t = time.monotonic()
        code = cls.server.stop()
        print("server stopped in %.2f s" % (time.monotonic() - t), file=sys.stderr)
        assert code == 0, "sio_server exits cleanly on SIGTERM, not %r" % code

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                c.disconnect()
            except Exception:
                pass
            # Its HTTP keep-alive connections would otherwise stay open until the server's stop gives up on them.
            if getattr(c.eio, "http", None):
                c.eio.http.close()

    def client(self, namespaces=None, auth=None, handlers=None):
        sio = socketio.Client(reconnection=False, serializer=PARSER)
        for name, fn in (handlers or {}).items():
            sio.on(name, fn)
        self.clients.append(sio)
        sio.connect(self.server.url, transports=[self.TRANSPORT], namespaces=namespaces, auth=auth,
                    wait_timeout=TIMEOUT)
        return sio

    def test_connect(self):
        sio = self.client(auth={"user": "py"})
        self.assertEqual(sio.transport(), self.TRANSPORT)
        info = sio.call("info", timeout=TIMEOUT)
        self.assertEqual(info["id"], sio.get_sid())
        self.assertEqual(info["nsp"], "/")
        self.assertEqual(info["transport"], self.TRANSPORT)
        self.assertEqual(info["auth"], {"user": "py"})
        self.server.waitline(r"^connect / %s %s$" % (re.escape(sio.get_sid()), self.TRANSPORT))

    def test_events(self):
        sio = self.client()
        ev = Events(sio, "echo")
        sio.emit("echo", "héllo ✓")
        self.assertEqual(ev.next(), ("echo", ["héllo ✓"]))
        sio.emit("echo", (1, 2.5, None, True, {"a": [1, {"b": "c"}]}, []))
        self.assertEqual(ev.next(), ("echo", [1, 2.5, None, True, {"a": [1, {"b": "c"}]}, []]))
        for i in range(50):
            sio.emit("echo", i)
        # Every one exactly once. (Not in order: python-engineio runs each message's handler in a thread of
        # its own, so the client itself may reorder them; the node suite checks order.)
        self.assertEqual(sorted(ev.next()[1][0] for _ in range(50)), list(range(50)))
        self.assertRaises(AssertionError, ev.next, 0.1)

    def test_acks(self):
        sio = self.client()
        self.assertEqual(sio.call("ack-me", "one", timeout=TIMEOUT), "one")
        self.assertEqual(sio.call("ack-me", (1, "two", {"three": 3}), timeout=TIMEOUT), (1, "two", {"three": 3}))
        got = queue.Queue()
        sio.emit("ack-me", {"cb": True}, callback=lambda *a: got.put(a))
        self.assertEqual(got.get(timeout=TIMEOUT), ({"cb": True},))

    def test_client_acks(self):
        ev = None

        def question(payload):
            return payload, "from python"

        sio = self.client(handlers={"question": question})
        ev = Events(sio, "answer", "timeout")
        sio.emit("ask-client", {"q": 2})
        self.assertEqual(ev.next(), ("answer", [{"q": 2}, "from python"]))

    def test_binary(self):
        sio = self.client()
        ev = Events(sio, "echo")
        data = bytes(range(256)) * 40
        sio.emit("echo", data)
        name, args = ev.next()
        self.assertEqual(args, [data])
        self.assertIsInstance(args[0], bytes)
        nested = {"file": b"\x00\x01\xff", "list": ["x", b"abc", {"deep": b""}]}
        sio.emit("echo", ("text", nested, b"top"))
        self.assertEqual(ev.next(), ("echo", ["text", nested, b"top"]))
        self.assertEqual(sio.call("ack-me", (b"\x07" * 1000, {"in": b"\x08"}), timeout=TIMEOUT),
                         (b"\x07" * 1000, {"in": b"\x08"}))

    def test_namespaces(self):
        sio = self.client(namespaces=["/", "/admin", "/dyn-py"], auth={"token": "secret"})
        self.assertEqual(sio.call("info", namespace="/admin", timeout=TIMEOUT)["nsp"], "/admin")
        self.assertEqual(sio.call("info", namespace="/dyn-py", timeout=TIMEOUT)["nsp"], "/dyn-py")
        self.assertEqual(sio.call("ack-me", b"bin", namespace="/admin", timeout=TIMEOUT), b"bin")
        main_ev = Events(sio, "echo")
        admin_ev = Events(sio, "echo", namespace="/admin")
        sio.emit("echo", "to admin", namespace="/admin")
        self.assertEqual(admin_ev.next(), ("echo", ["to admin"]))
        self.assertRaises(AssertionError, main_ev.next, 0.2)  # events stay in their namespace

    def test_rejected_namespaces(self):
        errors = queue.Queue()
        sio = socketio.Client(reconnection=False, serializer=PARSER)
        self.clients.append(sio)
        sio.on("connect_error", lambda data: errors.put(("/admin", data)), namespace="/admin")
        sio.on("connect_error", lambda data: errors.put(("/nope", data)), namespace="/nope")
        with self.assertRaises(socketio.exceptions.ConnectionError):
            sio.connect(self.server.url, transports=[self.TRANSPORT], namespaces=["/admin", "/nope"],
                        auth={"token": "wrong"}, wait_timeout=1)  # it waits that long for the refused ones
        got = dict(errors.get(timeout=TIMEOUT) for _ in range(2))
        self.assertEqual(got["/admin"], {"message": "unauthorized", "data": {"code": 401}})
        self.assertEqual(got["/nope"], {"message": "Invalid namespace"})

    def test_disconnect(self):
        reasons = queue.Queue()
        sio = self.client(handlers={"disconnect": lambda: reasons.put("disconnect")})
        sid = sio.get_sid()
        sio.emit("disconnect-me")
        self.assertEqual(reasons.get(timeout=TIMEOUT), "disconnect")
        self.server.waitline(r"^disconnect / %s server namespace disconnect$" % re.escape(sid))

        other = self.client()
        sid = other.get_sid()
        # python-engineio's write loop quits as soon as disconnect() changes its state: a DISCONNECT queued
        # while it is still busy with an earlier POST's response is dropped client-side. Let it settle.
        time.sleep(0.2)
        other.disconnect()
        self.server.waitline(r"^disconnect / %s (client namespace disconnect|transport close)$" % re.escape(sid))


class OverPolling(SocketIOPython, unittest.TestCase):
    TRANSPORT = "polling"


class OverWebSocket(SocketIOPython, unittest.TestCase):
    TRANSPORT = "websocket"


if __name__ == "__main__":
    if not SERVER:
        sys.exit("SIO_SERVER must name the sio_server binary")
    unittest.main(verbosity=2)
