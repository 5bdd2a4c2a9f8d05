"""The strict sandbox on a real PHP daemon: calls with `"strict_fs": true` run in workers that
cannot read outside their function folder (open_basedir), read their own platform files (the
worker's `file://` wrapper) or start a process (disable_functions); calls without it can, and a
handler switching mode gets fresh workers.

    python3 -m unittest discover -s runtimes/php -p '*_test.py'
"""
import json
import os
import shutil
import tempfile
import unittest

from v2_test import start_daemon, stop_daemon, v1_call

PROBE = (
    "<?php\n"
    "function attempt(callable $f): string {\n"
    "    try { $r = @$f(); return ($r === false || $r === null) ? 'blocked' : 'allowed'; }\n"
    "    catch (\\Throwable $e) { return 'blocked'; }\n"
    "}\n"
    "function handler($event) {\n"
    "    return [\n"
    "        'passwd' => attempt(fn() => file_get_contents('/etc/passwd')),\n"
    "        'config' => attempt(fn() => file_get_contents(__DIR__ . '/fn.config.json')),\n"
    "        'env_file' => attempt(fn() => file_get_contents('fn.env.json')),\n"
    "        'exists' => file_exists(__DIR__ . '/fn.config.json') ? 'allowed' : 'blocked',\n"
    "        'spawn' => attempt(fn() => shell_exec('echo hi')),\n"
    "        'own' => attempt(fn() => file_get_contents(__DIR__ . '/data.txt')),\n"
    "        'env' => $event['env']['K'] ?? null,\n"
    "    ];\n"
    "}\n")

FILES = {
    "fn/fn.config.json": json.dumps({"runtime": "php"}),
    "fn/fn.env.json": json.dumps({"K": "v"}),
    "fn/data.txt": "mine\n",
    "fn/handler.php": PROBE,
}

BLOCKED = {"passwd": "blocked", "config": "blocked", "env_file": "blocked", "exists": "blocked",
           "spawn": "blocked", "own": "allowed", "env": "v"}
ALLOWED = {"passwd": "allowed", "config": "allowed", "env_file": "allowed", "exists": "allowed",
           "spawn": "allowed", "own": "allowed", "env": "v"}


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
        cls.proc = start_daemon(cls.root, cls.sock)

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.proc)
        shutil.rmtree(cls.root, ignore_errors=True)

    def probe(self, strict):
        req = {"fn": "fn", "entry": "fn/handler.php", "event": {}}
        if strict:
            req["strict_fs"] = True
        r = v1_call(self.sock, req)
        self.assertEqual(r["status"], 200, r)
        return json.loads(r["body"])

    def test_strict_workers_are_confined_and_modes_do_not_leak(self):
        for _ in range(2):  # the second call of each mode reuses its worker
            self.assertEqual(self.probe(True), BLOCKED)
        for _ in range(2):
            self.assertEqual(self.probe(False), ALLOWED)
        self.assertEqual(self.probe(True), BLOCKED)


if __name__ == "__main__":
    unittest.main()
