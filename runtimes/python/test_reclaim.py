"""Runaway calls are reclaimed: a handler still running past its timeout (or cancelled by the
engine after it started) is interrupted, so the daemon's CPU goes back to idle.

    python3 -m unittest discover -s runtimes/python -p 'test_*.py'
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from test_v2 import DAEMON, Client, v1_call, v2_frame

FILES = {
    "spin.py": "def handler(event):\n    while True:\n        pass\n",
    "aspin.py": "async def handler(event):\n    while True:\n        pass\n",
    "asleep.py": "import asyncio\nasync def handler(event):\n    await asyncio.sleep(60)\n",
    "stubborn.py": (
        "def handler(event):\n"
        "    while True:\n"
        "        try:\n"
        "            while True:\n"
        "                pass\n"
        "        except BaseException:\n"
        "            pass\n"),
    "ok.py": "def handler(event):\n    return 'ok'\n",
}


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ReclaimTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        for rel, text in FILES.items():
            with open(os.path.join(self.root, rel), "w") as f:
                f.write(text)
        self.sock = os.path.join(self.root, "d.sock")
        self.proc = subprocess.Popen([sys.executable, DAEMON, self.sock], stdin=subprocess.PIPE,
                                     env=dict(os.environ, FN_FUNCTIONS_ROOT=self.root))
        deadline = time.time() + 10
        while not os.path.exists(self.sock):
            self.assertLess(time.time(), deadline)
            time.sleep(0.02)

    def tearDown(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def call(self, fn, timeout_ms=300):
        return v1_call(self.sock, {"fn": fn, "event": {"context": {"timeout_ms": timeout_ms}}})

    def assert_idle(self):
        time.sleep(0.3)
        before = cpu_seconds(self.proc.pid)
        time.sleep(1.0)
        self.assertLess(cpu_seconds(self.proc.pid) - before, 0.15, "daemon still burns CPU")

    def test_sync_spin_is_interrupted_after_its_timeout(self):
        t0 = time.time()
        r = self.call("spin.py")
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(r["status"], 500)
        self.assertIn("call stopped", r["body"])
        self.assert_idle()
        self.assertEqual(self.call("ok.py")["body"], "ok")

    def test_async_spin_and_sleep_are_reclaimed(self):
        for fn in ("aspin.py", "asleep.py"):
            t0 = time.time()
            self.assertEqual(self.call(fn)["status"], 500, fn)
            self.assertLess(time.time() - t0, 2.0, fn)
            self.assert_idle()
        self.assertEqual(self.call("ok.py")["body"], "ok")

    def test_v2_cancel_of_a_started_call_stops_it(self):
        c = Client(self.sock)
        cid = c.call({"fn": "spin.py", "event": {}})  # no timeout: only the cancel stops it
        time.sleep(0.3)
        c.send(v2_frame(cid, 3, None))
        meta, _ = c.reply(cid)
        self.assertEqual(meta["status"], 500)
        self.assert_idle()
        self.assertEqual(c.reply(c.call({"fn": "ok.py", "event": {}}))[0]["body"], "ok")

    def test_call_without_timeout_is_never_interrupted(self):
        c = Client(self.sock)
        c.call({"fn": "spin.py", "event": {}})
        time.sleep(0.6)
        before = cpu_seconds(self.proc.pid)
        time.sleep(0.5)
        self.assertGreater(cpu_seconds(self.proc.pid) - before, 0.2)

    def test_a_call_that_swallows_the_interruption_ends_the_daemon(self):
        try:
            self.call("stubborn.py")
        except (EOFError, OSError):
            pass
        self.assertEqual(self.proc.wait(timeout=5), 70)


if __name__ == "__main__":
    unittest.main()
