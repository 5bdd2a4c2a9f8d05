"""Protocol v2 (docs/protocol.md), the same checks for every daemon that speaks it from Python
test suites (python and php; node's suite is in JavaScript): hello, multiplexed calls on one
connection, raw bodies, limits, protocol errors, cancel, stdin EOF. Not a test module itself:
`runtimes/python/test_v2.py` and `runtimes/php/v2_test.py` mix `V2Suite` into a TestCase.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

HEAD = struct.Struct(">IIBI")


def v1_frame(obj):
    raw = json.dumps(obj).encode()
    return struct.pack(">I", len(raw)) + raw


def v2_frame(cid, kind, meta, body=b""):
    """`meta`: a dict (JSON), bytes (sent as is) or None (empty)."""
    m = b"" if meta is None else meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return HEAD.pack(9 + len(m) + len(body), cid, kind, len(m)) + m + body


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return bytes(out)


def v1_call(sock, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock)
        s.sendall(v1_frame(req))
        n = struct.unpack(">I", recv_exact(s, 4))[0]
        return json.loads(recv_exact(s, n))
    finally:
        s.close()


class Client:
    """A v2 connection: hello on open; `reply(id)` reads frames until that id's reply has
    come (others are kept); `order` lists reply ids in arrival order."""

    def __init__(self, sock, extra=b""):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock)
        self.s.sendall(v1_frame({"fastfn_hello": 2}) + extra)
        n = struct.unpack(">I", recv_exact(self.s, 4))[0]
        self.hello = json.loads(recv_exact(self.s, n))
        self.replies = {}
        self.order = []
        self.next_id = 1

    def send(self, data):
        self.s.sendall(data)

    def call(self, meta, body=b""):
        cid = self.next_id
        self.next_id += 1
        self.send(v2_frame(cid, 1, meta, body))
        return cid

    def read_one(self):
        length, cid, kind, meta_len = HEAD.unpack(recv_exact(self.s, 13))
        assert kind == 2, kind
        rest = recv_exact(self.s, length - 9)
        self.replies[cid] = (json.loads(rest[:meta_len]), rest[meta_len:])
        self.order.append(cid)
        return cid

    def reply(self, cid):
        while cid not in self.replies:
            self.read_one()
        return self.replies[cid]

    def is_closed(self, timeout=2.0):
        """True when the daemon closes the connection (with no reply frame first)."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def req(fn, query=None, **event):
    ev = {"method": "POST", "path": "/x", "raw_path": "/x", "query": query or {},
          "headers": {}, "params": {}}
    ev.update(event)
    return {"fn": fn, "handler": "handler", "adapter": "native", "event": ev}


def start_daemon(command, root, sock, **env):
    """`command`: the daemon's argv without the socket path."""
    e = dict(os.environ, FN_FUNCTIONS_ROOT=root, FN_DAEMON_PROTOCOL="2", **env)
    proc = subprocess.Popen(command + [sock], env=e, stdin=subprocess.PIPE)
    end = time.monotonic() + 10
    while True:  # ready when it accepts (the socket file exists a moment before listen())
        if time.monotonic() > end or proc.poll() is not None:
            raise RuntimeError("daemon did not come up")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            return proc
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()


def stop_daemon(proc):
    proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # never leave a daemon behind, even when it is broken
        proc.kill()
        proc.wait()


