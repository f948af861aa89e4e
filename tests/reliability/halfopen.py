#!/usr/bin/python3
"""Half-open TCP: a peer that vanishes without FIN or RST is found by the heartbeat in time.

Usage: halfopen.py PATH_TO_WSIO [--json FILE]

The clients run in a network namespace of their own, joined to the server's by a veth pair (addresses from
10.231.0.0/30, private to this machine; nothing leaves it). Once they are connected and have answered
heartbeats for a while, the clients' end of the pair is set down (`ip link set down` inside their namespace):
the client processes are alive, their sockets open, their kernel can send nothing and what the server sends
is dropped, so nothing tells the server. The server must notice through its
heartbeat alone, and within its bound:
  raw WebSocket   keepalive ping after ping_interval of silence, closed when it is not answered by the next
                  tick: at most 2 x ping_interval + 1 s (the sweep ticks once a second);
  Socket.IO       (WebSocket and long-polling) pingInterval + pingTimeout, plus the 100 ms tick.
The server's own view (/metrics over loopback, from the root namespace) is sampled every 50 ms.

Without network namespaces (not root, or no veth support) the same clients run on loopback and are stopped
with SIGSTOP: the kernel still acknowledges TCP, so this checks the heartbeat against a peer that stops
answering rather than a vanished one, and says so.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rel import CHILD_ENV, Server, die_with_parent  # noqa: E402

NS = f"wsiorel{os.getpid() % 100000}"
VETH_HOST, VETH_NS = f"wrh{os.getpid() % 100000}", f"wrn{os.getpid() % 100000}"
HOST_IP, NS_IP = "10.231.0.1", "10.231.0.2"
WS_PING_S = 1
SIO_PING_MS, SIO_TIMEOUT_MS = 1000, 1000
N = 20  # clients of each kind

CLIENT = r"""
import json, os, socket, struct, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def hs(path):
    s = socket.create_connection((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    d = b""
    while b"\r\n\r\n" not in d: d += s.recv(4096)
    s.setblocking(False)
    return s
def frame(op, p): return struct.pack("!BB", 0x80 | op, 0x80 | len(p)) + b"\0\0\0\0" + p
ws = [hs("/echo") for _ in range(n)]
sio = [hs("/socket.io/?EIO=4&transport=websocket") for _ in range(n)]
for s in sio: s.sendall(frame(1, b"40"))
polls = []
for _ in range(n):   # long-polling: handshake, connect, then a GET held at all times
    s = socket.create_connection((host, port))
    s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b'"sid":"' not in d: d += s.recv(4096)
    sid = d.split(b'"sid":"')[1].split(b'"')[0].decode()
    p = socket.create_connection((host, port))
    p.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n40".encode())
    p.recv(4096)
    s.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.setblocking(False)
    polls.append((s, p, sid))
print("ready", flush=True)
# Answer heartbeats: WebSocket pings (raw), Engine.IO "2" over WebSocket and over polling.
while True:
    time.sleep(0.05)
    for s in ws:
        try: d = s.recv(65536)
        except BlockingIOError: continue
        i = 0
        while i + 2 <= len(d):
            op, ln = d[i] & 15, d[i + 1] & 127
            if op == 9: s.sendall(frame(10, d[i + 2:i + 2 + ln]))
            i += 2 + ln
    for s in sio:
        try: d = s.recv(65536)
        except BlockingIOError: continue
        if b"\x012" in d: s.sendall(frame(1, b"3"))
    for s, p, sid in polls:
        try: d = s.recv(65536)
        except BlockingIOError: continue
        if b"\r\n\r\n" in d and d.endswith(b"2"):
            p.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n3".encode())
            p.recv(4096)
        if b"\r\n\r\n" in d:
            s.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
"""


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def netns_up():
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NS)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", VETH_NS)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", VETH_NS, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        return True
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        why = e.stderr.decode().strip() if getattr(e, "stderr", None) else str(e)
        print(f"network namespaces unavailable ({why}): falling back to SIGSTOP on loopback")
        netns_down()
        return False


def netns_down():
    sh("ip", "link", "del", VETH_HOST, check=False)
    sh("ip", "netns", "del", NS, check=False)


def cut():
    """The clients' end of the pair goes down: their kernel can send nothing (no FIN, no RST), and what the
    server sends is dropped. The server's end and its route stay, so its stack reports no error either."""
    sh("ip", "netns", "exec", NS, "ip", "link", "set", VETH_NS, "down")


def gauges(srv):
    m = srv.metrics()
    return (m.get('wsio_connections{transport="raw_websocket"}', 0), m.get('wsio_connections{transport="websocket"}', 0),
            m.get('wsio_connections{transport="polling"}', 0))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    wsio = sys.argv[1]
    json_out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    use_ns = os.geteuid() == 0 and netns_up()
    srv = Server(wsio, "--websocket-ping-interval", f"{WS_PING_S}s", "--socketio-ping-interval",
                 f"{SIO_PING_MS}ms", "--socketio-ping-timeout", f"{SIO_TIMEOUT_MS}ms",
                 host=HOST_IP if use_ns else "127.0.0.1")
    ok = True
    out = {"mode": "netns, veth set down" if use_ns else "SIGSTOP on loopback"}
    client = None
    try:
        cmd = [sys.executable, "-c", CLIENT, srv.host, str(srv.port), str(N)]
        if use_ns:
            cmd = ["ip", "netns", "exec", NS] + cmd
        client = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=CHILD_ENV, preexec_fn=die_with_parent)
        line = client.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"clients did not start: {line!r}")
        fds0 = srv.fds()
        # Heartbeats answered for a few intervals: nobody may be dropped while the peer is there.
        time.sleep(3.5)
        g0 = gauges(srv)
        print(f"before the cut: raw websocket {g0[0]:.0f}, socket.io websocket {g0[1]:.0f}, polling {g0[2]:.0f}")
        if g0 != (N, N, N):
            print(f"FAIL clients dropped while answering heartbeats: {g0}")
            ok = False
        t0 = time.monotonic()
        if use_ns:
            cut()
        else:
            client.send_signal(signal.SIGSTOP)
        found = [None, None, None]
        while time.monotonic() - t0 < 15 and None in found:
            g = gauges(srv)
            for i in range(3):
                if found[i] is None and g[i] == 0:
                    found[i] = time.monotonic() - t0
            time.sleep(0.05)
        bounds = [2 * WS_PING_S + 1.0, (SIO_PING_MS + SIO_TIMEOUT_MS) / 1e3 + 0.3,
                  (SIO_PING_MS + SIO_TIMEOUT_MS) / 1e3 + 0.3]
        names = ["raw websocket", "socket.io websocket", "socket.io polling"]
        out["detected_s"] = {}
        for name, t, b in zip(names, found, bounds):
            out["detected_s"][name] = t
            print(f"{'ok  ' if t is not None and t <= b else 'FAIL'} {name}: {N} vanished peers closed after "
                  f"{'never' if t is None else f'{t:.2f} s'} (bound {b:.1f} s)")
            ok &= t is not None and t <= b
        # A closed WebSocket waits up to 5 s for the close frame it sent to be answered (never, here); then
        # its descriptor goes. The long-polling clients' plain HTTP keep-alive connections are left to the
        # HTTP idle timeout (120 s), not waited for here.
        t1 = time.monotonic()
        while srv.fds() > fds0 - 2 * N and time.monotonic() - t1 < 8:
            time.sleep(0.1)
        fds1 = srv.fds()
        out["fds"] = [fds0, fds1]
        out["fds_released_s"] = time.monotonic() - t0
        print(f"server descriptors {fds0} with the clients, {fds1} {time.monotonic() - t0:.1f} s after the cut")
        if fds1 > fds0 - 2 * N:
            print("FAIL the server still holds the vanished WebSocket peers' descriptors")
            ok = False
    finally:
        if client:
            client.kill()
            client.wait()
        srv.stop()
        if use_ns:
            netns_down()
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f, indent=1)
    print(f"{'1 passed, 0 failed' if ok else '0 passed, 1 failed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
