"""Protocol v2 (docs/protocol.md) on a real Python daemon: the shared checks of
`runtimes/v2suite.py` with Python handlers.

    python3 -m unittest discover -s runtimes/python -p 'test_*.py'
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Re-exported for the other suites of this folder (test_compat, test_reclaim).
from v2suite import Client, V2Suite, v1_call, v2_frame  # noqa: E402,F401

DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.py")

FILES = {
    "hello/handler.py": "def handler(event):\n    return 'hello ' + event['query']['name']\n",
    "wait/handler.py": (
        "import time\n"
        "def handler(event):\n"
        "    time.sleep(int(event['query']['ms']) / 1000)\n"
        "    return {'ms': event['query']['ms']}\n"),
    "echo/handler.py": (
        "def handler(event):\n"
        "    return {'id': event['query'].get('i'), 'text': event.get('body'),\n"
        "            'b64': event.get('body_base64')}\n"),
    "digest/handler.py": (
        "import hashlib\n"
        "def h(v):\n"
        "    return None if v is None else hashlib.sha256(v.encode()).hexdigest()\n"
        "def handler(event):\n"
        "    return {'text': h(event.get('body')), 'n': len(event['body']),\n"
        "            'b64': h(event.get('body_base64'))}\n"),
    "bin/handler.py": "def handler(event):\n    return b'\\x00\\x01\\x02\\xfa'\n",
}


class V2Test(V2Suite, unittest.TestCase):
    COMMAND = [sys.executable, DAEMON]
    FILES = FILES
    RUNTIME = "python"
    PARALLEL = (10, 0.9)


if __name__ == "__main__":
    unittest.main()
