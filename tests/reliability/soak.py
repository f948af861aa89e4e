#!/usr/bin/python3
"""Soak: mixed traffic at a fixed rate with churn against the wsio program, for a long time.

Usage: soak.py PATH_TO_WSIO [--seconds N (1800)] [--json FILE]

Traffic (each kind on its own thread, at a fixed period, so the rate does not depend on the server's speed):
  members   10 Socket.IO clients over WebSocket for the whole run, in rooms: every 200 ms each joins a room
            with an ack and waits for it, every second each sends serverMsg (relayed to all others) and
            toRoom (relayed to the room); everything relayed to them is read.
  sio churn every 250 ms a new Socket.IO client over WebSocket: join with an ack, toRoom, leave with an ack,
            then a clean disconnect (41 and a close frame) or, every other time, an abrupt close.
  polling   every 500 ms a long-polling session: handshake, CONNECT, join with an ack (read from a GET),
            an event, then the close packet.
  echo      every 250 ms a plain WebSocket on /echo: three messages echoed and checked, a close handshake.
The server's RSS and descriptor count are sampled every 5 s, /metrics too. It passes when
  - no client saw an error (every ack and echo arrived, intact),
  - the RSS after warm-up (the first quarter of the run, at least 20 s) stays within 5% of its value at the
    end of warm-up (+ 512 KiB for the allocator's page granularity on small runs),
  - the descriptor count is back to its starting value once the clients are gone,
  - the error counters of /metrics show nothing unexpected: no parse errors, slow-consumer closes, rejected
    connections, drops or refused API calls.
"""
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rel import SIO, WS, Server, connect, read_until_closed  # noqa: E402

ERROR_COUNTERS = ["wsio_parse_errors_total", "wsio_slow_consumer_closes_total", "wsio_rejected_connections_total",
                  "wsio_dropped_messages_total", "wsio_api_rejected_total", "wsio_auth_rejected_total"]

stop = threading.Event()
counts = {}
errors = []
lock = threading.Lock()


def count(kind, n=1):
    with lock:
        counts[kind] = counts.get(kind, 0) + n


def fail(kind, e):
    with lock:
        counts["errors"] = counts.get("errors", 0) + 1
        if len(errors) < 20:
            errors.append(f"{kind}: {type(e).__name__}: {e}")


def periodic(period, fn, kind):
    def loop():
        nxt = time.monotonic()
        i = 0
        while not stop.is_set():
            try:
                fn(i)
                count(kind)
            except Exception as e:  # counted: any error fails the soak
                fail(kind, e)
            i += 1
            nxt += period
            stop.wait(max(0.0, nxt - time.monotonic()))
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def ack_of(c, ack_id):
    """Reads packets until the ack with this id; relayed events on the way are counted."""
    while True:
        p = c.packet()
        if p is None:
            raise ConnectionError("closed while waiting for an ack")
        if p.startswith(f"43{ack_id}["):
            return p
        if p.startswith("42"):
            count("relayed")


def member(port, k):
    c = SIO(port)
    c.sock.settimeout(10)
    ack = 0
    last_emit = 0.0
    room = f"room-{k % 3}"

    def step(i):
        nonlocal ack, last_emit
        ack += 1
        c.text(f'42{ack}["join","{room}"]')
        ack_of(c, ack)
        if time.monotonic() - last_emit >= 1:
            last_emit = time.monotonic()
            c.text(f'42["serverMsg",{{"nick":"m{k}","text":"hello {i}"}}]')
            c.text(f'42["toRoom","{room}",{{"text":"to {room} {i}"}}]')
    return c, step


def sio_churn(port):
    def step(i):
        c = SIO(port)
        c.sock.settimeout(10)
        room = f"churn-{i % 7}"
        c.text(f'421["join","{room}"]')
        ack_of(c, 1)
        c.text(f'42["toRoom","{room}",{{"text":"x"}}]')
        c.text(f'422["leave","{room}"]')
        ack_of(c, 2)
        if i % 2 == 0:
            c.text("41")
            c.send(8, b"\x03\xe8")
            c.close_code(5)
        c.close()
    return step


def polling_req(port, method, sid, body=b""):
    q = f"/socket.io/?EIO=4&transport=polling{'&sid=' + sid if sid else ''}"
    head = f"{method} {q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if method == "POST":
        head += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
    s = connect(port)
    s.sendall(head.encode() + b"\r\n" + body)
    data = read_until_closed(s)
    s.close()
    h, _, b = data.partition(b"\r\n\r\n")
    if not h.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"{method}: {h[:40]!r}")
    return b.decode()


def polling(port):
    def step(i):
        open_ = polling_req(port, "GET", None)
        sid = json.loads(open_[1:])["sid"]
        polling_req(port, "POST", sid, b"40")
        got = ""
        deadline = time.monotonic() + 10
        while "40{" not in got and time.monotonic() < deadline:
            got += polling_req(port, "GET", sid)
        polling_req(port, "POST", sid, b'421["join","poll"]\x1e42["toRoom","poll",{"text":"p"}]')
        got = ""
        while "431[" not in got and time.monotonic() < deadline:
            got += polling_req(port, "GET", sid)
        if "431[" not in got:
            raise TimeoutError("no ack over polling")
        polling_req(port, "POST", sid, b"1")
    return step


