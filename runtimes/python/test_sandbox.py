"""The strict sandbox on a real Python daemon: a call with `"strict_fs": true` cannot read
outside its function folder, its own platform files, or start a process, also after an await
and in its module's top-level code; a call without it (of any function, at the same time) can.

    python3 -m unittest discover -s runtimes/python -p 'test_*.py'
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from test_v2 import DAEMON, v1_call

PROBE = (
    "import asyncio, os, subprocess, time\n"
    "HERE = os.path.dirname(os.path.abspath(__file__))\n"
    "def attempt(f):\n"
    "    try:\n"
    "        f()\n"
    "        return 'allowed'\n"
    "    except PermissionError:\n"
    "        return 'blocked'\n"
    "def probes():\n"
    "    return {\n"
    "        'passwd': attempt(lambda: open('/etc/passwd').read()),\n"
    "        'config': attempt(lambda: open(os.path.join(HERE, 'fn.config.json')).read()),\n"
    "        'env': attempt(lambda: open(os.path.join(HERE, 'fn.env.json')).read()),\n"
    "        'spawn': attempt(lambda: subprocess.run(['true'])),\n"
    "        'system': attempt(lambda: os.system('true')),\n"
    "        'own': attempt(lambda: open(os.path.join(HERE, 'data.txt')).read()),\n"
    "    }\n"
)

FILES = {
    "fn/fn.config.json": json.dumps({"runtime": "python"}),
    "fn/fn.env.json": json.dumps({"K": "v"}),
    "fn/data.txt": "mine\n",
    "fn/handler.py": PROBE + (
        "def handler(event):\n"
        "    time.sleep(float(event.get('query', {}).get('s', 0)))\n"
        "    return probes()\n"),
    "fn/aio.py": PROBE + (
        "async def handler(event):\n"
        "    await asyncio.sleep(0.01)\n"
        "    return probes()\n"),
    "top/handler.py": (
        "try:\n"
        "    open('/etc/passwd').read()\n"
        "    AT_IMPORT = 'allowed'\n"
        "except PermissionError:\n"
        "    AT_IMPORT = 'blocked'\n"
        "def handler(event):\n"
        "    return AT_IMPORT\n"),
}

ALL_BLOCKED = {"passwd": "blocked", "config": "blocked", "env": "blocked", "spawn": "blocked",
               "system": "blocked", "own": "allowed"}
ALL_ALLOWED = {k: "allowed" for k in ALL_BLOCKED}


class SandboxTest(unittest.TestCase):
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

    def probe(self, entry, strict, **query):
        req = {"fn": entry, "entry": entry, "event": {"query": query}}
        if strict:
            req["strict_fs"] = True
        r = v1_call(self.sock, req)
        self.assertEqual(r["status"], 200, r)
        return json.loads(r["body"])

    def test_a_strict_call_is_confined(self):
        self.assertEqual(self.probe("fn/handler.py", True), ALL_BLOCKED)
        self.assertEqual(self.probe("fn/handler.py", False), ALL_ALLOWED)

    def test_the_sandbox_follows_an_async_call_past_its_await(self):
        self.assertEqual(self.probe("fn/aio.py", True), ALL_BLOCKED)
        self.assertEqual(self.probe("fn/aio.py", False), ALL_ALLOWED)

    def test_concurrent_strict_and_open_calls_keep_their_own_mode(self):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            calls = [pool.submit(self.probe, "fn/handler.py", i % 2 == 0, s="0.05") for i in range(16)]
            for i, call in enumerate(calls):
                self.assertEqual(call.result(), ALL_BLOCKED if i % 2 == 0 else ALL_ALLOWED, i)

    def test_top_level_code_of_a_strict_function_is_confined_at_import(self):
        r = v1_call(self.sock, {"fn": "top", "entry": "top/handler.py", "strict_fs": True, "event": {}})
        self.assertEqual(r["body"], "blocked", r)


if __name__ == "__main__":
    unittest.main()