class V2Suite:
    """Mix into a `unittest.TestCase` with: `COMMAND` (the daemon's argv without the socket),
    `FILES` (handlers `hello`, `wait`, `echo`, `digest`, `bin` in the daemon's language),
    `RUNTIME` (what its hello says), `PARALLEL` ((calls, seconds): that many 300 ms calls on
    one connection must all answer within that time)."""

    COMMAND = None
    FILES = None
    RUNTIME = None
    PARALLEL = (10, 0.9)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fn%s-v2-" % cls.RUNTIME)
        cls.root = os.path.join(cls.tmp, "functions")
        for rel, text in cls.FILES.items():
            p = os.path.join(cls.root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        cls.sock = os.path.join(cls.tmp, "v2.sock")
        cls.proc = start_daemon(cls.COMMAND, cls.root, cls.sock, FN_MAX_FRAME_BYTES=str(8 << 20))
        cls.small_sock = os.path.join(cls.tmp, "small.sock")
        cls.small = start_daemon(cls.COMMAND, cls.root, cls.small_sock, FN_MAX_FRAME_BYTES=str(64 << 10))

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.proc)
        stop_daemon(cls.small)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def client(self, sock=None, extra=b""):
        c = Client(sock or self.sock, extra)
        self.addCleanup(c.close)
        return c

    def test_hello_then_calls_and_v1_still_served(self):
        c = self.client()
        self.assertEqual(c.hello, {"fastfn_hello": 2, "runtime": self.RUNTIME, "pid": self.proc.pid})
        meta, body = c.reply(c.call(req("hello", {"name": "v2"})))
        self.assertEqual((meta["status"], meta["body"], body), (200, "hello v2", b""))
        meta, _ = c.reply(c.call(req("hello", {"name": "again"})))
        self.assertEqual(meta["body"], "hello again")
        self.assertEqual(v1_call(self.sock, req("hello", {"name": "v1"}))["body"], "hello v1")

    def test_calls_right_behind_the_hello_and_in_pieces(self):
        c = self.client(extra=v2_frame(7, 1, req("hello", {"name": "early"})))
        self.assertEqual(c.reply(7)[0]["body"], "hello early")
        f = v2_frame(8, 1, req("hello", {"name": "pieces"}))
        for i in range(0, len(f), 5):
            c.send(f[i:i + 5])
            time.sleep(0.001)
        self.assertEqual(c.reply(8)[0]["body"], "hello pieces")

    def test_slow_call_does_not_hold_back_a_fast_one(self):
        c = self.client()
        slow = c.call(req("wait", {"ms": "300"}))
        fast = c.call(req("hello", {"name": "fast"}))
        t0 = time.monotonic()
        self.assertEqual(c.reply(fast)[0]["body"], "hello fast")
        self.assertLess(time.monotonic() - t0, 0.2)
        self.assertEqual(c.reply(slow)[0]["body"], '{"ms":"300"}')
        self.assertEqual(c.order, [fast, slow])

    def test_slow_calls_of_one_connection_run_in_parallel(self):
        c = self.client()
        t0 = time.monotonic()
        calls, within = self.PARALLEL
        ids = [c.call(req("wait", {"ms": "300"})) for _ in range(calls)]
        for i in ids:
            self.assertEqual(c.reply(i)[0]["body"], '{"ms":"300"}')
        self.assertLess(time.monotonic() - t0, within)

    def test_fifty_pipelined_calls(self):
        c = self.client()
        c.send(b"".join(
            v2_frame(i, 1, req("hello" if i % 2 else "wait", {"name": "n%d" % i, "ms": str(i % 7)}))
            for i in range(1, 51)))
        for i in range(1, 51):
            want = "hello n%d" % i if i % 2 else '{"ms":"%d"}' % (i % 7)
            self.assertEqual(c.reply(i)[0]["body"], want, i)
        self.assertEqual(sorted(c.order), list(range(1, 51)))

    def test_raw_binary_body_as_v1_gives_it(self):
        c = self.client()
        data = bytes(range(256))
        v2 = c.reply(c.call(req("echo", {"i": "1"}), data))[0]
        v1 = v1_call(self.sock, req("echo", {"i": "1"}, body=data.decode("utf-8", "replace"),
                                    body_base64=base64.b64encode(data).decode()))
        self.assertEqual(v2["body"], v1["body"])
        self.assertEqual(json.loads(v2["body"])["b64"], base64.b64encode(data).decode())
        text = c.reply(c.call(req("echo", {"i": "2"}), "héllo".encode()))[0]
        self.assertEqual(json.loads(text["body"]), {"id": "2", "text": "héllo", "b64": None})
        none = c.reply(c.call(req("echo", {"i": "3"})))[0]
        self.assertEqual(json.loads(none["body"]), {"id": "3", "text": None, "b64": None})
        big = os.urandom(1536 * 1024)
        big_v2 = c.reply(c.call(req("digest"), big))[0]
        big_v1 = v1_call(self.sock, req("digest", body=big.decode("utf-8", "replace"),
                                        body_base64=base64.b64encode(big).decode()))
        self.assertEqual(big_v2["status"], 200)
        self.assertEqual(big_v2["body"], big_v1["body"])
        self.assertEqual(json.loads(big_v2["body"])["b64"],
                         hashlib.sha256(base64.b64encode(big)).hexdigest())

    def test_binary_reply_body_is_raw(self):
        c = self.client()
        meta, body = c.reply(c.call(req("bin")))
        self.assertEqual(meta["status"], 200)
        self.assertEqual(meta["headers"]["Content-Type"], "application/octet-stream")
        self.assertNotIn("body_base64", meta)
        self.assertNotIn("is_base64", meta)
        self.assertEqual(body, b"\x00\x01\x02\xfa")
        self.assertEqual(c.reply(c.call(req("hello", {"name": "t"})))[1], b"")

    def test_over_limit_call_gets_413_and_the_connection_serves_on(self):
        c = self.client(self.small_sock)
        over = c.call(req("echo", {"i": "big"}), b"x" * (1 << 20))  # several reads
        nxt = c.call(req("hello", {"name": "after"}))
        meta, _ = c.reply(over)
        self.assertEqual((meta["status"], meta["body"]), (413, '{"error":"payload too large"}'))
        self.assertEqual(c.reply(nxt)[0]["body"], "hello after")

    def test_malformed_header_or_meta_closes_the_connection(self):
        big = bytearray(v2_frame(1, 1, req("hello", {"name": "x"})))
        struct.pack_into(">I", big, 9, len(big))  # meta_len > len - 9
        cases = {
            "len < 9": struct.pack(">I", 8) + b"\x00" * 8,
            "id 0": v2_frame(0, 1, req("hello", {"name": "x"})),
            "unknown kind": v2_frame(1, 9, req("hello", {"name": "x"})),
            "meta_len too big": bytes(big),
            "array meta": v2_frame(1, 1, b"[1]"),
            "invalid JSON meta": v2_frame(1, 1, b'{"fn":'),
        }
        for what, data in cases.items():
            c = self.client()
            c.send(data)
            self.assertTrue(c.is_closed(), what)
        self.assertEqual(v1_call(self.sock, req("hello", {"name": "alive"}))["body"], "hello alive")

    def test_cancel_unknown_or_finished_is_harmless(self):
        c = self.client()
        c.send(v2_frame(999, 3, None))
        self.assertEqual(c.reply(c.call(req("hello", {"name": "a"})))[0]["body"], "hello a")
        c.send(v2_frame(1, 3, None))  # already answered
        self.assertEqual(c.reply(c.call(req("hello", {"name": "b"})))[0]["body"], "hello b")
        # A call cancelled in the same write, before it could start, is dropped.
        c.send(v2_frame(50, 1, req("hello", {"name": "dropped"})) + v2_frame(50, 3, None))
        self.assertEqual(c.reply(c.call(req("hello", {"name": "c"})))[0]["body"], "hello c")
        c.s.settimeout(0.1)
        with self.assertRaises(socket.timeout):
            c.read_one()
        self.assertNotIn(50, c.replies)

    def test_stdin_eof_exits_with_a_v2_connection_open(self):
        sock = os.path.join(self.tmp, "eof.sock")
        proc = start_daemon(self.COMMAND, self.root, sock)
        try:
            c = self.client(sock)
            c.call(req("wait", {"ms": "5000"}))
            time.sleep(0.05)
            t0 = time.monotonic()
            proc.stdin.close()
            proc.wait(5)
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertTrue(c.is_closed())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdin.close()


if __name__ == "__main__":
    unittest.main()
