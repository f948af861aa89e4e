#!/usr/bin/python3
"""Reconnect storms: N Socket.IO clients lose their connections at once and come back.

Usage: storm.py PATH_TO_WSIO PATH_TO_LOADGEN [--clients N] [--workers N (1)] [--demo] [--json FILE]

The clients are bench/loadgen --mode storm (C, one epoll loop; bench/lg/storm.c): they behave as
socket.io-client does with its defaults. On a lost connection each waits the randomized back-off
(reconnectionDelay 1 s doubling per failed attempt up to reconnectionDelayMax 5 s, randomizationFactor 0.5:
the first wait is 0.5..1.5 s), then sends CONNECT with the private id and the last offset it saw
(`40{"pid":..,"offset":..}`); the answer's pid equal to theirs is socket.io-client's `recovered`. A client
gives up after 10 failed attempts in a row (socket.io-client's default is never: the count makes giving up
visible). The server runs as deployed for an application: one worker (recovery state is per worker), a
configuration file and a web root (so without the built-in demo's presence broadcasts; --demo keeps them),
connection state recovery on (2 min) and its publish API; every broadcast `tick` carries its offset.
  1. blip: every client's TCP connection is reset at the same moment (RST, client side) while the server
     keeps running, as when a load balancer or a network path drops them; ticks 1..3 are broadcast while
     they are away. All must come back with `recovered` true and get the three missed ticks, once each.
  2. restart: the server is killed (SIGKILL) and started again on the same port a second later. All must
     come back; recovery state lived in the dead process, so `recovered` is false by design (socket.io's
     in-memory adapter behaves the same). A tick after it must reach everyone.
In both, no collapse: no client gives up, no attempt fails once the server runs (refused while it is down is
expected, and so is a reset from the killed process's teardown), no error counter of /metrics moves, no
error is logged, and the kernel's accept queue does not overflow (TcpExt ListenOverflows and ListenDrops in
/proc/net/netstat, machine-wide, unchanged).
Prints the time until all were back, the peak rate of completed handshakes (the clients' CONNECT answers
per second over any 1 s window) and the server's CPU time, per phase.
"""
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rel import Server, die_with_parent, http_request  # noqa: E402

KEY = "storm-key"
ERROR_COUNTERS = ["wsio_parse_errors_total", "wsio_slow_consumer_closes_total", "wsio_rejected_connections_total",
                  "wsio_dropped_messages_total", "wsio_api_rejected_total", "wsio_auth_rejected_total",
                  "wsio_limit_ip_connections_refused_total", "wsio_limit_handshakes_refused_total"]
