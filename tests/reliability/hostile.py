#!/usr/bin/python3
"""Hostile input at every layer, end to end against the wsio program.

Usage: hostile.py PATH_TO_WSIO [--rounds N] [--json FILE]

One wsio process serves everything (plain WebSocket /echo, Socket.IO, long-polling). A canary (a well-behaved
WebSocket echo client and a Socket.IO client emitting with an ack, tests/reliability/rel.py) keeps a round trip
going the whole time. Every case sends one kind of abuse and checks the answer: the HTTP status, the WebSocket
close code, the Socket.IO answer, or the connection being closed. All cases run `rounds` times (default 2); the
first round warms the allocator, and the server's RSS after the last round must stay within RSS_SLACK_KIB of
its RSS after the first. At the end the server's descriptor count must be back to where it was with only the
canary connected, the canary must have seen no error and a bounded latency, and the server must still be
running. Prints one line per case and a summary; exits 0 when every check held.
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rel import SIO, WS, Canary, Server, connect, http_request, http_status, read_until_closed  # noqa: E402

MAX_MESSAGE = 1 << 20            # the server's --websocket-max-message-size for this suite
MAX_PAYLOAD = 100000             # its --socketio-max-payload
SEND_LIMIT = 1 << 20             # its --websocket-send-buffer-limit
HANDSHAKE_TIMEOUT_S = 10         # wsio's default: a request must be complete 10 s after its first byte
RSS_SLACK_KIB = 4096             # growth allowed from round 1 to the last round
CANARY_MAX_MS = 1000             # no canary round trip may take longer, whatever the abuse
CANARY_P99_MS = 100

results = []


def case(name):
    def wrap(fn):
        fn.case_name = name
        return fn
    return wrap


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- HTTP ---------------------------------------------------------------------------------------------

@case("slowloris: 20 requests trickled a byte a second are closed by the request timeout")
def slowloris(srv):
    req = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nX-Slow: " + b"a" * 100
    socks = [connect(srv.port) for _ in range(20)]
    t0 = time.monotonic()
    closed_at = {}
    i = 0
    while len(closed_at) < len(socks) and time.monotonic() - t0 < HANDSHAKE_TIMEOUT_S + 8:
        for k, s in enumerate(socks):
            if k in closed_at:
                continue
            try:
                s.send(req[i:i + 1])
            except OSError:
                closed_at[k] = time.monotonic() - t0
        r, _, _ = select.select([s for k, s in enumerate(socks) if k not in closed_at], [], [], 1.0)
        for s in r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 408"):
                closed_at[socks.index(s)] = time.monotonic() - t0
        i += 1
    for s in socks:
        s.close()
    expect(len(closed_at) == len(socks), f"{len(socks) - len(closed_at)} slow requests still open after "
                                         f"{time.monotonic() - t0:.1f} s")
    worst = max(closed_at.values())
    expect(HANDSHAKE_TIMEOUT_S - 1 <= min(closed_at.values()) and worst <= HANDSHAKE_TIMEOUT_S + 2.5,
           f"closed after {min(closed_at.values()):.1f}..{worst:.1f} s, expected about {HANDSHAKE_TIMEOUT_S} s")
    return f"all closed after {min(closed_at.values()):.1f}..{worst:.1f} s"


def status_of(srv, raw):
    st, head, _ = http_request(srv.port, raw)
    return st


@case("request line and headers: oversize 414/431, malformed 400")
def http_limits(srv):
    got = {
        "url 100 KB": (status_of(srv, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414),
        "header 100 KB": (status_of(srv, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n"), 431),
        "10,000 headers": (status_of(srv, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 10000 + b"\r\n"), 431),
        "garbage line": (status_of(srv, b"\x00\x01GARBAGE\r\n\r\n"), 400),
        "HTTP/0.9 line": (status_of(srv, b"GET /\r\nHost: x\r\n\r\n"), 505),
        "HTTP/2.0 line": (status_of(srv, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505),
        "space before colon": (status_of(srv, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400),
        "bare LF": (status_of(srv, b"GET / HTTP/1.1\nHost: x\n\n"), 400),
        "NUL in a header": (status_of(srv, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"), 400),
    }
    bad = {k: v for k, v in got.items() if v[0] != v[1]}
    expect(not bad, "; ".join(f"{k}: {v[0]} (expected {v[1]})" for k, v in bad.items()))
    return ", ".join(f"{k} {v[0]}" for k, v in got.items())


@case("request smuggling shapes: duplicate Content-Length, Transfer-Encoding with Content-Length -> 400")
def smuggling(srv):
    p = b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
    got = {
        "CL CL": status_of(srv, p + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        "CL CL same": status_of(srv, p + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        "TE + CL": status_of(srv, p + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        "TE TE": status_of(srv, p + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "TE chunked twice": status_of(srv, p + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        "TE HTTP/1.0": status_of(srv, p.replace(b"1.1", b"1.0") + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "CL list": status_of(srv, p + b"Content-Length: 5, 5\r\n\r\nhello"),
        "CL sign": status_of(srv, p + b"Content-Length: +5\r\n\r\nhello"),
    }
    # A transfer coding the server does not implement is a 501 (RFC 9112 6.1): refused all the same.
    got["TE identity"] = status_of(srv, p + b"Transfer-Encoding: identity\r\n\r\n")
    # "chunked" twice is refused as a coding llhttp does not implement (501), before the duplicate check.
    want = {"TE identity": (501,), "TE TE": (400, 501), "TE chunked twice": (400, 501)}
    bad = {k: v for k, v in got.items() if v not in want.get(k, (400,))}
    expect(not bad, f"expected 400 for each (501 for an unknown coding), got {bad}")
    return ", ".join(f"{k} {v}" for k, v in got.items())


# ---- WebSocket ------------------------------------------------------------------------------------------

def ws_handshake_status(srv, key, version="13"):
    raw = (f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\nConnection: close\r\n\r\n")
    s = connect(srv.port)
    s.sendall(raw.encode())
    data = read_until_closed(s, 4096)
    s.close()
    return http_status(data)


@case("WebSocket handshake: bad key 400, bad version 426")
def ws_handshake(srv):
    got = {
        "short key": (ws_handshake_status(srv, "c2hvcnQ="), 400),
        "not base64": (ws_handshake_status(srv, "!!!!!!!!!!!!!!!!!!!!!!=="), 400),
        "empty key": (ws_handshake_status(srv, ""), 400),
        "version 8": (ws_handshake_status(srv, "dGhlIHNhbXBsZSBub25jZQ==", "8"), 426),
        "version 99999": (ws_handshake_status(srv, "dGhlIHNhbXBsZSBub25jZQ==", "99999"), 426),
    }
    bad = {k: v for k, v in got.items() if v[0] != v[1]}
    expect(not bad, "; ".join(f"{k}: {v[0]} (expected {v[1]})" for k, v in bad.items()))
    return ", ".join(f"{k} {v[0]}" for k, v in got.items())


_bomb = None


def deflate_bomb_frame():
    """256 MiB of zeros, deflated to about 260 KB: one compressed text frame."""
    global _bomb
    if _bomb is None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = bytes(1 << 20)
        data = b"".join(c.compress(zeros) for _ in range(256)) + c.flush(zlib.Z_SYNC_FLUSH)
        _bomb = data[:-4]  # RFC 7692: the final 00 00 ff ff is left off
    return _bomb


@case("deflate bomb: 260 KB inflating to 256 MiB -> 1009, without inflating it all")
def deflate_bomb(srv):
    bomb = deflate_bomb_frame()
    c = WS(srv.port, extra_headers="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    expect("permessage-deflate" in c.head, "permessage-deflate was not negotiated")
    cpu0, rss0 = srv.cpu_s(), srv.rss_kib()
    try:
        c.send(1, bomb, rsv1=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    code = c.close_code()
    c.close()
    cpu, rss = srv.cpu_s() - cpu0, srv.rss_kib() - rss0
    expect(code == 1009, f"close code {code}, expected 1009")
    # Inflating all of it would cost 256 MiB of memory and far more CPU than the cap's 1 MiB.
    expect(rss < 16 * 1024, f"RSS grew {rss} KiB while refusing the bomb")
    expect(cpu < 0.25, f"the server spent {cpu:.2f} s of CPU on the bomb")
    return f"close 1009, server CPU {cpu * 1e3:.0f} ms, RSS {rss:+d} KiB"


@case("endless fragmented message -> 1009 once past the maximum size")
def endless_fragments(srv):
    c = WS(srv.port)
    chunk = b"a" * 65536
    sent = 0
    c.send(1, chunk, fin=False)
    sent += len(chunk)
    try:
        while sent < 64 * MAX_MESSAGE:
            r, _, _ = select.select([c.sock], [], [], 0)
            if r:
                break
            c.send(0, chunk, fin=False)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    code = c.close_code()
    c.close()
    expect(code == 1009, f"close code {code}, expected 1009")
    expect(sent <= 4 * MAX_MESSAGE, f"{sent} bytes were taken before the close")
    return f"close 1009 after {sent >> 10} KiB sent (limit {MAX_MESSAGE >> 10} KiB)"


@case("ping flood: 200,000 pings, pongs not read: bounded by the send limit, server responsive")
def ping_flood(srv):
    c = WS(srv.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    n = 200000
    frames = b"".join(WS.frame(9, b"p" * 125) for _ in range(1000))
    rss0 = srv.rss_kib()
    t0 = time.monotonic()
    sent = 0
    try:
        for _ in range(n // 1000):
            c.sock.sendall(frames)
            sent += 1000
    except (BrokenPipeError, ConnectionResetError):
        pass
    send_s = time.monotonic() - t0
    peak = srv.rss_kib() - rss0
    # Now read: count pongs until the stream goes quiet or closes.
    pongs, code = 0, None
    c.sock.settimeout(2)
    try:
        while True:
            f = c.recv()
            if f is None:
                break
            if f[0] == 10:
                pongs += 1
            elif f[0] == 8:
                code = int.from_bytes(f[1][:2], "big")
                break
    except (socket.timeout, ConnectionResetError):
        pass
    c.close()
    expect(pongs <= sent, f"{pongs} pongs for {sent} pings")
    expect(peak < 4 * SEND_LIMIT >> 10, f"RSS grew {peak} KiB during the flood")
    # 25 MB of pongs against a 1 MiB send limit: the server cannot have queued them all.
    expect(code == 1008 or pongs * 127 < 2 * SEND_LIMIT + (1 << 20), f"{pongs} pongs queued, close {code}")
    return (f"{sent} pings sent in {send_s:.2f} s, {pongs} pongs came back"
            f"{'' if code is None else f', then close {code}'}; RSS during the flood {peak:+d} KiB")


@case("invalid UTF-8 split across fragments -> 1007")
def utf8_split(srv):
    shapes = {
        "bad continuation in the 2nd fragment": [(1, b"abc\xe2\x82", False), (0, b"(def", True)],
        "truncated at the end of the message": [(1, b"abc", False), (0, b"\xe2\x82", True)],
        "overlong split": [(1, b"x\xc0", False), (0, b"\xaf", True)],
        "surrogate split": [(1, b"\xed", False), (0, b"\xa0\x80", True)],
    }
    got = {}
    for name, frames in shapes.items():
        c = WS(srv.port)
        try:
            for op, p, fin in frames:
                c.send(op, p, fin=fin)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got[name] = c.close_code()
        c.close()
    bad = {k: v for k, v in got.items() if v != 1007}
    expect(not bad, f"expected 1007, got {bad}")
    return ", ".join(f"{k}: {v}" for k, v in got.items())


# ---- Engine.IO long-polling ----------------------------------------------------------------------------

def polling_sid(srv):
    st, _, body = http_request(srv.port, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n")
    expect(st == 200 and body.startswith(b"0{"), f"polling handshake: {st} {body[:60]!r}")
    return json.loads(body[1:])["sid"]


def polling_post(srv, sid, body):
    raw = (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    return http_request(srv.port, raw)[0]


@case("Engine.IO polling: bad payloads and lengths -> 400, oversize -> 413")
def polling_payloads(srv):
    got = {}
    for name, body, want in (
        ("empty body", b"", 400),
        ("unknown packet type", b"x", 400),
        ("empty packet between separators", b"4a\x1e\x1e4b", 400),
        ("trailing separator", b"4a\x1e", 400),
        ("v3 binary length prefix", b"\x00\x05\xff4hello", 400),
        ("past max_payload", b"4" + b"a" * (MAX_PAYLOAD + 10), 413),
    ):
        got[name] = (polling_post(srv, polling_sid(srv), body), want)
    got["bad sid"] = (polling_post(srv, "AAAAAAAAAAAAAAAAAAAA", b"4hello"), 400)
    # Engine.IO v3's length-prefixed payloads ("6:4hello") are refused at the handshake: EIO=3 is a 400. (Sent
    # to a v4 session, "6:4hello" is a NOOP packet with text after its type, which v4 servers ignore.)
    got["EIO=3"] = (http_request(srv.port, b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\n"
                                           b"Connection: close\r\n\r\n")[0], 400)
    # A Content-Length longer than the body that comes is the request timeout's (slowloris) business.
    bad = {k: v for k, v in got.items() if v[0] != v[1]}
    expect(not bad, "; ".join(f"{k}: {v[0]} (expected {v[1]})" for k, v in bad.items()))
    return ", ".join(f"{k} {v[0]}" for k, v in got.items())


# ---- Socket.IO ------------------------------------------------------------------------------------------

def sio_closed_for(srv, packet):
    """Sends one Socket.IO packet on a connected socket; returns whether the session was closed."""
    c = SIO(srv.port)
    c.sock.settimeout(5)
    try:
        c.text(packet)
        while True:
            p = c.packet()
            if p is None:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        c.close()


@case("Socket.IO: huge attachment counts and deep JSON close the connection as a parse error")
def sio_parse_errors(srv):
    before = srv.metrics().get("wsio_parse_errors_total", 0)
    # Over WebSocket each Engine.IO MESSAGE is "4" then the Socket.IO packet ("45<n>-" a binary event).
    shapes = {
        "4294967296 attachments": '454294967296-["a",{"_placeholder":true,"num":0}]',
        "1e12 attachments": '451000000000000-["a",{"_placeholder":true,"num":0}]',
        "99999 attachments": '4599999-["a",{"_placeholder":true,"num":0}]',
        "JSON arrays nested 40,000 deep": '42["a",' + "[" * 40000 + "]" * 40000 + "]",
        "objects nested 15,000 deep": '42["a",' + '{"a":' * 15000 + "1" + "}" * 15000 + "]",
        "unterminated JSON": '42["a",{"b":',
    }
    got = {k: sio_closed_for(srv, p) for k, p in shapes.items()}
    after = srv.metrics().get("wsio_parse_errors_total", 0)
    open_ = [k for k, v in got.items() if not v]
    expect(not open_, f"still open after: {open_}")
    expect(after - before >= len(shapes), f"wsio_parse_errors_total rose by {after - before}, expected "
                                          f"{len(shapes)}")
    return f"{len(shapes)} shapes, each closed; wsio_parse_errors_total +{after - before:.0f}"


@case("unknown-namespace flood: 5,000 CONNECTs to unknown namespaces, each CONNECT_ERROR, no growth")
def namespace_flood(srv):
    before = srv.metrics()
    c = SIO(srv.port, nsp=None)
    n, answered, rss0 = 5000, 0, srv.rss_kib()
    batch = 500
    for i0 in range(0, n, batch):
        c.sock.sendall(b"".join(WS.frame(1, f"40/nope-{i},".encode()) for i in range(i0, i0 + batch)))
        for i in range(i0, i0 + batch):
            p = c.packet()
            expect(p == f'44/nope-{i},{{"message":"Invalid namespace"}}', f"answer {i}: {p!r}")
            answered += 1
    # The session is still usable: the main namespace still admits it.
    c.text("40")
    p = c.packet()
    c.close()
    expect(p and p.startswith("40{"), f"main namespace after the flood: {p!r}")
    after = srv.metrics()
    expect(after["wsio_namespaces"] == before["wsio_namespaces"],
           f"namespaces {before['wsio_namespaces']} -> {after['wsio_namespaces']}")
    return f"{answered} CONNECT_ERROR answers, namespaces {after['wsio_namespaces']:.0f} before and after, " \
           f"RSS {srv.rss_kib() - rss0:+d} KiB"


# ---- faults ---------------------------------------------------------------------------------------------

KILLED_CHILD = r"""
import os, signal, socket, struct, sys, time
port = int(sys.argv[1]); socks = []
def c():
    s = socket.create_connection(("127.0.0.1", port)); socks.append(s); return s
