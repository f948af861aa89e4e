"""Shared parts of the reliability suite (tests/reliability): the wsio process under test, its RSS and
descriptor count from /proc, a minimal WebSocket client over a plain socket (it sends what real clients
refuse to), a minimal Socket.IO client over it, and the canary: a well-behaved client that keeps a round trip
going the whole time and records its latencies.

Only /usr/bin/python3's standard library is used."""
import base64
import ctypes
import os
import signal
import socket
import struct
import subprocess
import threading
import time

# wsio reads every WSIO_* variable as a setting: the server under test gets none of the caller's.
CHILD_ENV = {k: v for k, v in os.environ.items() if not k.startswith("WSIO_")}


def die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no server outlives a killed test


class Server:
    """One wsio process on 127.0.0.1 and a port it picks; stderr is drained into self.log."""

    def __init__(self, wsio, *extra, env=None, host="127.0.0.1"):
        self.host = host
        self.args = [wsio, "--host", host, "--port", "0", *extra]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env or CHILD_ENV, preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.log = []
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                if self.port is None and "listening on" in line:
                    self.port = int(line.split("listening on", 1)[1].split()[0].rsplit(":", 1)[1])
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(15) or self.port is None:
            self.stop()
            raise RuntimeError("wsio did not start: " + "\n".join(self.log[-20:]))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_s(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self):
        status, _, body = http_request(self.port, host=self.host, raw=b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def connect(port, timeout=10, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def http_status(data):
    """The status code of the first response in data, or None."""
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def http_request(port, raw, timeout=10, host="127.0.0.1"):
    """Sends raw bytes, reads the whole answer (Connection: close), returns (status, head, body)."""
    s = connect(port, timeout, host)
    try:
        s.sendall(raw)
        data = read_until_closed(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return http_status(data), head, body


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


class WS:
    """A WebSocket client frame by frame. recv() returns (opcode, payload) for data frames and control frames
    alike (no reassembly), or None at EOF."""

    def __init__(self, port, path="/echo", extra_headers="", timeout=10):
        self.sock = connect(port, timeout)
        self.buf = b""
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {ws_key()}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n")
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode(errors="replace")
        if http_status(head) != 101:
            raise ConnectionError("handshake refused: " + self.head.split("\r\n")[0])

    @staticmethod
    def frame(opcode, payload, fin=True, rsv1=False, mask=True):
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + mask_bytes(payload, key)

    def send(self, opcode, payload, **kw):
        self.sock.sendall(self.frame(opcode, payload, **kw))

    def recv(self):
        while True:
            if len(self.buf) >= 2:
                b1 = self.buf[1] & 0x7F
                off = 2
                if b1 == 126:
                    off = 4
                elif b1 == 127:
                    off = 10
                if len(self.buf) >= off:
                    n = b1 if b1 < 126 else struct.unpack("!H" if b1 == 126 else "!Q", self.buf[2:off])[0]
                    if len(self.buf) >= off + n:
                        op = self.buf[0] & 0x0F
                        payload = self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        return op, payload
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buf += chunk

    def close_code(self, timeout=10):
        """Reads until a close frame arrives; returns its code (or None at EOF without one)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                f = self.recv()
                if f is None:
                    return None
                if f[0] == 8:
                    return struct.unpack("!H", f[1][:2])[0] if len(f[1]) >= 2 else 1005
        except (ConnectionResetError, BrokenPipeError):
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def mask_bytes(payload, key):
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big") if n else b""


class SIO(WS):
    """Engine.IO v4 over WebSocket plus Socket.IO v5 on top: open, join a namespace, answer pings."""

    def __init__(self, port, path="/socket.io/?EIO=4&transport=websocket", nsp="/", **kw):
        super().__init__(port, path, **kw)
        op, p = self.recv()
        if not p.startswith(b"0{"):
            raise ConnectionError(f"expected the Engine.IO open packet, got {p[:60]!r}")
        if nsp is not None:
            self.text("40" if nsp == "/" else f"40{nsp},")
            p = self.packet()
            if not p.startswith("40"):
                raise ConnectionError(f"namespace refused: {p[:80]}")

    def text(self, s):
        self.send(1, s.encode() if isinstance(s, str) else s)

    def packet(self):
        """The next Engine.IO packet that is not a ping (pings are answered), as text; None at EOF."""
        while True:
            f = self.recv()
            if f is None:
                return None
            op, p = f
            if op == 8:
                return None
            if op == 1 and p == b"2":
                self.text("3")
                continue
            if op in (1, 2):
                return p.decode(errors="replace")


class Canary:
    """A well-behaved WebSocket echo client and a Socket.IO client that emits with an ack, one round trip
    every `period` seconds each, for as long as the suite runs. Latencies are kept; a failure is kept too."""

    def __init__(self, port, period=0.05):
        self.port, self.period = port, period
        self.ws_lat, self.sio_lat, self.errors = [], [], []
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._ws, daemon=True),
                        threading.Thread(target=self._sio, daemon=True)]
        for t in self.threads:
            t.start()

    def _ws(self):
        try:
            c = WS(self.port)
            i = 0
            while not self.stop_ev.is_set():
                msg = f"canary {i}".encode()
                t0 = time.monotonic()
                c.send(1, msg)
                while True:
                    op, p = c.recv()
                    if op == 1:
                        break
                if p != msg:
                    raise AssertionError(f"echo mismatch {p!r}")
                self.ws_lat.append(time.monotonic() - t0)
                i += 1
                self.stop_ev.wait(self.period)
            c.close()
        except Exception as e:  # kept and reported by check()
            self.errors.append(f"websocket canary: {e!r}")

    def _sio(self):
        try:
            c = SIO(self.port)
            i = 0
            while not self.stop_ev.is_set():
                t0 = time.monotonic()
                c.text(f'42{i}["join","canary"]')
                while True:
                    p = c.packet()
                    if p is None:
                        raise ConnectionError("closed")
                    if p.startswith(f"43{i}["):
                        break
                self.sio_lat.append(time.monotonic() - t0)
                i += 1
                self.stop_ev.wait(self.period)
            c.close()
        except Exception as e:
            self.errors.append(f"socket.io canary: {e!r}")

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)

    @staticmethod
    def quantile(v, q):
        if not v:
            return float("nan")
        v = sorted(v)
        return v[min(len(v) - 1, int(q * len(v)))]

    def summary(self):
        out = {}
        for name, v in (("ws", self.ws_lat), ("sio", self.sio_lat)):
            out[name] = {"n": len(v), "p50_ms": self.quantile(v, 0.5) * 1e3, "p99_ms": self.quantile(v, 0.99) * 1e3,
                         "max_ms": max(v) * 1e3 if v else float("nan")}
        return out