FAILURES = ["refused", "reset", "timeout", "protocol", "other"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def listen_overflows():
    """TcpExt ListenOverflows + ListenDrops, machine-wide."""
    with open("/proc/net/netstat") as f:
        lines = [ln.split() for ln in f if ln.startswith("TcpExt:")]
    row = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return row["ListenOverflows"] + row["ListenDrops"]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    """The loadgen process holding the clients; commands on its stdin, one stats line back per `stats`."""

    def __init__(self, loadgen, port, n):
        self.proc = subprocess.Popen([loadgen, "--mode", "storm", "--port", str(port), "--conns", str(n),
                                      "--reconnect-attempts", "10"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=die_with_parent)
        self.n = n

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stats(self):
        self.cmd("stats")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"loadgen exited ({self.proc.wait()})")
        out = {}
        for kv in line.split():
            k, v = kv.split("=", 1)
            if k == "ticks":
                out[k] = {int(a): int(b) for a, b in (t.split(":") for t in v.split(","))} if v != "-" else {}
            else:
                out[k] = float(v) if "." in v else int(v)
        return out

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        while True:
            st = self.stats()
            if cond(st) or time.monotonic() > end:
                return st
            time.sleep(0.05)

    def cpu_s(self):
        return cpu_s(self.proc.pid)

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def emit_tick(port, n):
    body = json.dumps({"event": "tick", "data": [n]}).encode()
    st, _, resp = http_request(port, b"POST /api/emit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    if st != 200:
        raise RuntimeError(f"/api/emit: {st} {resp[:80]!r}")
    return json.loads(resp).get("recipients")


def errors_logged(srv):
    return [ln for ln in srv.log if len(ln.split()) > 1 and ln.split()[1] in ("error", "fatal")]


def phase_figures(st, n):
    return {"all_back": st["back"] == n, "all_back_s": st["all_back_s"], "half_back_s": st["half_back_s"],
            "peak_handshakes_per_s": st["peak_per_s"], "recovered": st["recovered"], "attempts": st["attempts"],
            "failed_attempts": {k: st[k] for k in FAILURES if st[k]}, "gave_up": st["gave_up"],
            "events": st["events"], "dup_ticks": st["dup_ticks"]}


def storm(wsio, loadgen, n, demo, tmp, workers=1):
    port = free_port()
    args = ("--port", str(port), "--workers", str(workers), "--socketio-recovery", "2m", "--api-key", KEY,
            "--log-level", "info", "--socketio-ping-interval", "20s", "--socketio-ping-timeout", "20s")
    if not demo:  # the demo's presence ("online" to everyone at each connect and disconnect) is off
        conf = os.path.join(tmp, "wsio.conf")
        with open(conf, "w") as f:
            f.write("# reliability/storm: every setting is a flag\n")
        os.mkdir(os.path.join(tmp, "www"))
        args += ("--config", conf, "--web-root", os.path.join(tmp, "www"))
    srv = Server(wsio, *args)
    fleet = Fleet(loadgen, port, n)
    out = {"clients": n, "demo": demo}
    ok = True
    try:
        t0 = time.monotonic()
        st = fleet.wait(lambda s: s["ready"] == n, 120)
        if st["ready"] != n:
            raise RuntimeError(f"only {st['ready']} of {n} connected: {st}")
        out["initial_connect_s"] = round(time.monotonic() - t0, 2)
        print(f"storm: {n} clients connected in {out['initial_connect_s']} s; server RSS {srv.rss_kib()} KiB, "
              f"{srv.fds()} fds", flush=True)
        emit_tick(port, 0)
        if fleet.wait(lambda s: s["ticks"].get(0) == n, 30)["ticks"].get(0) != n:
            raise RuntimeError("tick 0 did not reach everyone")

        # 1. blip: every connection reset at once, ticks 1..3 broadcast while they are away.
        m0, ov0, scpu0, ccpu0 = srv.metrics(), listen_overflows(), srv.cpu_s(), fleet.cpu_s()
        fleet.cmd("reset")
        time.sleep(0.2)
        for k in (1, 2, 3):
            emit_tick(port, k)
        st = fleet.wait(lambda s: s["back"] == n and all(s["ticks"].get(k) == n for k in (1, 2, 3)), 60)
        m1, ov1 = srv.metrics(), listen_overflows()
        blip = phase_figures(st, n)
        moved = {k: m1.get(k, 0) - m0.get(k, 0) for k in ERROR_COUNTERS if m1.get(k, 0) != m0.get(k, 0)}
        blip.update({"missed_ticks_delivered": {k: st["ticks"].get(k, 0) for k in (1, 2, 3)},
                     "server_cpu_s": round(srv.cpu_s() - scpu0, 2), "loadgen_cpu_s": round(fleet.cpu_s() - ccpu0, 2),
                     "listen_overflows": ov1 - ov0, "error_counters": moved, "server_rss_kib": srv.rss_kib()})
        out["blip"] = blip
        print(f"storm: blip: {st['back']}/{n} back in {st['all_back_s']:.2f} s (half by {st['half_back_s']:.2f} s, "
              f"peak {st['peak_per_s']} handshakes/s), recovered {st['recovered']}, missed ticks delivered "
              f"{blip['missed_ticks_delivered']}, duplicates {st['dup_ticks']}, failed attempts "
              f"{blip['failed_attempts']}, gave up {st['gave_up']}; server CPU {blip['server_cpu_s']} s, loadgen CPU "
              f"{blip['loadgen_cpu_s']} s; listen overflows {blip['listen_overflows']}, error counters "
              f"{blip['error_counters']}", flush=True)
        ok &= (blip["all_back"] and st["recovered"] == n
               and all(v == n for v in blip["missed_ticks_delivered"].values()) and st["dup_ticks"] == 0
               and not blip["failed_attempts"] and st["gave_up"] == 0 and blip["listen_overflows"] == 0
               and not blip["error_counters"])

        # 2. restart: SIGKILL, a second down, started again on the same port.
        logged = errors_logged(srv)
        ov0, ccpu0 = listen_overflows(), fleet.cpu_s()
        fleet.cmd("mark")
        mark = fleet.stats()["mark_s"]
        srv.stop(signal.SIGKILL)
        time.sleep(1.0)
        started = time.monotonic()
        srv = Server(wsio, *args)
        listening = time.monotonic()
        st = fleet.wait(lambda s: s["back"] == n or s["gave_up"] > 0, 120)
        m1, ov1 = srv.metrics(), listen_overflows()
        recipients = emit_tick(port, 4)
        ticked = fleet.wait(lambda s: s["ticks"].get(4) == n, 30)["ticks"].get(4, 0)
        restart = phase_figures(st, n)
        # Refused while no process listens; an attempt caught by the old process's teardown may be reset. Once
        # the new process runs, nothing may fail.
        others = {k: v for k, v in restart["failed_attempts"].items() if k != "refused"}
        after = others if st["last_failure_s"] >= started - mark else {}
        restart.update({"all_back_after_listening_s": round(mark + st["all_back_s"] - listening, 2)
                        if st["back"] == n else None,
                        "refused_while_down": st["refused"], "other_failures": others, "failures_after_start": after,
                        "tick_recipients": recipients, "tick_delivered": ticked,
                        "server_cpu_s": round(srv.cpu_s(), 2), "loadgen_cpu_s": round(fleet.cpu_s() - ccpu0, 2),
                        "listen_overflows": ov1 - ov0,
                        "error_counters": {k: m1[k] for k in ERROR_COUNTERS if m1.get(k, 0)},
                        "server_rss_kib": srv.rss_kib(), "server_fds": srv.fds()})
        out["restart"] = restart
        print(f"storm: restart: {st['back']}/{n} back {restart['all_back_after_listening_s']} s after the new process "
              f"listened ({st['all_back_s']:.2f} s after the kill, half by {st['half_back_s']:.2f} s, peak "
              f"{st['peak_per_s']} handshakes/s); recovered {st['recovered']} (expected 0: the state died with the "
              f"process); tick after it reached {recipients}, delivered {ticked}; refused while down "
              f"{st['refused']}, other failed attempts {others} (after the new process started: {after}), gave up "
              f"{st['gave_up']}; server CPU "
              f"{restart['server_cpu_s']} s, loadgen CPU {restart['loadgen_cpu_s']} s; listen overflows "
              f"{restart['listen_overflows']}, error counters {restart['error_counters']}", flush=True)
        ok &= (restart["all_back"] and st["recovered"] == 0 and recipients == n and ticked == n and not after
               and st["gave_up"] == 0 and restart["listen_overflows"] == 0 and not restart["error_counters"])
        out["errors_logged"] = (logged + errors_logged(srv))[:10]
        ok &= not out["errors_logged"]
    finally:
        code = fleet.quit()
        out["loadgen_exit"] = code
        srv_code = srv.stop()
        out["server_exit"] = srv_code
    ok &= code == 0 and srv_code == 0
    if code != 0 or srv_code != 0:
        print(f"storm: loadgen exited {code}, the server {srv_code}", flush=True)
    return ok, out


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    n = int(args[args.index("--clients") + 1]) if "--clients" in args else 10000
    json_out = args[args.index("--json") + 1] if "--json" in args else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server and loadgen inherit it
    if hard < n + 100:
        print(f"storm: {n} clients need more descriptors than the limit, {hard}")
        return 2
    with tempfile.TemporaryDirectory(prefix="wsio-storm-") as tmp:
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        ok, out = storm(args[0], args[1], n, "--demo" in args, tmp, workers)
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f, indent=1)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
