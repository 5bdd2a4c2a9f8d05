#!/usr/bin/env python3
"""Load client (and a minimal reference frame server) for the Python daemon.

    python3 bench_direct.py minimal-server SOCK            # reference: smallest useful frame server
    python3 bench_direct.py client SOCK [--conc 16] [--secs 5] [--fn hello/handler.py]
    python3 bench_direct.py compare [--runs 3]             # minimal vs daemon, medians

The client runs `--conc` worker processes; each loops connect / write one frame / read one
frame / close for `--secs` seconds and counts good replies (status 200). Processes (not
threads) so the client's own GIL does not cap the figure.
"""
import json
import multiprocessing
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def minimal_server(path):
    """Single-threaded accept loop: read one frame, decode JSON, reply a fixed JSON, close."""
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1024)
    dumps, loads, pack = json.dumps, json.loads, struct.pack
    while True:
        conn, _ = srv.accept()
        try:
            data = conn.recv(65536)
            if len(data) < 4:  # a readiness probe: connect and close
                continue
            n = int.from_bytes(data[:4], "big")
            while len(data) < n + 4:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            req = loads(data[4:4 + n])
            body = dumps({"status": 200, "headers": {"Content-Type": "text/plain"},
                          "body": "hello " + str(req.get("fn"))}).encode()
            conn.sendall(pack(">I", len(body)) + body)
        finally:
            conn.close()


def _frame(obj):
    raw = json.dumps(obj).encode()
    return struct.pack(">I", len(raw)) + raw


def _worker(path, frame, secs, q):
    ok = bad = 0
    deadline = time.monotonic() + secs
    AF, ST = socket.AF_UNIX, socket.SOCK_STREAM
    while time.monotonic() < deadline:
        s = socket.socket(AF, ST)
        try:
            s.connect(path)
            s.sendall(frame)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            bad += 1
            continue
        finally:
            s.close()
        if len(data) > 4 and b'"status":200' in data.replace(b" ", b""):
            ok += 1
        else:
            bad += 1
    q.put((ok, bad))


def run_client(path, conc=16, secs=5.0, fn="hello/handler.py"):
    req = {"fn": fn, "entry": fn, "handler": "handler", "adapter": "native",
           "event": {"id": "req-1-1-000001", "method": "GET", "path": "/hello",
                     "raw_path": "/hello", "query": {}, "params": {}, "path_params": {},
                     "headers": {"host": "127.0.0.1"}, "session": None,
                     "client": {"ip": "127.0.0.1", "ua": "bench"},
                     "context": {"request_id": "req-1-1-000001", "runtime": "python",
                                 "function_name": "hello", "version": "default"}}}
    frame = _frame(req)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, frame, secs, q)) for _ in range(conc)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    res = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    ok = sum(r[0] for r in res)
    bad = sum(r[1] for r in res)
    return ok / secs, ok, bad, elapsed


def _wait_socket(path, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    raise RuntimeError("server did not come up on " + path)


def compare(runs=3, conc=16, secs=5.0):
    tmp = tempfile.mkdtemp(prefix="fnbench-")
    root = os.path.join(tmp, "functions")
    os.makedirs(os.path.join(root, "hello"))
    with open(os.path.join(root, "hello", "handler.py"), "w") as f:
        f.write("def handler(event):\n    return 'hello'\n")
    results = {"minimal": [], "daemon": []}
    for i in range(runs):
        for kind in ("minimal", "daemon"):
            sock = os.path.join(tmp, kind + ".sock")
            if kind == "minimal":
                cmd = [sys.executable, os.path.abspath(__file__), "minimal-server", sock]
            else:
                cmd = [sys.executable, os.path.join(HERE, "daemon.py"), sock]
            env = dict(os.environ, FN_FUNCTIONS_ROOT=root)
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE)
            try:
                _wait_socket(sock)
                rps, ok, bad, _ = run_client(sock, conc, secs)
            finally:
                proc.terminate()
                proc.wait()
                if os.path.exists(sock):
                    os.unlink(sock)
            results[kind].append(rps)
            print(f"run {i + 1} {kind:8s} {rps:9.0f} req/s  (ok={ok} bad={bad})", flush=True)
    m = statistics.median(results["minimal"])
    d = statistics.median(results["daemon"])
    print(f"median minimal {m:.0f} req/s, daemon {d:.0f} req/s, ratio {d / m:.2f}")


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["minimal-server", "client", "compare"])
    ap.add_argument("sock", nargs="?")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fn", default="hello/handler.py")
    a = ap.parse_args(argv)
    if a.mode == "minimal-server":
        minimal_server(a.sock)
    elif a.mode == "client":
        rps, ok, bad, _ = run_client(a.sock, a.conc, a.secs, a.fn)
        print(f"{rps:.0f} req/s (ok={ok} bad={bad})")
    else:
        compare(a.runs, a.conc, a.secs)


if __name__ == "__main__":
    main(sys.argv[1:])
