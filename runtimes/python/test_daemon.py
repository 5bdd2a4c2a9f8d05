"""Tests for the Python runtime daemon: a real daemon process on a temp Unix socket.

    python3 -m unittest discover -s runtimes/python
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.py")

FILES = {
    "hello/handler.py": "def handler(event):\n    return 'hello ' + event['method']\n",
    "kw/handler.py": (
        "def handler(event, name=None, *, count=None):\n"
        "    return {'name': name, 'count': count, 'p': event['params']}\n"),
    "kwany/handler.py": "def handler(event, **kw):\n    return {'kw': kw}\n",
    "noargs/main.py": "def main():\n    return {'noargs': True}\n",
    "ret/dict.py": "def handler(event):\n    return {'a': 1, 'b': [1, 2]}\n",
    "ret/list.py": "def handler(event):\n    return [1, 'x']\n",
    "ret/none.py": "def handler(event):\n    return None\n",
    "ret/html.py": "def handler(event):\n    return '  <h1>hi</h1>'\n",
    "ret/text.py": "def handler(event):\n    return 'plain'\n",
    "ret/bytes.py": "def handler(event):\n    return b'\\x00\\x01\\xff'\n",
    "ret/tuple1.py": "def handler(event):\n    return ({'x': 1},)\n",
    "ret/tuple2.py": "def handler(event):\n    return ('gone', 410)\n",
    "ret/tuple3.py": "def handler(event):\n    return ('<p>x</p>', 201, {'X-A': 'b', 'X-N': 5})\n",
    "ret/envelope.py": (
        "def handler(event):\n"
        "    return {'status': 202, 'headers': {'X-Y': 'z'}, 'body': {'ok': True}}\n"),
    "ret/statuscode.py": (
        "def handler(event):\n"
        "    return {'statusCode': 418, 'body': 'teapot'}\n"),
    "ret/b64alias.py": (
        "def handler(event):\n"
        "    return {'statusCode': 200, 'isBase64Encoded': True, 'body': 'AAEC',\n"
        "            'headers': {'Content-Type': 'image/png'}}\n"),
    "ret/b64bytes.py": (
        "def handler(event):\n"
        "    return {'status': 200, 'body': b'hi', 'headers': {'content-type': 'x/y'}}\n"),
    "ret/badstatus.py": "def handler(event):\n    return {'status': 'nope'}\n",
    "ret/async.py": (
        "import asyncio\n"
        "async def handler(event):\n"
        "    await asyncio.sleep(0)\n"
        "    print('from async')\n"
        "    return {'async': True}\n"),
    "named/handler.py": (
        "def handler(event):\n    return 'handler'\n"
        "def other(event):\n    return 'other'\n"),
    "onlymain/handler.py": "def main(event):\n    return 'main'\n",
    "envfn/handler.py": "def handler(event):\n    return {'env': event['env'], 'v': event['version']}\n",
    "envfn/fn.env.json": json.dumps({
        "PLAIN": "p", "SECRET": {"value": "s", "is_secret": True},
        "FN_ADMIN_TOKEN": "hidden"}),
    "state/handler.py": (
        "COUNT = 0\n"
        "def handler(event):\n"
        "    global COUNT\n"
        "    COUNT += 1\n"
        "    return {'count': COUNT}\n"),
    "state2/handler.py": (
        "COUNT = 0\n"
        "def handler(event):\n"
        "    global COUNT\n"
        "    COUNT += 1\n"
        "    return {'count': COUNT}\n"),
    "helper_a/_util.py": "NAME = 'a'\n",
    "helper_a/handler.py": "import _util\ndef handler(event):\n    return _util.NAME\n",
    "helper_b/_util.py": "NAME = 'b'\n",
    "helper_b/handler.py": "import _util\ndef handler(event):\n    return _util.NAME\n",
    "printer/handler.py": (
        "import sys\n"
        "def handler(event):\n"
        "    print('out', event['params'].get('n'))\n"
        "    sys.stderr.write('err\\n')\n"
        "    return 'ok'\n"),
    "quiet/handler.py": "def handler(event):\n    return 'quiet'\n",
    "boom/handler.py": "def handler(event):\n    raise ValueError('kaboom')\n",
    "syntax/handler.py": "def handler(event)\n    return 1\n",
    "sleepy/handler.py": "import time\ndef handler(event):\n    time.sleep(0.5)\n    return 'slept'\n",
    "asleepy/handler.py": (
        "import asyncio\n"
        "async def handler(event):\n"
        "    await asyncio.sleep(0.5)\n"
        "    return 'aslept'\n"),
    "explicit/handler.py": "def handler(event):\n    return 'v-default'\n",
    "explicit/v2/handler.py": "def handler(event):\n    return 'v2'\n",
    "mainonly/main.py": "def handler(event):\n    return 'from main.py'\n",
    "adapter/handler.py": "def handler(event):\n    return 'x'\n",
    # Dependencies installed by the engine into <fn>/.deps (contract §4.2).
    "withdep/handler.py": (
        "import fastfn_probe_dep\n"
        "def handler(event):\n    return fastfn_probe_dep.WHO\n"),
    "withdep/.deps/fastfn_probe_dep/__init__.py": "WHO = 'withdep ' + __name__\n",
    "withdep/.deps/.fastfn-signature": "fastfn-deps-v1 0000000000000001\n",
    "otherdep/handler.py": (
        "import fastfn_probe_dep\n"
        "def handler(event):\n    return fastfn_probe_dep.WHO\n"),
    "otherdep/.deps/fastfn_probe_dep.py": "WHO = 'otherdep'\n",
    "nodep/handler.py": (
        "import fastfn_probe_dep\n"
        "def handler(event):\n    return fastfn_probe_dep.WHO\n"),
}


FILES.update({
    "lam/echo.py": (
        "def handler(event, context):\n"
        "    return {'event': event, 'context': {\n"
        "        'aws_request_id': context.aws_request_id,\n"
        "        'function_name': context.function_name,\n"
        "        'remaining': context.get_remaining_time_in_millis(),\n"
        "        'env': context.env}}\n"),
    "lam/shapes.py": (
        "import asyncio\n"
        "async def handler(event, context):\n"
        "    await asyncio.sleep(0)\n"
        "    kind = event['queryStringParameters']['kind']\n"
        "    if kind == 'full':\n"
        "        return {'statusCode': 201, 'headers': {'X-A': 'b', 'Set-Cookie': 'z=0'},\n"
        "                'multiValueHeaders': {'X-M': ['1', '2'], 'x-a': ['lost']},\n"
        "                'cookies': ['a=1', 'b=2; Path=/'], 'body': 'made'}\n"
        "    if kind == 'b64':\n"
        "        return {'statusCode': 200, 'headers': {'content-type': 'image/png'},\n"
        "                'isBase64Encoded': True, 'body': 'AAEC'}\n"
        "    if kind == 'string':\n"
        "        return 'hello'\n"
        "    if kind == 'nostatus':\n"
        "        return {'body': 'x', 'headers': {'X-A': 'b'}}\n"
        "    if kind == 'strstatus':\n"
        "        return {'statusCode': '404'}\n"
        "    if kind == 'objbody':\n"
        "        return {'statusCode': 200, 'body': {'ok': True}}\n"
        "    if kind == 'bad':\n"
        "        return {'statusCode': 99}\n"
        "    raise ValueError('nope ' + kind)\n"),
    "lam/named.py": "def lambda_handler(event, context):\n    return {'statusCode': 204}\n",
    "lam/onearg.py": "def handler(event):\n    return event['rawPath']\n",
    "wk/echo.py": (
        "import base64\n"
        "def fetch(request, env, ctx):\n"
        "    data = {'method': request.method, 'url': request.url,\n"
        "            'headers': dict(request.headers), 'x_many': request.headers.get_all('X-Many'),\n"
        "            'has_host': 'HOST' in request.headers, 'text': request.text(),\n"
        "            'body_b64': base64.b64encode(request.body).decode(),\n"
        "            'env': env, 'params': ctx.params}\n"
        "    if request.headers.get('content-type') == 'application/json':\n"
        "        data['json'] = request.json()\n"
        "    return Response.json(data, status=202, headers={'X-Echo': 'yes'})\n"),
    "wk/shapes.py": (
        "from urllib.parse import urlsplit, parse_qs\n"
        "from fastfn_worker import Response as R, Headers\n"
        "async def fetch(request, env, ctx):\n"
        "    kind = parse_qs(urlsplit(request.url).query)['kind'][0]\n"
        "    if kind == 'cookies':\n"
        "        h = Headers([('Set-Cookie', 'a=1'), ('set-cookie', 'b=2'), ('X-Many', 'x'),\n"
        "                     ('x-many', 'y'), ('Content-Type', 'text/html')])\n"
        "        return R('<p>hi</p>', status=418, headers=h)\n"
        "    if kind == 'binary':\n"
        "        return R(b'\\x00\\x9f\\x92', headers={'content-type': 'image/png'})\n"
        "    if kind == 'notutf8':\n"
        "        return R(b'\\xff\\xfe')\n"
        "    if kind == 'text':\n"
        "        return R('plain')\n"
        "    if kind == 'empty':\n"
        "        return R(None, status=204)\n"
        "    if kind == 'redirect':\n"
        "        return R.redirect('/there', 301)\n"
        "    if kind == 'string':\n"
        "        return 'not a Response'\n"
        "    if kind == 'badstatus':\n"
        "        return R('x', status=42)\n"
        "    raise RuntimeError('worker ' + kind)\n"),
    "wk/twoargs.py": "def fetch(request, env):\n    return Response(env['K'])\n",
    "wk/nofetch.py": "def handler(event):\n    return 'native'\n",
    "wk/onfetch.py": "async def on_fetch(request, env):\n    return Response('on_fetch ' + request.method)\n",
    "wk/later.py": (
        "import asyncio\n"
        "def fetch(request, env, ctx):\n"
        "    async def later():\n"
        "        await asyncio.sleep(0.2)\n"
        "        with open(env['MARK'], 'w') as f:\n"
        "            f.write('done')\n"
        "    ctx.waitUntil(later())\n"
        "    ctx.waitUntil('not awaitable')\n"
        "    ctx.passThroughOnException()\n"
        "    return Response('replied')\n"),
})

LAMBDA_EVENT = {
    "id": "req-1700000000123-42-000007", "ts": 1700000000123, "method": "POST",
    "path": "/items/7", "raw_path": "/items/7?a=1&a=2&flag&q=hi%21",
    "query": {"a": ["1", "2"], "flag": True, "q": "hi!"},
    "params": {"id": "7"}, "path_params": {"id": "7"},
    "headers": {"host": "example.test:8080", "x-many": ["a", "b"],
                "cookie": "theme=dark; sid=abc", "user-agent": "curl/8",
                "content-type": "application/json"},
    "body": "{\"x\":1}", "session": None,
    "client": {"ip": "10.0.0.9", "ua": "curl/8"},
    "context": {"request_id": "req-1700000000123-42-000007", "function_name": "lam/echo.py",
                "timeout_ms": 2500},
    "env": {"K": "v"},
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
    proc = subprocess.Popen([sys.executable, DAEMON, sock_path], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
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


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fnpy-")
        cls.root = os.path.join(cls.tmp, "functions")
        for rel, text in FILES.items():
            p = os.path.join(cls.root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        # A symlink inside the root that points outside it.
        outside = os.path.join(cls.tmp, "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "handler.py"), "w") as f:
            f.write("def handler(event):\n    return 'escaped'\n")
        os.symlink(outside, os.path.join(cls.root, "link"))
        cls.sock = os.path.join(cls.tmp, "fn-python.sock")
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
        r = self.call("hello")
        self.assertEqual(r, {"status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"},
                             "body": "hello GET"})

    def test_socket_mode_0600(self):
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)

    def test_params_as_kwargs(self):
        r = self.entry("kw/handler.py", {"params": {"name": "ann", "count": 3, "zzz": 1}})
        self.assertEqual(json.loads(r["body"]),
                         {"name": "ann", "count": 3, "p": {"name": "ann", "count": 3, "zzz": 1}})
        r = self.entry("kwany/handler.py", {"params": {"a": "1", "b": "2"}})
        self.assertEqual(json.loads(r["body"]), {"kw": {"a": "1", "b": "2"}})

    def test_handler_without_event_argument(self):
        r = self.call("noargs")
        self.assertEqual((r["status"], json.loads(r["body"])), (200, {"noargs": True}))

    # -- shorthand returns

    def test_dict_and_list_are_json(self):
        r = self.entry("ret/dict.py")
        self.assertEqual(r, {"status": 200, "headers": {"Content-Type": "application/json"},
                             "body": '{"a":1,"b":[1,2]}'})
        r = self.entry("ret/list.py")
        self.assertEqual((r["status"], r["body"]), (200, '[1,"x"]'))

    def test_none_is_empty_200(self):
        self.assertEqual(self.entry("ret/none.py"), {"status": 200, "headers": {}, "body": ""})

    def test_strings_html_or_plain(self):
        r = self.entry("ret/html.py")
        self.assertEqual(r["headers"], {"Content-Type": "text/html; charset=utf-8"})
        self.assertEqual(r["body"], "  <h1>hi</h1>")
        r = self.entry("ret/text.py")
        self.assertEqual(r["headers"], {"Content-Type": "text/plain; charset=utf-8"})

    def test_bytes_is_base64(self):
        r = self.entry("ret/bytes.py")
        self.assertEqual(r, {"status": 200,
                             "headers": {"Content-Type": "application/octet-stream"},
                             "is_base64": True, "body_base64": "AAH/"})
        self.assertNotIn("body", r)

    def test_tuples(self):
        r = self.entry("ret/tuple1.py")
        self.assertEqual(r, {"status": 200, "headers": {"Content-Type": "application/json"},
                             "body": '{"x":1}'})
        r = self.entry("ret/tuple2.py")
        self.assertEqual(r, {"status": 410, "headers": {"Content-Type": "text/plain; charset=utf-8"},
                             "body": "gone"})
        r = self.entry("ret/tuple3.py")
        self.assertEqual(r, {"status": 201, "headers": {"X-A": "b", "X-N": "5",
                                                        "Content-Type": "text/html; charset=utf-8"},
                             "body": "<p>x</p>"})

    def test_envelope(self):
        r = self.entry("ret/envelope.py")
        self.assertEqual(r, {"status": 202,
                             "headers": {"X-Y": "z", "Content-Type": "application/json"},
                             "body": '{"ok":true}'})

    def test_envelope_aliases(self):
        self.assertEqual(self.entry("ret/statuscode.py"),
                         {"status": 418, "headers": {}, "body": "teapot"})
        self.assertEqual(self.entry("ret/b64alias.py"),
                         {"status": 200, "headers": {"Content-Type": "image/png"},
                          "is_base64": True, "body_base64": "AAEC"})
        r = self.entry("ret/b64bytes.py")
        self.assertEqual(r, {"status": 200, "headers": {"content-type": "x/y"},
                             "is_base64": True, "body_base64": base64.b64encode(b"hi").decode()})

    def test_invalid_status_is_500(self):
        r = self.entry("ret/badstatus.py")
        self.assertEqual(r["status"], 500)
        self.assertEqual(self.error_of(r), "handler returned an invalid status: 'nope'")

    def test_async_handler(self):
        r = self.entry("ret/async.py")
        self.assertEqual((r["status"], r["body"], r["stdout"]), (200, '{"async":true}', "from async\n"))

    # -- callable selection and resolution

    def test_handler_name_from_request_and_main_fallback(self):
        self.assertEqual(self.call("named", handler="other")["body"], "other")
        self.assertEqual(self.call("named")["body"], "handler")
        self.assertEqual(self.call("onlymain")["body"], "main")

    def test_fn_source_dir_and_version(self):
        self.assertEqual(self.call("explicit", fn_source_dir="explicit")["body"], "v-default")
        self.assertEqual(self.call("explicit", fn_source_dir="explicit", version="v2")["body"], "v2")
        r = self.call("explicit", fn_source_dir="explicit", version="v3")
        self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"))
        self.assertEqual(self.call("x", fn_source_dir="mainonly")["body"], "from main.py")

    def test_unknown_function_404(self):
        for req in ({"fn": "nope"}, {"fn": "nope", "entry": "nope/handler.py"},
                    {"fn": "hello", "entry": "hello/missing.py"}):
            r = exchange(self.sock, frame(dict(req, event={})))
            self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"), req)

    def test_path_traversal_404(self):
        for entry in ("../outside/handler.py", "hello/../../outside/handler.py",
                      os.path.join(self.tmp, "outside", "handler.py"), "link/handler.py"):
            r = self.entry(entry)
            self.assertEqual((r["status"], self.error_of(r)), (404, "unknown function"), entry)
        r = self.call("link")
        self.assertEqual(r["status"], 404)
        r = self.call("x", fn_source_dir="link")
        self.assertEqual(r["status"], 404)
        r = self.call("hello", fn_source_dir="explicit", version="../hello")
        self.assertEqual(r["status"], 404)

    def test_unknown_adapter_500(self):
        self.assertEqual(self.call("adapter", adapter="native")["body"], "x")
        self.assertEqual(self.call("adapter", adapter=None)["body"], "x")
        for adapter in ("azure", 7):
            r = self.call("adapter", adapter=adapter)
            self.assertEqual((r["status"], self.error_of(r)), (500, "unknown adapter: %s (want "
                             "native, aws-lambda or cloudflare-worker)" % adapter))

    # -- aws-lambda adapter

    def lam(self, fn, event=None, adapter="aws-lambda", **extra):
        ev = json.loads(json.dumps(LAMBDA_EVENT)) if event is None else event
        return self.call(fn, event=ev, adapter=adapter, **extra)

    def test_lambda_v2_event_and_context(self):
        r = self.lam("lam/echo.py")
        self.assertEqual((r["status"], r["headers"]), (200, {"Content-Type": "application/json"}))
        got = json.loads(r["body"])
        self.assertEqual(got["event"], {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/items/7",
            "rawQueryString": "a=1&a=2&flag&q=hi%21",
            "cookies": ["theme=dark", "sid=abc"],
            "headers": {"host": "example.test:8080", "x-many": "a,b", "user-agent": "curl/8",
                        "content-type": "application/json"},
            "queryStringParameters": {"a": "1,2", "flag": "", "q": "hi!"},
            "pathParameters": {"id": "7"},
            "requestContext": {
                "accountId": "anonymous", "apiId": "fastfn",
                "domainName": "example.test:8080", "domainPrefix": "example",
                "http": {"method": "POST", "path": "/items/7", "protocol": "HTTP/1.1",
                         "sourceIp": "10.0.0.9", "userAgent": "curl/8"},
                "requestId": "req-1700000000123-42-000007",
                "routeKey": "$default", "stage": "$default",
                "time": "14/Nov/2023:22:13:20 +0000", "timeEpoch": 1700000000123},
            "body": "{\"x\":1}",
            "isBase64Encoded": False,
        })
        self.assertEqual(got["context"], {"aws_request_id": "req-1700000000123-42-000007",
                                          "function_name": "lam/echo.py", "remaining": 0,
                                          "env": {"K": "v"}})

    def test_lambda_remaining_time_and_minimal_event(self):
        ev = {"ts": int(time.time() * 1000), "method": "GET", "path": "/p", "raw_path": "/p",
              "query": {}, "params": {}, "headers": {},
              "context": {"request_id": "r1", "function_name": "f", "timeout_ms": 5000}}
        got = json.loads(self.lam("lam/echo.py", event=ev)["body"])
        self.assertTrue(4000 < got["context"]["remaining"] <= 5000, got["context"])
        e = got["event"]
        self.assertEqual(sorted(e), ["headers", "isBase64Encoded", "rawPath", "rawQueryString",
                                     "requestContext", "routeKey", "version"])
        self.assertEqual((e["rawQueryString"], e["headers"], e["isBase64Encoded"]), ("", {}, False))
        self.assertEqual(e["requestContext"]["domainName"], "localhost")

    def test_lambda_binary_request_body(self):
        ev = dict(json.loads(json.dumps(LAMBDA_EVENT)), body="\ufffd\x00",
                  body_base64=base64.b64encode(b"\xff\x00").decode())
        e = json.loads(self.lam("lam/echo.py", event=ev)["body"])["event"]
        self.assertEqual((e["body"], e["isBase64Encoded"]), ("/wA=", True))

    def test_lambda_aliases(self):
        for alias in ("lambda", "apigw-v2", "api-gateway-v2"):
            r = self.lam("lam/echo.py", adapter=alias)
            self.assertEqual(json.loads(r["body"])["event"]["version"], "2.0", alias)

    def shape(self, fn, kind, adapter):
        ev = json.loads(json.dumps(LAMBDA_EVENT))
        ev["query"] = {"kind": kind}
        ev["raw_path"] = "/shapes?kind=" + kind
        return self.call(fn, event=ev, adapter=adapter)

    def test_lambda_reply_mapping(self):
        def shape(kind):
            return self.shape("lam/shapes.py", kind, "aws-lambda")
        self.assertEqual(shape("full"), {
            "status": 201, "body": "made",
            "headers": {"X-M": ["1", "2"], "X-A": "b", "Set-Cookie": ["z=0", "a=1", "b=2; Path=/"]}})
        self.assertEqual(shape("b64"), {"status": 200, "headers": {"content-type": "image/png"},
                                        "is_base64": True, "body_base64": "AAEC"})
        self.assertEqual(shape("string"), {
            "status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "body": "hello"})
        self.assertEqual(shape("nostatus"), {
            "status": 200, "headers": {"Content-Type": "application/json"},
            "body": '{"body":"x","headers":{"X-A":"b"}}'})
        self.assertEqual(shape("strstatus"), {"status": 404, "headers": {}, "body": ""})
        self.assertEqual(shape("objbody"), {
            "status": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok":true}'})
        r = shape("bad")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "handler returned an invalid status: 99"))
        r = shape("boom")
        self.assertEqual((r["status"], self.error_of(r)), (500, "ValueError: nope boom"))
        self.assertIn("Traceback", r["stderr"])

    def test_lambda_handler_names_and_arity(self):
        self.assertEqual(self.lam("lam/named.py"), {"status": 204, "headers": {}, "body": ""})
        r = self.lam("lam/onearg.py")
        self.assertEqual(r["body"], "/items/7")
        r = self.lam("lam/onearg.py", handler="missing")
        self.assertEqual((r["status"], self.error_of(r)), (500, "handler 'missing' not found"))

    # -- cloudflare-worker adapter

    def test_worker_request_and_json_response(self):
        r = self.lam("wk/echo.py", adapter="cloudflare-worker")
        self.assertEqual((r["status"], r["headers"]),
                         (202, {"x-echo": "yes", "content-type": "application/json"}))
        self.assertEqual(json.loads(r["body"]), {
            "method": "POST", "url": "http://example.test:8080/items/7?a=1&a=2&flag&q=hi%21",
            "headers": {"host": "example.test:8080", "x-many": "a, b",
                        "cookie": "theme=dark; sid=abc", "user-agent": "curl/8",
                        "content-type": "application/json"},
            "x_many": ["a", "b"], "has_host": True, "text": '{"x":1}',
            "body_b64": base64.b64encode(b'{"x":1}').decode(), "json": {"x": 1},
            "env": {"K": "v"}, "params": {"id": "7"}})

    def test_worker_binary_request_and_no_body(self):
        ev = dict(json.loads(json.dumps(LAMBDA_EVENT)), body="\ufffd\x00",
                  body_base64=base64.b64encode(b"\xff\x00").decode())
        ev["headers"] = {"content-type": "application/octet-stream"}
        got = json.loads(self.call("wk/echo.py", event=ev, adapter="worker")["body"])
        self.assertEqual((got["url"], got["body_b64"]), ("http://localhost/items/7?a=1&a=2&flag&q=hi%21", "/wA="))
        ev = {"method": "GET", "path": "/", "raw_path": "/", "headers": {"host": "h"}}
        got = json.loads(self.call("wk/echo.py", event=ev, adapter="workers")["body"])
        self.assertEqual((got["method"], got["url"], got["text"], got["body_b64"], got["env"],
                          got["params"]), ("GET", "http://h/", "", "", {}, {}))

    def test_worker_reply_mapping(self):
        def shape(kind):
            return self.shape("wk/shapes.py", kind, "cloudflare-worker")
        self.assertEqual(shape("cookies"), {
            "status": 418, "body": "<p>hi</p>",
            "headers": {"set-cookie": ["a=1", "b=2"], "x-many": "x, y", "content-type": "text/html"}})
        self.assertEqual(shape("binary"), {"status": 200, "headers": {"content-type": "image/png"},
                                           "is_base64": True, "body_base64": "AJ+S"})
        self.assertEqual(shape("notutf8"), {"status": 200, "headers": {}, "is_base64": True,
                                            "body_base64": "//4="})
        self.assertEqual(shape("text"), {
            "status": 200, "headers": {"content-type": "text/plain;charset=UTF-8"}, "body": "plain"})
        self.assertEqual(shape("empty"), {"status": 204, "headers": {}, "body": ""})
        self.assertEqual(shape("redirect"), {"status": 301, "headers": {"location": "/there"},
                                             "body": ""})
        self.assertEqual(shape("string"), {
            "status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "body": "not a Response"})
        r = shape("badstatus")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "handler returned an invalid status: 42"))
        r = shape("boom")
        self.assertEqual((r["status"], self.error_of(r)), (500, "RuntimeError: worker boom"))
        self.assertIn("Traceback", r["stderr"])

    def test_worker_function_lookup(self):
        ev = {"method": "PUT", "path": "/", "raw_path": "/", "headers": {}, "env": {"K": "two"}}
        self.assertEqual(self.call("wk/twoargs.py", event=ev, adapter="worker")["body"], "two")
        self.assertEqual(self.call("wk/onfetch.py", event=ev, adapter="worker")["body"],
                         "on_fetch PUT")
        r = self.call("wk/nofetch.py", event=ev, adapter="worker")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "worker function fetch(request, env, ctx) not found"))
        self.assertEqual(self.call("wk/nofetch.py", event=ev)["body"], "native")
        r = self.call("wk/twoargs.py", event=ev, adapter="worker", handler="other")
        self.assertEqual((r["status"], self.error_of(r)),
                         (500, "worker function other(request, env, ctx) not found"))

    def test_worker_wait_until_runs_after_the_reply(self):
        mark = os.path.join(self.tmp, "later.mark")
        ev = {"method": "GET", "path": "/", "raw_path": "/", "headers": {}, "env": {"MARK": mark}}
        r = self.call("wk/later.py", event=ev, adapter="worker")
        self.assertEqual((r["status"], r["body"]), (200, "replied"))
        self.assertFalse(os.path.exists(mark))
        end = time.monotonic() + 5
        while not os.path.exists(mark) and time.monotonic() < end:
            time.sleep(0.02)
        with open(mark) as f:
            self.assertEqual(f.read(), "done")

    # -- env

    def test_env_file_merged(self):
        r = self.call("envfn", event={"env": {"FROM_GATEWAY": "g", "PLAIN": "old"}})
        self.assertEqual(json.loads(r["body"]),
                         {"env": {"FROM_GATEWAY": "g", "PLAIN": "p", "SECRET": "s"},
                          "v": "default"})
        r = self.call("envfn", version=None)
        self.assertEqual(json.loads(r["body"])["env"], {"PLAIN": "p", "SECRET": "s"})

    def test_env_file_change_seen(self):
        d = os.path.join(self.root, "envchange")
        os.makedirs(d)
        with open(os.path.join(d, "handler.py"), "w") as f:
            f.write("def handler(event):\n    return event['env']\n")
        env_path = os.path.join(d, "fn.env.json")
        with open(env_path, "w") as f:
            f.write('{"A": "1"}')
        self.assertEqual(json.loads(self.call("envchange")["body"]), {"A": "1"})
        with open(env_path, "w") as f:
            f.write('{"A": "22"}')
        st = os.stat(env_path)
        os.utime(env_path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.assertEqual(json.loads(self.call("envchange")["body"]), {"A": "22"})

    # -- module state and reload

    def test_state_kept_per_function(self):
        a1 = json.loads(self.call("state")["body"])["count"]
        a2 = json.loads(self.call("state")["body"])["count"]
        b1 = json.loads(self.call("state2")["body"])["count"]
        self.assertEqual(a2, a1 + 1)
        self.assertEqual(b1, 1)

    def test_same_named_helpers_do_not_collide(self):
        self.assertEqual(self.call("helper_a")["body"], "a")
        self.assertEqual(self.call("helper_b")["body"], "b")
        self.assertEqual(self.call("helper_a")["body"], "a")

    def test_deps_folder_is_private_to_its_function(self):
        self.assertEqual(self.call("withdep")["body"], "withdep fastfn_probe_dep")
        # Another function's own copy of the same package, and a function without it.
        self.assertEqual(self.call("otherdep")["body"], "otherdep")
        r = self.call("nodep")
        self.assertEqual(r["status"], 500)
        self.assertEqual(self.error_of(r), "failed to load handler: ModuleNotFoundError: "
                                           "No module named 'fastfn_probe_dep'")
        self.assertEqual(self.call("withdep")["body"], "withdep fastfn_probe_dep")

    def test_new_deps_install_reimports_the_handler(self):
        d = os.path.join(self.root, "lateinstall")
        os.makedirs(d)
        with open(os.path.join(d, "handler.py"), "w") as f:
            f.write("import fastfn_late_dep\ndef handler(event):\n    return fastfn_late_dep.V\n")
        r = self.call("lateinstall")
        self.assertEqual(r["status"], 500)
        self.assertIn("ModuleNotFoundError", self.error_of(r))
        # What the engine does: install into .deps, then write the stamp. The handler file
        # itself is unchanged.
        os.makedirs(os.path.join(d, ".deps"))
        with open(os.path.join(d, ".deps", "fastfn_late_dep.py"), "w") as f:
            f.write("V = 'installed'\n")
        with open(os.path.join(d, ".deps", ".fastfn-signature"), "w") as f:
            f.write("fastfn-deps-v1 0000000000000002\n")
        self.assertEqual(self.call("lateinstall")["body"], "installed")

    def test_changed_handler_runs_new_code(self):
        d = os.path.join(self.root, "reload")
        os.makedirs(d)
        p = os.path.join(d, "handler.py")
        with open(p, "w") as f:
            f.write("X = 0\ndef handler(event):\n    global X\n    X += 1\n    return 'one %d' % X\n")
        self.assertEqual(self.call("reload")["body"], "one 1")
        self.assertEqual(self.call("reload")["body"], "one 2")
        with open(p, "w") as f:
            f.write("X = 0\ndef handler(event):\n    global X\n    X += 1\n    return 'two %d' % X\n")
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.assertEqual(self.call("reload")["body"], "two 1")
        self.assertFalse(os.path.exists(os.path.join(d, "__pycache__")))

    # -- output capture and errors

    def test_stdout_captured_per_call(self):
        r = self.call("printer", event={"params": {"n": 1}})
        self.assertEqual((r["body"], r["stdout"], r["stderr"]), ("ok", "out 1\n", "err\n"))
        r = self.call("printer", event={"params": {"n": 2}})
        self.assertEqual(r["stdout"], "out 2\n")
        r = self.call("quiet")
        self.assertNotIn("stdout", r)
        self.assertNotIn("stderr", r)

    def test_concurrent_output_not_mixed(self):
        results = {}

        def one(i):
            results[i] = self.call("printer", event={"params": {"n": i}})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(20):
            self.assertEqual(results[i]["stdout"], "out %d\n" % i)

    def test_handler_exception_500(self):
        r = self.call("boom")
        self.assertEqual((r["status"], self.error_of(r)), (500, "ValueError: kaboom"))
        self.assertIn("Traceback", r["stderr"])
        self.assertIn("raise ValueError('kaboom')", r["stderr"])

    def test_syntax_error_500_others_keep_working(self):
        r = self.call("syntax")
        self.assertEqual(r["status"], 500)
        self.assertEqual(self.error_of(r),
                         "failed to load handler: SyntaxError: expected ':' (handler.py, line 1)")
        self.assertIn("SyntaxError", r["stderr"])
        self.assertEqual(self.call("hello")["body"], "hello GET")
        self.assertEqual(self.call("syntax")["status"], 500)

    # -- frames

    def test_bad_frame_length_400(self):
        for data in (struct.pack(">I", 0), struct.pack(">I", 2 * 1024 * 1024 + 1) + b"{}"):
            r = exchange(self.sock, data)
            self.assertEqual((r["status"], self.error_of(r)), (400, "invalid frame length"))

    def test_bad_json_400(self):
        for body in (b"{nope", b"[1,2]", b"\xff\xfe", b'{"fn":"hello","event":[]}'):
            r = exchange(self.sock, struct.pack(">I", len(body)) + body)
            self.assertEqual((r["status"], self.error_of(r)), (400, "invalid json request"), body)

    def test_large_frame_in_pieces(self):
        big = "x" * 300_000
        data = frame({"fn": "kwany", "event": {"params": {"big": big}}})
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        try:
            s.sendall(data[:3])
            time.sleep(0.05)
            s.sendall(data[3:1000])
            time.sleep(0.05)
            s.sendall(data[1000:])
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        r = json.loads(out[4:])
        self.assertEqual(json.loads(r["body"]), {"kw": {"big": big}})

    # -- concurrency

    def timed_parallel(self, fn, n):
        out = []

        def one():
            out.append(self.call(fn)["body"])

        t0 = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - t0, out

    def test_sleeping_handlers_run_in_parallel(self):
        one, _ = self.timed_parallel("sleepy", 1)
        ten, out = self.timed_parallel("sleepy", 10)
        self.assertEqual(out, ["slept"] * 10)
        self.assertLess(ten, 2 * one, (one, ten))

    def test_async_sleepers_do_not_block_sync(self):
        results = {}

        def slow():
            results["async"] = self.timed_parallel("asleepy", 10)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        self.assertEqual(self.call("hello")["body"], "hello GET")
        fast = time.monotonic() - t0
        t.join()
        took, out = results["async"]
        self.assertEqual(out, ["aslept"] * 10)
        self.assertLess(took, 1.0)
        self.assertLess(fast, 0.3)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fnpy-life-")
        self.root = os.path.join(self.tmp, "functions")
        os.makedirs(os.path.join(self.root, "hello"))
        with open(os.path.join(self.root, "hello", "handler.py"), "w") as f:
            f.write("def handler(event):\n    return 'hi'\n")
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

    def test_stdin_eof_exits_within_1s(self):
        p = self.start()
        self.assertEqual(exchange(self.sock, frame({"fn": "hello", "event": {}}))["body"], "hi")
        t0 = time.monotonic()
        p.stdin.close()
        p.wait(5)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertFalse(os.path.exists(self.sock))

    def test_sigterm_exits_cleanly(self):
        p = self.start()
        p.terminate()
        self.assertEqual(p.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock))

    def test_stale_socket_removed(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.sock)
        s.close()  # the file stays, nobody listens
        self.assertTrue(os.path.exists(self.sock))
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

    def test_non_socket_file_refused(self):
        with open(self.sock, "w") as f:
            f.write("not a socket")
        p = self.start(wait=False)
        self.assertEqual(p.wait(5), 1)
        self.assertIn("not a socket", p.stderr.read().decode())
        self.assertTrue(os.path.isfile(self.sock))


if __name__ == "__main__":
    unittest.main()
