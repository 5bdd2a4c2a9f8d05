"""FastFN handler forms on a real Python daemon: a changed private helper is picked up, the
handlers of one folder share their helper modules, helpers and installed packages import
inside handler() too, and fn.env.json is in os.environ for the call only.

    python3 -m unittest discover -s runtimes/python -p 'test_*.py'
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from test_v2 import DAEMON, Client, v1_call

FILES = {
    "helper/_util.py": "WORD = 'old'\n",
    "helper/handler.py": "import _util\ndef handler(event):\n    return _util.WORD\n",
    "shared/_shared.py": "ITEMS = []\n",
    "shared/put.py": (
        "import _shared\n"
        "def handler(event):\n"
        "    _shared.ITEMS.append(event['body'])\n"
        "    return len(_shared.ITEMS)\n"),
    "shared/get.py": "import _shared\ndef handler(event):\n    return _shared.ITEMS\n",
    "lazy_a/_lazy.py": "NAME = 'a'\n",
    "lazy_a/handler.py": "def handler(event):\n    import _lazy\n    return _lazy.NAME\n",
    "lazy_b/_lazy.py": "NAME = 'b'\n",
    "lazy_b/handler.py": "def handler(event):\n    import _lazy\n    return _lazy.NAME\n",
    "deps/.deps/fakepkg/__init__.py": "VERSION = '1.2.3'\n",
    "deps/.deps/.fastfn-signature": "x\n",
    "deps/handler.py": "def handler(event):\n    import fakepkg\n    return fakepkg.VERSION\n",
    "env_a/fn.env.json": json.dumps({"GREETING": "hello a", "SECRET": {"value": "s-a"}}),
    "env_a/handler.py": (
        "import os, time\n"
        "def handler(event):\n"
        "    time.sleep(float(event.get('query', {}).get('s', 0)))\n"
        "    return {'g': os.environ.get('GREETING'), 's': os.getenv('SECRET'),\n"
        "            'in': 'GREETING' in os.environ, 'path': 'PATH' in os.environ}\n"),
    "env_b/fn.env.json": json.dumps({"GREETING": "hello b"}),
    "env_b/handler.py": (
        "import os, time\n"
        "def handler(event):\n"
        "    time.sleep(float(event.get('query', {}).get('s', 0)))\n"
        "    return {'g': os.environ.get('GREETING')}\n"),
    "loud/handler.py": (
        "import sys\n"
        "def handler(event):\n"
        "    for _ in range(20):\n"
        "        print('x' * (1024 * 1024))\n"
        "    sys.stderr.write('e' * 100000)\n"
        "    return 'ok'\n"),
    "respobj/handler.py": (
        "class Reply:\n"
        "    def __init__(self):\n"
        "        self.status = 203\n"
        "        self.headers = {'X-Obj': 'yes'}\n"
        "        self.body = 'from an object'\n"
        "def handler(event):\n"
        "    return Reply()\n"),
    "env_none/handler.py": (
        "import os\n"
        "def handler(event):\n"
        "    return {'g': os.environ.get('GREETING'), 'keys': 'GREETING' in dict(os.environ)}\n"),
}


class CompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp()
        for rel, text in FILES.items():
            path = os.path.join(cls.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        cls.sock = os.path.join(cls.root, "d.sock")
        cls.proc = subprocess.Popen([sys.executable, DAEMON, cls.sock], stdin=subprocess.PIPE,
                                    env=dict(os.environ, FN_FUNCTIONS_ROOT=cls.root))
        deadline = time.time() + 10
        while not os.path.exists(cls.sock):
            assert time.time() < deadline
            time.sleep(0.02)

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()
        cls.proc.wait()
        cls.proc.stdin.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def call(self, fn, **event):
        return v1_call(self.sock, {"fn": fn, "event": event})

    def body(self, fn, **event):
        r = self.call(fn, **event)
        self.assertEqual(r["status"], 200, r)
        return r["body"]

    def test_a_changed_helper_is_picked_up(self):
        self.assertEqual(self.body("helper"), "old")
        time.sleep(0.01)
        with open(os.path.join(self.root, "helper/_util.py"), "w") as f:
            f.write("WORD = 'new!'\n")
        self.assertEqual(self.body("helper"), "new!")

    def test_handlers_of_one_folder_share_a_helper_module(self):
        self.assertEqual(self.body("shared/put.py", body="x"), "1")
        self.assertEqual(self.body("shared/put.py", body="y"), "2")
        self.assertEqual(self.body("shared/get.py"), '["x","y"]')

    def test_imports_inside_handler_find_helpers_and_packages(self):
        self.assertEqual(self.body("lazy_a"), "a")
        self.assertEqual(self.body("lazy_b"), "b")  # its own _lazy, not lazy_a's
        self.assertEqual(self.body("lazy_a"), "a")
        self.assertEqual(self.body("deps"), "1.2.3")
        self.assertNotIn("fakepkg", self.body("env_none"))

    def test_fn_env_is_in_os_environ_for_the_call_only(self):
        self.assertEqual(json.loads(self.body("env_a")),
                         {"g": "hello a", "s": "s-a", "in": True, "path": True})
        self.assertEqual(json.loads(self.body("env_none")), {"g": None, "keys": False})

    def test_concurrent_calls_each_see_their_own_env(self):
        c = Client(self.sock)
        a = c.call({"fn": "env_a", "event": {"query": {"s": "0.3"}}})
        b = c.call({"fn": "env_b", "event": {"query": {"s": "0.1"}}})
        n = c.call({"fn": "env_none", "event": {}})
        self.assertEqual(json.loads(c.reply(b)[0]["body"])["g"], "hello b")
        self.assertEqual(json.loads(c.reply(n)[0]["body"])["g"], None)
        self.assertEqual(json.loads(c.reply(a)[0]["body"])["g"], "hello a")

    def test_a_response_like_object_is_an_envelope(self):
        r = self.call("respobj")
        self.assertEqual((r["status"], r["headers"].get("X-Obj"), r["body"]),
                         (203, "yes", "from an object"))

    def test_a_handler_printing_20_mb_keeps_its_reply(self):
        r = self.call("loud")
        self.assertEqual((r["status"], r["body"]), (200, "ok"))
        self.assertEqual(r["stdout"], "x" * 65536 + "\u2026[truncated %d bytes]" % (20 * (1024 * 1024 + 1) - 65536))
        self.assertEqual(r["stderr"], "e" * 65536 + "\u2026[truncated 34464 bytes]")


if __name__ == "__main__":
    unittest.main()
