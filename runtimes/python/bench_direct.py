#!/usr/bin/env python3
"""Load client (and a minimal reference frame server) for the Python daemon.

    python3 bench_direct.py minimal-server SOCK            # reference: smallest useful frame server
    python3 bench_direct.py client SOCK [--conc 16] [--secs 5] [--fn hello/handler.py]
    python3 bench_direct.py client SOCK --proto 2 [--conc 4] [--inflight 16]
    python3 bench_direct.py compare [--runs 3]             # minimal vs daemon (v1), medians
    python3 bench_direct.py compare-v2 [--runs 3]          # daemon: v1 vs v2, medians

The client runs `--conc` worker processes; each counts good replies (status 200) for `--secs`
seconds. Processes (not threads) so the client's own GIL does not cap the figure.
- v1 (`--proto 1`): each loops connect / write one frame / read one frame / close.
- v2 (`--proto 2`): each opens one persistent connection (hello), keeps `--inflight` calls in
  flight on it (a new call per reply, ids reused once answered) and reads replies in any order.
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


def _worker_v2(path, meta, secs, inflight, q):
    ok = bad = 0
    head = struct.Struct(">IIBI")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(_frame({"fastfn_hello": 2}))
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        buf += s.recv(65536)
    buf = buf[4 + int.from_bytes(buf[:4], "big"):]
    calls = [head.pack(9 + len(meta), i, 1, len(meta)) + meta for i in range(1, inflight + 1)]
    s.sendall(b"".join(calls))
    pending = inflight
    deadline = time.monotonic() + secs
    while pending:
        more = s.recv(262144)
        if not more:
            bad += pending
            break
        buf += more
        off = 0
        out = []
        sending = time.monotonic() < deadline
        while len(buf) - off >= 13:
            length, cid, _, meta_len = head.unpack_from(buf, off)
            if len(buf) - off < 4 + length:
                break
            if b'"status":200' in buf[off + 13:off + 13 + meta_len]:
                ok += 1
            else:
                bad += 1
            off += 4 + length
            if sending:
                out.append(calls[cid - 1])
            else:
                pending -= 1
        buf = buf[off:]
        if out:
            s.sendall(b"".join(out))
    s.close()
    q.put((ok, bad))


def run_client(path, conc=16, secs=5.0, fn="hello/handler.py", proto=1, inflight=16):
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
    if proto == 2:
        meta = json.dumps(req).encode()
        procs = [ctx.Process(target=_worker_v2, args=(path, meta, secs, inflight, q))
                 for _ in range(conc)]
    else:
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


def compare_v2(runs=3, conc=16, secs=5.0, conc_v2=4, inflight=16):
    """The daemon alone: v1 clients (`conc` connections at a time) vs v2 clients (`conc_v2`
    persistent connections, `inflight` calls each)."""
    tmp = tempfile.mkdtemp(prefix="fnbench-")
    root = os.path.join(tmp, "functions")
    os.makedirs(os.path.join(root, "hello"))
    with open(os.path.join(root, "hello", "handler.py"), "w") as f:
        f.write("def handler(event):\n    return 'hello'\n")
    results = {"v1": [], "v2": []}
    for i in range(runs):
        for proto in ("v1", "v2"):
            sock = os.path.join(tmp, "daemon.sock")
            env = dict(os.environ, FN_FUNCTIONS_ROOT=root, FN_DAEMON_PROTOCOL="2")
            proc = subprocess.Popen([sys.executable, os.path.join(HERE, "daemon.py"), sock],
                                    env=env, stdin=subprocess.PIPE)
            try:
                _wait_socket(sock)
                if proto == "v1":
                    rps, ok, bad, _ = run_client(sock, conc, secs)
                else:
                    rps, ok, bad, _ = run_client(sock, conc_v2, secs, proto=2, inflight=inflight)
            finally:
                proc.terminate()
                proc.wait()
                if os.path.exists(sock):
                    os.unlink(sock)
            results[proto].append(rps)
            print(f"run {i + 1} daemon {proto} {rps:9.0f} req/s  (ok={ok} bad={bad})", flush=True)
    a = statistics.median(results["v1"])
    b = statistics.median(results["v2"])
    print(f"median daemon v1 {a:.0f} req/s ({conc} connections, one call each), "
          f"v2 {b:.0f} req/s ({conc_v2} connections x {inflight} in flight), ratio {b / a:.2f}")


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["minimal-server", "client", "compare", "compare-v2"])
    ap.add_argument("sock", nargs="?")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fn", default="hello/handler.py")
    ap.add_argument("--proto", type=int, choices=[1, 2], default=1)
    ap.add_argument("--inflight", type=int, default=16, help="v2: calls in flight per connection")
    ap.add_argument("--conc-v2", type=int, default=4, help="compare-v2: v2 connections")
    a = ap.parse_args(argv)
    if a.mode == "minimal-server":
        minimal_server(a.sock)
    elif a.mode == "client":
        rps, ok, bad, _ = run_client(a.sock, a.conc, a.secs, a.fn, a.proto, a.inflight)
        print(f"{rps:.0f} req/s (ok={ok} bad={bad})")
    elif a.mode == "compare-v2":
        compare_v2(a.runs, a.conc, a.secs, a.conc_v2, a.inflight)
    else:
        compare(a.runs, a.conc, a.secs)


if __name__ == "__main__":
    main(sys.argv[1:])
