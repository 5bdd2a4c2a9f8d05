#!/usr/bin/env python3
"""Load client for the PHP daemon (client copied from runtimes/python/bench_direct.py).

    python3 bench_direct.py client SOCK [--conc 16] [--secs 5] [--fn hello/handler.php]
    python3 bench_direct.py run [--runs 3] [--conc 16] [--secs 5]   # start the daemon, measure

The client runs `--conc` worker processes; each loops connect / write one frame / read one
frame / close for `--secs` seconds and counts good replies (status 200).
"""
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


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


def run_client(path, conc=16, secs=5.0, fn="hello/handler.php"):
    req = {"fn": fn, "entry": fn, "handler": "handler", "adapter": "native",
           "event": {"id": "req-1-1-000001", "method": "GET", "path": "/hello",
                     "raw_path": "/hello", "query": {}, "params": {}, "path_params": {},
                     "headers": {"host": "127.0.0.1"}, "session": None,
                     "client": {"ip": "127.0.0.1", "ua": "bench"},
                     "context": {"request_id": "req-1-1-000001", "runtime": "php",
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


def run(runs=3, conc=16, secs=5.0):
    tmp = tempfile.mkdtemp(prefix="fnbench-php-")
    root = os.path.join(tmp, "functions")
    os.makedirs(os.path.join(root, "hello"))
    with open(os.path.join(root, "hello", "handler.php"), "w") as f:
        f.write("<?php\nfunction handler(array $event) { return 'hello'; }\n")
    sock = os.path.join(tmp, "php.sock")
    env = dict(os.environ, FN_FUNCTIONS_ROOT=root)
    proc = subprocess.Popen([os.environ.get("FN_PHP_BIN") or "php", os.path.join(HERE, "daemon.php"), sock],
                            env=env, stdin=subprocess.PIPE)
    results = []
    try:
        _wait_socket(sock)
        run_client(sock, conc, 1.0)  # warm up: the pool grows to its size
        for i in range(runs):
            rps, ok, bad, _ = run_client(sock, conc, secs)
            results.append(rps)
            print(f"run {i + 1} {rps:9.0f} req/s  (ok={ok} bad={bad})", flush=True)
    finally:
        proc.stdin.close()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"median {statistics.median(results):.0f} req/s at {conc} connections")


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["client", "run"])
    ap.add_argument("sock", nargs="?")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fn", default="hello/handler.php")
    a = ap.parse_args(argv)
    if a.mode == "client":
        rps, ok, bad, _ = run_client(a.sock, a.conc, a.secs, a.fn)
        print(f"{rps:.0f} req/s (ok={ok} bad={bad})")
    else:
        run(a.runs, a.conc, a.secs)


if __name__ == "__main__":
    main(sys.argv[1:])