def echo(port):
    def step(i):
        c = WS(port)
        c.sock.settimeout(10)
        for k in range(3):
            msg = os.urandom(random.randint(1, 2000)) if k == 1 else f"echo {i} {k}".encode()
            c.send(2 if k == 1 else 1, msg)
            op, p = c.recv()
            while op == 9:
                op, p = c.recv()
            if p != msg:
                raise AssertionError("echo mismatch")
        c.send(8, b"\x03\xe8")
        code = c.close_code(5)
        c.close()
        if code != 1000:
            raise AssertionError(f"close answered with {code}")
    return step


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    wsio = args[0]
    seconds = float(args[args.index("--seconds") + 1]) if "--seconds" in args else \
        float(os.environ.get("SOAK_SECONDS", 1800))
    json_out = args[args.index("--json") + 1] if "--json" in args else None
    warmup = max(20.0, seconds / 4)
    srv = Server(wsio, "--socketio-ping-interval", "5s", "--socketio-ping-timeout", "5s",
                 "--websocket-ping-interval", "5s")
    ok = True
    samples = []
    try:
        time.sleep(0.3)
        fds0 = srv.fds()
        m0 = srv.metrics()
        members = [member(srv.port, k) for k in range(10)]
        threads = [periodic(0.2, step, "member_acks") for _, step in members]
        threads += [periodic(0.25, sio_churn(srv.port), "sio_sessions"), periodic(0.5, polling(srv.port), "polling_sessions"),
                    periodic(0.25, echo(srv.port), "echo_sessions")]
        t0 = time.monotonic()
        print(f"soak: {seconds:.0f} s, warm-up {warmup:.0f} s, server pid {srv.pid}", flush=True)
        while time.monotonic() - t0 < seconds and srv.alive():
            time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - t0))))
            m = srv.metrics()
            s = {"t": round(time.monotonic() - t0, 1), "rss_kib": srv.rss_kib(), "fds": srv.fds(),
                 "sockets": m.get("wsio_sockets", 0), "errors": counts.get("errors", 0)}
            samples.append(s)
            print(f"  t={s['t']:6.1f}s rss={s['rss_kib']} KiB fds={s['fds']} sockets={s['sockets']:.0f} "
                  f"client errors={s['errors']}", flush=True)
        stop.set()
        for t in threads:
            t.join(15)
        for c, _ in members:
            c.close()
        t1 = time.monotonic()
        while srv.fds() > fds0 and time.monotonic() - t1 < 10:
            time.sleep(0.2)
        fds1 = srv.fds()
        m1 = srv.metrics()
        after = [s["rss_kib"] for s in samples if s["t"] > warmup]
        base = [s["rss_kib"] for s in samples if s["t"] <= warmup]
        rss_base = base[-1] if base else samples[0]["rss_kib"]
        rss_max = max(after) if after else rss_base
        limit = rss_base * 1.05 + 512
        report = {"seconds": seconds, "warmup_s": warmup, "counts": dict(counts), "rss_warm_kib": rss_base,
                  "rss_max_after_warmup_kib": rss_max, "rss_limit_kib": limit, "rss_end_kib": samples[-1]["rss_kib"],
                  "fds": [fds0, fds1], "samples": samples, "client_errors": errors,
                  "counters": {k: m1.get(k, 0) - m0.get(k, 0) for k in ERROR_COUNTERS},
                  "events_received": m1.get("wsio_events_received_total", 0),
                  "events_sent": m1.get("wsio_events_sent_total", 0)}
        print(f"soak: {json.dumps(report['counts'])}")
        print(f"soak: RSS {rss_base} KiB after warm-up, at most {rss_max} KiB after (limit {limit:.0f}); "
              f"fds {fds0} -> {fds1}; events in {report['events_received']:.0f}, out {report['events_sent']:.0f}")
        if not srv.alive():
            print("FAIL the server died")
            ok = False
        if errors:
            print("FAIL client errors:\n  " + "\n  ".join(errors))
            ok = False
        if rss_max > limit:
            print(f"FAIL RSS grew past 5% after warm-up: {rss_base} -> {rss_max} KiB")
            ok = False
        if fds1 != fds0:
            print(f"FAIL descriptors {fds0} at the start, {fds1} at the end")
            ok = False
        bad = {k: v for k, v in report["counters"].items() if v}
        if bad:
            print(f"FAIL error counters moved: {bad}")
            ok = False
        if min(counts.get(k, 0) for k in ("member_acks", "sio_sessions", "polling_sessions", "echo_sessions")) == 0:
            print("FAIL some kind of traffic never completed")
            ok = False
    finally:
        stop.set()
        rc = srv.stop()
    if rc != 0:
        print(f"FAIL wsio exited {rc} on SIGTERM")
        ok = False
    if json_out:
        with open(json_out, "w") as f:
            json.dump(report, f, indent=1)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