def ws(path):
    s = c()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    d = b""
    while b"\r\n\r\n" not in d: d += s.recv(4096)
    return s
for i in range(100):   # WebSocket echo, cut inside a 64 KiB frame
    s = ws("/echo"); s.sendall(struct.pack("!BBQ", 0x82, 0xFF, 65536) + b"\0\0\0\0" + b"x" * 1000)
for i in range(100):   # Socket.IO over WebSocket, connected, cut inside an event frame
    s = ws("/socket.io/?EIO=4&transport=websocket")
    s.sendall(struct.pack("!BB", 0x81, 0x82) + b"\0\0\0\0" + b"40")
    s.sendall(struct.pack("!BBH", 0x81, 0xFE, 1000) + b"\0\0\0\0" + b'42["serverMsg","')
for i in range(50):    # long-polling: a held GET, and a POST cut inside its body
    s = c(); s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b'"sid":"' not in d: d += s.recv(4096)
    sid = d.split(b'"sid":"')[1].split(b'"')[0].decode()
    s.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    p = c(); p.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                       f"Content-Length: 5000\r\n\r\n42[\"x\",\"".encode())
print("ready", flush=True)
time.sleep(60)
"""


@case("clients killed mid-frame (300 connections): descriptors and RSS back to baseline")
def killed_mid_frame(srv):
    # The previous case's connections may still be closing: take the baseline once the count is steady.
    fds0, t0 = srv.fds(), time.monotonic()
    while time.monotonic() - t0 < 5:
        time.sleep(0.2)
        now = srv.fds()
        if now == fds0:
            break
        fds0 = now
    rss0 = srv.rss_kib()
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(srv.port)], stdout=subprocess.PIPE)
    try:
        line = child.stdout.readline()
        expect(line.strip() == b"ready", f"client process: {line!r}")
        # Accepts can lag the client's connect() on a busy machine: wait for all of them, bounded.
        t0 = time.monotonic()
        while srv.fds() < fds0 + 300 and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        fds_up = srv.fds()
        expect(fds_up >= fds0 + 300, f"only {fds_up - fds0} connections reached the server in 5 s")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    t0 = time.monotonic()
    while srv.fds() > fds0 and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    back = time.monotonic() - t0
    fds1 = srv.fds()
    expect(fds1 <= fds0, f"descriptors {fds0} -> {fds_up} -> {fds1} 10 s after the kill")
    return f"fds {fds0} -> {fds_up} -> {fds1} in {back * 1e3:.0f} ms; RSS {rss0} -> {srv.rss_kib()} KiB"


CASES = [http_limits, smuggling, ws_handshake, deflate_bomb, endless_fragments, ping_flood, utf8_split,
         polling_payloads, sio_parse_errors, namespace_flood, killed_mid_frame]


def run_case(fn, srv, rnd):
    t0 = time.monotonic()
    try:
        detail = fn(srv)
        ok = True
    except Exception as e:  # a failed check or an unexpected error: the case failed
        detail, ok = f"{type(e).__name__}: {e}", False
    dt = time.monotonic() - t0
    results.append({"round": rnd, "case": fn.case_name, "ok": ok, "seconds": round(dt, 2), "detail": detail})
    print(f"{'ok  ' if ok else 'FAIL'} [{rnd}] {fn.case_name} ({dt:.1f} s): {detail}", flush=True)
    return ok


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    wsio, rounds, json_out = args[0], 2, None
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
    if "--json" in args:
        json_out = args[args.index("--json") + 1]
    deflate_bomb_frame()
    srv = Server(wsio, "--websocket-max-message-size", str(MAX_MESSAGE), "--socketio-max-payload",
                 str(MAX_PAYLOAD), "--websocket-send-buffer-limit", str(SEND_LIMIT))
    summary = {"rounds": rounds}
    ok = True
    try:
        canary = Canary(srv.port)
        time.sleep(0.5)
        fds_base = srv.fds()
        summary["rss_start_kib"] = srv.rss_kib()
        rss_after = []
        for rnd in range(1, rounds + 1):
            # The slowloris case takes the request timeout's 10 s: it runs beside the others.
            slow_ok = []
            t = threading.Thread(target=lambda r=rnd: slow_ok.append(run_case(slowloris, srv, r)))
            t.start()
            for fn in CASES:
                ok &= run_case(fn, srv, rnd)
            t.join()
            ok &= bool(slow_ok and slow_ok[0])
            time.sleep(1.5)  # idle output buffers are released by the sweep after a second
            rss_after.append(srv.rss_kib())
            print(f"     round {rnd}: server RSS {rss_after[-1]} KiB, {srv.fds()} descriptors", flush=True)
        summary["rss_after_round_kib"] = rss_after
        growth = rss_after[-1] - rss_after[0]
        summary["rss_growth_kib"] = growth
        if rounds > 1 and growth > RSS_SLACK_KIB:
            print(f"FAIL RSS grew {growth} KiB from round 1 to round {rounds} (slack {RSS_SLACK_KIB} KiB)")
            ok = False
        t0 = time.monotonic()
        while srv.fds() > fds_base and time.monotonic() - t0 < 5:
            time.sleep(0.1)
        summary["fds"] = [fds_base, srv.fds()]
        if srv.fds() > fds_base:
            print(f"FAIL descriptors {fds_base} with the canary alone, {srv.fds()} at the end")
            ok = False
        canary.stop()
        summary["canary"] = canary.summary()
        for e in canary.errors:
            print("FAIL", e)
            ok = False
        for name, s in summary["canary"].items():
            print(f"     canary {name}: {s['n']} round trips, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
                  f"max {s['max_ms']:.1f} ms")
            if not s["n"] or s["max_ms"] > CANARY_MAX_MS or s["p99_ms"] > CANARY_P99_MS:
                print(f"FAIL canary {name}: latency past p99 {CANARY_P99_MS} ms / max {CANARY_MAX_MS} ms")
                ok = False
        if not srv.alive():
            print("FAIL the server died")
            ok = False
    finally:
        rc = srv.stop()
    if rc != 0:
        print(f"FAIL wsio exited {rc} on SIGTERM; its log:\n" + "\n".join(srv.log[-30:]))
        ok = False
    summary["results"] = results
    if json_out:
        with open(json_out, "w") as f:
            json.dump(summary, f, indent=1)
    passed = sum(r["ok"] for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if ok and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
