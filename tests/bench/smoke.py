#!/usr/bin/python3
"""The benchmark's load generator, checked: bench/loadgen against the wsio program and bench/sio_server in each
mode it is used in (echo, batched echo, broadcast, batched broadcast; WebSocket and Socket.IO), short runs that
must deliver and find nothing wrong, and against a misbehaving server (python3-websockets) whose wrong bytes,
repeated broadcasts and reordered broadcasts it must report as mismatches with a failing exit status.

usage: smoke.py WSIO SIO_SERVER LOADGEN
"""
import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # drain
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"smoke: {cmd[0]} did not start: {line.strip()}")


def loadgen(lg, port, *args, pid=None):
    cmd = [lg, "--port", str(port), "--seconds", "1", "--warmup", "0.3", *args]
    if pid:
        cmd += ["--server-pid", str(pid)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    kv = dict(re.findall(r"(\w+)=(\S+)", r.stdout))
    return r.returncode, kv, r.stderr


failures = []


def check(name, ok, detail):
    print(f"smoke: {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def good_run(name, lg, port, args, conns, pid):
    rc, kv, err = loadgen(lg, port, *args, pid=pid)
    msgs = int(kv.get("msgs", "0"))
    ok = (rc == 0 and int(kv.get("open", "-1")) == conns + ("broadcast" in args)
          and kv.get("mismatches") == "0" and kv.get("protocol_errors") == "0" and msgs > 0
          and kv.get("stalled", "0") == "0" and float(kv.get("msgs_per_server_cpu_s", "0")) > 0)
    check(name, ok, f"rc={rc} open={kv.get('open')} msgs={msgs} mismatches={kv.get('mismatches')} "
          f"errors={kv.get('protocol_errors')} {err.strip()[-200:] if not ok else ''}")


# A misbehaving server: /echo changes the last byte of every message; /bcast sends every message twice to each
# receiver (/dup), changes the last byte of each (/flip) or swaps each pair of consecutive messages (/swap).
async def bad_server(port, ready):
    import websockets

    clients = set()
    held = {}

    async def handler(ws, path=None):
        path = path or ws.path
        if path == "/echo":
            async for m in ws:
                if isinstance(m, str):
                    m = m[:-1] + ("x" if m[-1:] != "x" else "y")
                await ws.send(m)
            return
        clients.add(ws)
        try:
            async for m in ws:
                for c in list(clients):
                    if path == "/dup":
                        await c.send(m)
                        await c.send(m)
                    elif path == "/flip":
                        await c.send(m[:-1] + ("x" if m[-1:] != "x" else "y"))
                    elif c in held:
                        await c.send(m)
                        await c.send(held.pop(c))
                    else:
                        held[c] = m
        finally:
            clients.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", port):
        ready.set()
        await asyncio.Future()


def main():
    wsio, sio_server, lg = sys.argv[1:4]
    port = free_port()
    srv = start([wsio, "--host", "127.0.0.1", "--port", str(port), "--ws-echo", "/echo", "--ws-broadcast",
                 "/bcast", "--workers", "1"])
    try:
        good_run("ws echo", lg, port, ["--mode", "echo", "--conns", "20", "--depth", "16"], 20, srv.pid)
        good_run("ws echo --batch", lg, port, ["--mode", "echo", "--conns", "20", "--depth", "16", "--batch"], 20,
                 srv.pid)
        good_run("ws broadcast", lg, port, ["--mode", "broadcast", "--conns", "50", "--depth", "8", "--size", "64"],
                 50, srv.pid)
        good_run("ws broadcast --batch", lg, port,
                 ["--mode", "broadcast", "--conns", "50", "--depth", "8", "--size", "64", "--batch"], 50, srv.pid)
    finally:
        srv.kill()
        srv.wait()

    port = free_port()
    srv = start([sio_server, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"])
    try:
        good_run("sio echo", lg, port, ["--protocol", "sio", "--mode", "echo", "--conns", "20"], 20, srv.pid)
        good_run("sio broadcast, two workers", lg, port,
                 ["--protocol", "sio", "--mode", "broadcast", "--conns", "100", "--depth", "512", "--size", "64"],
                 100, srv.pid)
    finally:
        srv.kill()
        srv.wait()

    port = free_port()
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(bad_server(port, ready)), daemon=True).start()
    if not ready.wait(10):
        sys.exit("smoke: the misbehaving server did not start")
    for name, args in [("changed echo bytes", ["--mode", "echo", "--conns", "2", "--depth", "2"]),
                       ("repeated broadcasts", ["--mode", "broadcast", "--path", "/dup", "--conns", "3",
                                                "--depth", "2", "--size", "32"]),
                       ("changed broadcast bytes", ["--mode", "broadcast", "--path", "/flip", "--conns", "3",
                                                    "--depth", "2", "--size", "32"]),
                       ("reordered broadcasts", ["--mode", "broadcast", "--path", "/swap", "--conns", "3",
                                                 "--depth", "2", "--size", "32"])]:
        rc, kv, err = loadgen(lg, port, *args)
        check(f"detects {name}", rc != 0 and int(kv.get("mismatches", "0")) > 0,
              f"rc={rc} mismatches={kv.get('mismatches')}")

    if failures:
        sys.exit(f"smoke: {len(failures)} failed: {', '.join(failures)}")
    print("smoke: all passed")


if __name__ == "__main__":
    main()
