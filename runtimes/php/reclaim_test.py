"""Runaway calls on a real PHP daemon: a worker still busy past its call's timeout, or whose
started v2 call is cancelled, is killed, so CPU comes back; calls without a timeout run on.

    python3 -m unittest discover -s runtimes/php -p '*_test.py'
"""
import os
import shutil
import tempfile
import time
import unittest

from v2_test import Client, start_daemon, stop_daemon, v1_call, v2_frame

FILES = {
    "spin.php": "<?php\nfunction handler($e) { while (true) {} }\n",
    "script.php": "<?php\nwhile (true) {}\n",
    "ok.php": "<?php\nfunction handler($e) { return 'ok'; }\n",
}


def cpu_seconds(pid):
    """CPU time of a process and its live children (the workers)."""
    pids = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def busy_over(pid, seconds):
    """CPU seconds used by the daemon and its workers during the next `seconds`."""
    pids_before = cpu_seconds(pid)
    time.sleep(seconds)
    return max(0.0, cpu_seconds(pid) - pids_before)


class ReclaimTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        for rel, text in FILES.items():
            with open(os.path.join(self.root, rel), "w") as f:
                f.write(text)
        self.sock = os.path.join(self.root, "d.sock")
        self.proc = start_daemon(self.root, self.sock)

    def tearDown(self):
        stop_daemon(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)

    def call(self, fn, **context):
        return v1_call(self.sock, {"fn": fn, "event": {"context": context}})

    def test_worker_past_its_timeout_is_killed(self):
        for fn in ("spin.php", "script.php"):
            t0 = time.time()
            r = self.call(fn, timeout_ms=300)
            self.assertLess(time.time() - t0, 1.5, fn)
            self.assertEqual(r["status"], 500, fn)
            self.assertIn("call stopped", r["body"])
            time.sleep(0.2)
            self.assertLess(busy_over(self.proc.pid, 1.0), 0.15, fn)
            self.assertEqual(self.call("ok.php", timeout_ms=300)["body"], "ok")

    def test_v2_cancel_of_a_started_call_kills_its_worker(self):
        c = Client(self.sock)
        cid = c.call({"fn": "spin.php", "event": {}})
        time.sleep(0.5)
        self.assertGreater(busy_over(self.proc.pid, 0.5), 0.1)
        c.send(v2_frame(cid, 3, None))
        self.assertEqual(c.reply(cid)[0]["status"], 500)
        time.sleep(0.2)
        self.assertLess(busy_over(self.proc.pid, 1.0), 0.15)
        self.assertEqual(c.reply(c.call({"fn": "ok.php", "event": {}}))[0]["body"], "ok")

    def test_call_without_timeout_runs_on(self):
        c = Client(self.sock)
        c.call({"fn": "spin.php", "event": {}})
        time.sleep(0.8)
        self.assertGreater(busy_over(self.proc.pid, 1.0), 0.1)


if __name__ == "__main__":
    unittest.main()
