"""Protocol v2 (docs/protocol.md) on a real PHP daemon: the shared checks of
`runtimes/v2suite.py` with PHP handlers.

    python3 -m unittest discover -s runtimes/php -p '*_test.py'
"""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import v2suite  # noqa: E402
# Re-exported for the other suites of this folder (compat_test, reclaim_test).
from v2suite import Client, V2Suite, req, stop_daemon, v1_call, v2_frame  # noqa: E402,F401

DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.php")
PHP = os.environ.get("FN_PHP_BIN") or "php"

FILES = {
    "hello/handler.php": "<?php\nfunction handler($e) { return 'hello ' . $e['query']['name']; }\n",
    "wait/handler.php": (
        "<?php\nfunction handler($e) {\n"
        "    usleep((int)$e['query']['ms'] * 1000);\n"
        "    return ['ms' => $e['query']['ms']];\n}\n"),
    "echo/handler.php": (
        "<?php\nfunction handler($e) {\n"
        "    return ['id' => $e['query']['i'] ?? null, 'text' => $e['body'] ?? null,\n"
        "            'b64' => $e['body_base64'] ?? null];\n}\n"),
    "digest/handler.php": (
        "<?php\nfunction h($v) { return $v === null ? null : hash('sha256', $v); }\n"
        "function handler($e) {\n"
        "    return ['text' => h($e['body'] ?? null), 'n' => strlen($e['body']),\n"
        "            'b64' => h($e['body_base64'] ?? null)];\n}\n"),
    "bin/handler.php": "<?php\nfunction handler($e) { return \"\\x00\\x01\\x02\\xfa\"; }\n",
}


def start_daemon(root, sock, **env):
    """A PHP daemon on `sock` serving `root`, ready."""
    return v2suite.start_daemon([PHP, DAEMON], root, sock, **env)


class V2Test(V2Suite, unittest.TestCase):
    COMMAND = [PHP, DAEMON]
    FILES = FILES
    RUNTIME = "php"
    # PHP runs each call in a worker process of the handler's pool (8 at most).
    PARALLEL = (6, 1.2)

    def test_cancel_unknown_or_finished_is_harmless(self):
        # PHP drops only calls still waiting for a worker (a started one is its worker's).
        c = self.client()
        c.send(v2_frame(999, 3, None))
        self.assertEqual(c.reply(c.call(req("hello", {"name": "a"})))[0]["body"], "hello a")
        c.send(v2_frame(1, 3, None))  # already answered
        self.assertEqual(c.reply(c.call(req("hello", {"name": "b"})))[0]["body"], "hello b")
        # A call still queued (its function's 8 workers all busy) is dropped by a cancel.
        c.send(b"".join(v2_frame(100 + i, 1, req("wait", {"ms": "200"})) for i in range(8)))
        c.send(v2_frame(50, 1, req("wait", {"ms": "1"})) + v2_frame(50, 3, None))
        self.assertEqual(c.reply(c.call(req("hello", {"name": "c"})))[0]["body"], "hello c")
        for i in range(8):
            self.assertEqual(c.reply(100 + i)[0]["body"], '{"ms":"200"}')
        c.s.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            c.read_one()
        self.assertNotIn(50, c.replies)


if __name__ == "__main__":
    unittest.main()
