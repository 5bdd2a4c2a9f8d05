"""Tests for the PHP runtime daemon: a real daemon process on a temp Unix socket.

    python3 -m unittest discover -s runtimes/php -p '*_test.py'
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.php")
PHP = os.environ.get("FN_PHP_BIN") or "php"

FILES = {
    "hello/handler.php": "<?php\nfunction handler(array $event) {\n    return 'hello ' . $event['method'];\n}\n",
    "params/handler.php": (
        "<?php\nfunction handler(array $event, array $params) {\n"
        "    return ['id' => $params['id'], 'same' => $params === $event['params']];\n}\n"),
    "noargs/handler.php": "<?php\nfunction handler() { return ['noargs' => true]; }\n",
    "ret/array.php": "<?php\nfunction handler($e) { return ['a' => 1, 'b' => [1, 2]]; }\n",
    "ret/list.php": "<?php\nfunction handler($e) { return [1, 'x']; }\n",
    "ret/null.php": "<?php\nfunction handler($e) { return null; }\n",
    "ret/html.php": "<?php\nfunction handler($e) { return '  <h1>hi</h1>'; }\n",
    "ret/text.php": "<?php\nfunction handler($e) { return 'plain'; }\n",
    "ret/binary.php": "<?php\nfunction handler($e) { return \"\\x00\\x01\\xff\"; }\n",
    "ret/envelope.php": (
        "<?php\nfunction handler($e) {\n"
        "    return ['status' => 202, 'headers' => ['X-Y' => 'z', 'X-N' => 5], 'body' => ['ok' => true]];\n}\n"),
    "ret/statuscode.php": "<?php\nfunction handler($e) { return ['statusCode' => '418', 'body' => 'teapot']; }\n",
    "ret/b64alias.php": (
        "<?php\nfunction handler($e) {\n"
        "    return ['statusCode' => 200, 'isBase64Encoded' => true, 'body' => 'AAEC',\n"
        "            'headers' => ['Content-Type' => 'image/png']];\n}\n"),
    "ret/b64field.php": "<?php\nfunction handler($e) { return ['is_base64' => true, 'body_base64' => 'aGk=']; }\n",
    "ret/badstatus.php": "<?php\nfunction handler($e) { return ['status' => 'nope']; }\n",
    "named/handler.php": (
        "<?php\nfunction handler($e) { return 'handler'; }\n"
        "function other($e) { return 'other'; }\n"),
    "envfn/handler.php": "<?php\nfunction handler($e) { return ['env' => $e['env'], 'v' => $e['version']]; }\n",
    "envfn/fn.env.json": json.dumps({
        "PLAIN": "p", "SECRET": {"value": "s", "is_secret": True}, "NUM": 3,
        "FN_ADMIN_TOKEN": "hidden"}),
    "modphp/index.php": (
        "<?php\nheader('X-A: 1');\nheader('Set-Cookie: a=1');\nheader('Set-Cookie: b=2', false);\n"
        "http_response_code(201);\n$n = isset($n) ? $n + 1 : 1;\n"
        "echo 'method=', $_SERVER['REQUEST_METHOD'], ' q=', $_GET['q'] ?? '', ' post=', $_POST['f'] ?? '',\n"
        "     ' input=', file_get_contents('php://input'), ' n=', $n, ' env=', getenv('GREETING');\n"),
    "modphp/fn.env.json": json.dumps({"GREETING": "hey"}),
    "hdr/handler.php": (
        "<?php\ndeclare(strict_types=1);\n"
        "function handler(array $e) {\n    header('X-From-Header: yes');\n"
        "    return ['status' => 200, 'headers' => ['X-Own' => '1'], 'body' => basename(__FILE__)];\n}\n"),
    "modplain/index.php": "<p>static <?= 1 + 1 ?></p>\n",
    "modexit/index.php": "<?php\nheader('Content-Type: application/json');\necho '{\"done\":true}';\nexit;\necho 'never';\n",
    "iso_a/handler.php": (
        "<?php\n$NAME = 'a';\nclass Thing { const WHO = 'a'; }\n"
        "function helper() { return 'a'; }\n"
        "function handler($e) { global $NAME; return [$NAME, Thing::WHO, helper()]; }\n"),
    "iso_b/handler.php": (
        "<?php\n$NAME = 'b';\nclass Thing { const WHO = 'b'; }\n"
        "function helper() { return 'b'; }\n"
        "function handler($e) { global $NAME; return [$NAME, Thing::WHO, helper()]; }\n"),
    "state/handler.php": "<?php\nfunction handler($e) { static $n = 0; return ['count' => ++$n]; }\n",
    "state2/handler.php": "<?php\nfunction handler($e) { static $n = 0; return ['count' => ++$n]; }\n",
    "printer/handler.php": (
        "<?php\nfunction handler($e) {\n"
        "    echo 'out ', $e['params']['n'], \"\\n\";\n"
        "    error_log('logged');\n"
        "    fwrite(STDERR, \"err\\n\");\n"
        "    return 'ok';\n}\n"),
    "quiet/handler.php": "<?php\nfunction handler($e) { return 'quiet'; }\n",
    "boom/handler.php": "<?php\nfunction handler($e) {\n    throw new InvalidArgumentException('kaboom');\n}\n",
    "syntax/handler.php": "<?php\nfunction handler($e)\n    return 1;\n}\n",
    "fatal/handler.php": "<?php\nfunction handler($e) { undefined_function_xyz(); }\n",
    "oom/handler.php": (
        "<?php\nfunction handler($e) {\n    static $calls = 0;\n    $calls++;\n"
        "    if (($e['params']['big'] ?? '') === '1') {\n"
        "        ini_set('memory_limit', '16M');\n        $s = str_repeat('x', 64 << 20);\n    }\n"
        "    return ['calls' => $calls];\n}\n"),
    "exits/handler.php": (
        "<?php\nfunction handler($e) {\n    static $calls = 0;\n    $calls++;\n"
        "    if (($e['params']['exit'] ?? '') === '1') { exit(3); }\n"
        "    return ['calls' => $calls, 'pid' => getmypid()];\n}\n"),
    "sleepy/handler.php": "<?php\nfunction handler($e) { usleep(200000); return 'slept'; }\n",
    "explicit/handler.php": "<?php\nfunction handler($e) { return 'v-default'; }\n",
    "explicit/v2/handler.php": "<?php\nfunction handler($e) { return 'v2'; }\n",
}


def frame(obj):
    raw = json.dumps(obj).encode()
    return struct.pack(">I", len(raw)) + raw


def exchange(sock_path, data, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    n = struct.unpack(">I", out[:4])[0]
    assert n == len(out) - 4, (n, len(out))
    return json.loads(out[4:])


def start_daemon(root, sock_path, wait=True):
    env = dict(os.environ, FN_FUNCTIONS_ROOT=root)
    proc = subprocess.Popen([PHP, DAEMON, sock_path], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError("daemon exited: %r" % (proc.stderr.read(),))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock_path)
                break
            except OSError:
                time.sleep(0.02)
            finally:
                s.close()
        else:
            raise RuntimeError("daemon did not come up")
    return proc


def stop_daemon(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f:
            f.close()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fnphp-")
        cls.root = os.path.join(cls.tmp, "functions")
        for rel, text in FILES.items():
            p = os.path.join(cls.root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        outside = os.path.join(cls.tmp, "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "handler.php"), "w") as f:
            f.write("<?php\nfunction handler($e) { return 'escaped'; }\n")
        os.symlink(outside, os.path.join(cls.root, "link"))
        cls.sock = os.path.join(cls.tmp, "fn-php.sock")
        cls.proc = start_daemon(cls.root, cls.sock)

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.proc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, fn=None, event=None, **extra):
        req = {"event": event if event is not None else {"method": "GET", "params": {}}}
        if fn is not None:
            req["fn"] = fn
        req.update(extra)
        return exchange(self.sock, frame(req))

    def entry(self, entry, event=None, **extra):
        return self.call(fn=entry, event=event, entry=entry, **extra)

    def error_of(self, reply):
        self.assertEqual(reply["headers"], {"Content-Type": "application/json"})
        return json.loads(reply["body"])["error"]

    # -- basics

    def test_hello(self):
        self.assertEqual(self.call("hello"),
                         {"status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"},
                          "body": "hello GET"})

    def test_socket_mode_0600(self):
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)

    def test_params_second_argument(self):
        r = self.call("params", {"params": {"id": "42"}})
        self.assertEqual((r["status"], json.loads(r["body"])), (200, {"id": "42", "same": True}))

    def test_handler_without_arguments(self):
        self.assertEqual(self.call("noargs")["body"], '{"noargs":true}')

    # -- shorthand returns

    def test_shorthand_returns(self):
        self.assertEqual(self.entry("ret/array.php"),
                         {"status": 200, "headers": {"Content-Type": "application/json"},
                          "body": '{"a":1,"b":[1,2]}'})
        self.assertEqual(self.entry("ret/list.php")["body"], '[1,"x"]')
        self.assertEqual(self.entry("ret/null.php"), {"status": 200, "headers": {}, "body": ""})
        self.assertEqual(self.entry("ret/html.php"),
                         {"status": 200, "headers": {"Content-Type": "text/html; charset=utf-8"},
                          "body": "  <h1>hi</h1>"})
        self.assertEqual(self.entry("ret/text.php")["headers"],
                         {"Content-Type": "text/plain; charset=utf-8"})
        self.assertEqual(self.entry("ret/binary.php"),
                         {"status": 200, "headers": {"Content-Type": "application/octet-stream"},
                          "is_base64": True, "body_base64": "AAH/"})

    def test_envelope_and_aliases(self):
        self.assertEqual(self.entry("ret/envelope.php"),
                         {"status": 202, "headers": {"X-Y": "z", "X-N": "5",
                                                     "Content-Type": "application/json"},
                          "body": '{"ok":true}'})
        self.assertEqual(self.entry("ret/statuscode.php"),
                         {"status": 418, "headers": {}, "body": "teapot"})
        self.assertEqual(self.entry("ret/b64alias.php"),
                         {"status": 200, "headers": {"Content-Type": "image/png"},
                          "is_base64": True, "body_base64": "AAEC"})
        self.assertEqual(self.entry("ret/b64field.php"),
                         {"status": 200, "headers": {}, "is_base64": True, "body_base64": "aGk="})
        r = self.entry("ret/badstatus.php")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "handler returned an invalid status: 'nope'"))

    def test_handler_name_from_request(self):
        self.assertEqual(self.call("named", handler="other")["body"], "other")
        self.assertEqual(self.call("named")["body"], "handler")
        r = self.call("named", handler="missing")
        self.assertEqual((r["status"], self.error_of(r)), (500, "handler 'missing' not found"))

    def test_fn_source_dir_and_version(self):
        self.assertEqual(self.call("explicit", fn_source_dir="explicit")["body"], "v-default")
        self.assertEqual(self.call("explicit", fn_source_dir="explicit", version="v2")["body"], "v2")
        r = self.call("explicit", fn_source_dir="explicit", version="v3")
        self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"))

    # -- env

    def test_env_file_merged(self):
        r = self.call("envfn", event={"env": {"FROM_GATEWAY": "g", "PLAIN": "old",
                                               "FN_TRUSTED_X": "no"}})
        self.assertEqual(json.loads(r["body"]),
                         {"env": {"FROM_GATEWAY": "g", "PLAIN": "p", "SECRET": "s", "NUM": "3"},
                          "v": "default"})
        r = self.call("envfn", version=None)
        self.assertEqual(json.loads(r["body"])["env"], {"PLAIN": "p", "SECRET": "s", "NUM": "3"})

    # -- mod_php style

    def test_modphp_echo_header_status(self):
        ev = {"method": "POST", "query": {"q": "x"}, "body": "f=form%20val",
              "headers": {"content-type": "application/x-www-form-urlencoded"}}
        r = self.call("modphp", event=ev)
        self.assertEqual(r, {"status": 201,
                             "headers": {"X-A": "1", "Set-Cookie": ["a=1", "b=2"],
                                         "Content-Type": "text/html; charset=utf-8"},
                             "body": "method=POST q=x post=form val input=f=form%20val n=1 env=hey"})
        # Globals do not leak into the next run (as under mod_php, each run starts clean).
        r = self.call("modphp", event={"method": "GET", "query": {}})
        self.assertEqual(r["body"], "method=GET q= post= input= n=1 env=hey")

    def test_header_in_handler_function_merged(self):
        self.assertEqual(self.call("hdr"), {"status": 200, "headers": {"X-Own": "1", "X-From-Header": "yes"},
                                            "body": "handler.php"})

    def test_modphp_plain_template_and_exit(self):
        self.assertEqual(self.call("modplain"),
                         {"status": 200, "headers": {"Content-Type": "text/html; charset=utf-8"},
                          "body": "<p>static 2</p>\n"})
        for _ in range(2):
            self.assertEqual(self.call("modexit"),
                             {"status": 200, "headers": {"Content-Type": "application/json"},
                              "body": '{"done":true}'})

    # -- isolation, state, reload

    def test_isolation_same_names(self):
        self.assertEqual(json.loads(self.call("iso_a")["body"]), ["a", "a", "a"])
        self.assertEqual(json.loads(self.call("iso_b")["body"]), ["b", "b", "b"])
        self.assertEqual(json.loads(self.call("iso_a")["body"]), ["a", "a", "a"])

    def test_state_kept_per_function(self):
        a1 = json.loads(self.call("state")["body"])["count"]
        a2 = json.loads(self.call("state")["body"])["count"]
        b1 = json.loads(self.call("state2")["body"])["count"]
        self.assertEqual((a2, b1), (a1 + 1, 1))

    def test_changed_handler_runs_new_code(self):
        d = os.path.join(self.root, "reload")
        os.makedirs(d)
        p = os.path.join(d, "handler.php")
        with open(p, "w") as f:
            f.write("<?php\nfunction handler($e) { static $n = 0; $n++; return \"one $n\"; }\n")
        self.assertEqual(self.call("reload")["body"], "one 1")
        self.assertEqual(self.call("reload")["body"], "one 2")
        with open(p, "w") as f:
            f.write("<?php\nfunction handler($e) { static $n = 0; $n++; return \"two $n\"; }\n")
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.assertEqual(self.call("reload")["body"], "two 1")

    # -- output capture and errors

    def test_stdout_stderr_captured_per_call(self):
        r = self.call("printer", event={"params": {"n": 1}})
        self.assertEqual((r["body"], r["stdout"], r["stderr"]), ("ok", "out 1\n", "logged\nerr\n"))
        r = self.call("printer", event={"params": {"n": 2}})
        self.assertEqual(r["stdout"], "out 2\n")
        r = self.call("quiet")
        self.assertNotIn("stdout", r)
        self.assertNotIn("stderr", r)

    def test_exception_500(self):
        r = self.call("boom")
        self.assertEqual((r["status"], self.error_of(r)), (500, "InvalidArgumentException: kaboom"))
        self.assertIn("Stack trace", r["stderr"])
        self.assertIn("handler.php:3", r["stderr"])

    def test_syntax_error_500_others_keep_working(self):
        r = self.call("syntax")
        self.assertEqual(r["status"], 500)
        self.assertEqual(self.error_of(r), 'failed to load handler: ParseError: syntax error, '
                         'unexpected token "return", expecting "{" (handler.php, line 3)')
        self.assertEqual(self.call("hello")["body"], "hello GET")
        self.assertEqual(self.call("syntax")["status"], 500)

    def test_fatal_error_500(self):
        r = self.call("fatal")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "Error: Call to undefined function undefined_function_xyz()"))

    def test_real_fatal_error_500_then_next_call_works(self):
        self.assertEqual(self.call("oom")["body"], '{"calls":1}')
        r = self.call("oom", event={"params": {"big": "1"}})
        self.assertEqual(r["status"], 500)
        self.assertRegex(self.error_of(r),
                         r"^fatal error: Allowed memory size of 16777216 bytes exhausted")
        self.assertIn("PHP Fatal error:", r["stderr"])
        self.assertEqual(self.call("oom")["body"], '{"calls":1}')  # a fresh worker

    def test_exit_500_then_next_call_works(self):
        first = json.loads(self.call("exits")["body"])
        r = self.call("exits", event={"params": {"exit": "1"}})
        self.assertEqual((r["status"], self.error_of(r)), (500, "handler called exit()"))
        after = json.loads(self.call("exits")["body"])
        self.assertNotEqual(after["pid"], first["pid"])
        self.assertEqual(after["calls"], 1)
        self.assertFalse(alive(first["pid"]) and first["pid"] in children(self.proc.pid))

    # -- frames and resolution

    def test_bad_frame_length_400(self):
        for data in (struct.pack(">I", 0), struct.pack(">I", 2 * 1024 * 1024 + 1) + b"{}", b"\x00\x00"):
            r = exchange(self.sock, data) if len(data) >= 4 else self.half_frame(data)
            self.assertEqual((r["status"], self.error_of(r)), (400, "invalid frame length"))

    def half_frame(self, data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        return json.loads(out[4:])

    def test_bad_json_400(self):
        for body in (b"{nope", b"[1,2]", b"\xff\xfe", b'{"fn":"hello","event":[]}'):
            r = exchange(self.sock, struct.pack(">I", len(body)) + body)
            self.assertEqual((r["status"], self.error_of(r)), (400, "invalid json request"), body)

    def test_unknown_function_404(self):
        for req in ({"fn": "nope"}, {"fn": "nope", "entry": "nope/handler.php"},
                    {"fn": "hello", "entry": "hello/missing.php"}):
            r = exchange(self.sock, frame(dict(req, event={})))
            self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"), req)

    def test_path_traversal_404(self):
        for entry in ("../outside/handler.php", "hello/../../outside/handler.php",
                      os.path.join(self.tmp, "outside", "handler.php"), "link/handler.php"):
            r = self.entry(entry)
            self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"), entry)
        self.assertEqual(self.call("x", fn_source_dir="link")["status"], 404)
        self.assertEqual(self.call("hello", fn_source_dir="explicit", version="../hello")["status"], 404)

    def test_health_probe_ignored(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        s.close()
        self.assertEqual(self.call("hello")["body"], "hello GET")

    def test_adapter_other_than_native_500(self):
        r = self.call("hello", adapter="aws-lambda")
        self.assertEqual((r["status"], self.error_of(r)), (500, "adapter not supported yet: aws-lambda"))

    # -- concurrency

    def test_parallel_calls(self):
        out = []

        def one():
            out.append(self.call("sleepy")["body"])

        t0 = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        self.assertEqual(out, ["slept"] * 6)
        self.assertLess(took, 0.8)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fnphp-life-")
        self.root = os.path.join(self.tmp, "functions")
        for name, code in (("hello", "return 'hi';"), ("slow", "sleep(3); return 'slow';")):
            os.makedirs(os.path.join(self.root, name))
            with open(os.path.join(self.root, name, "handler.php"), "w") as f:
                f.write("<?php\nfunction handler($e) { %s }\n" % code)
        self.sock = os.path.join(self.tmp, "d.sock")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            stop_daemon(p)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, wait=True):
        p = start_daemon(self.root, self.sock, wait)
        self.procs.append(p)
        return p

    def test_stdin_eof_exits_with_workers_within_1s(self):
        p = self.start()
        self.assertEqual(exchange(self.sock, frame({"fn": "hello", "event": {}}))["body"], "hi")
        def slow_call():
            try:  # the daemon exits mid-call: the client sees the connection close
                exchange(self.sock, frame({"fn": "slow", "event": {}}))
            except (OSError, struct.error):
                pass

        threads = [threading.Thread(target=slow_call) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        workers = children(p.pid)
        self.assertGreaterEqual(len(workers), 2)
        t0 = time.monotonic()
        p.stdin.close()
        p.wait(5)
        while any(alive(w) for w in workers) and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        took = time.monotonic() - t0
        self.assertEqual([w for w in workers if alive(w)], [])
        self.assertLess(took, 1.0)
        self.assertFalse(os.path.exists(self.sock))
        for t in threads:
            t.join()

    def test_sigterm_exits_cleanly(self):
        p = self.start()
        p.terminate()
        self.assertEqual(p.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock))

    def test_stale_socket_removed(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.sock)
        s.close()
        self.start()
        self.assertEqual(exchange(self.sock, frame({"fn": "hello", "event": {}}))["body"], "hi")

    def test_live_socket_refused(self):
        first = self.start()
        second = self.start(wait=False)
        self.assertEqual(second.wait(5), 1)
        err = second.stderr.read().decode()
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("in use by a live daemon", err)
        self.assertIsNone(first.poll())
        self.assertEqual(exchange(self.sock, frame({"fn": "hello", "event": {}}))["body"], "hi")


if __name__ == "__main__":
    unittest.main()
