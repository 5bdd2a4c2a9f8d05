"""FastFN's PHP handler forms on a real daemon: script-style files setting `$FASTFN_STATUS` /
`$FASTFN_HEADERS` and echoing the body, handlers that echo their body, the script variables
from inside handler(), and fn.env.json through getenv().

    python3 -m unittest discover -s runtimes/php -p '*_test.py'
"""
import json
import os
import shutil
import tempfile
import unittest

from v2_test import start_daemon, stop_daemon, v1_call

FILES = {
    "script.php": (
        "<?php\n"
        "$FASTFN_STATUS = 201;\n"
        "$FASTFN_HEADERS = ['Content-Type' => 'text/plain; charset=utf-8', 'X-Kind' => 'script'];\n"
        "echo 'made ', $_GET['name'] ?? 'nobody';\n"),
    "plain-script.php": "<?php\necho '<p>hi</p>';\n",
    "echo-null.php": "<?php\nfunction handler($event) {\n    echo 'echoed body';\n}\n",
    "echo-envelope.php": (
        "<?php\nfunction handler($event) {\n"
        "    echo 'from echo';\n"
        "    return ['status' => 202, 'headers' => ['Content-Type' => 'text/plain']];\n}\n"),
    "globals.php": (
        "<?php\nfunction handler($event) {\n"
        "    global $FASTFN_STATUS, $FASTFN_HEADERS;\n"
        "    $FASTFN_STATUS = 418;\n"
        "    $FASTFN_HEADERS = ['X-Tea' => 'yes'];\n"
        "    return ['short' => true];\n}\n"),
    "globals-envelope.php": (
        "<?php\nfunction handler($event) {\n"
        "    global $FASTFN_STATUS, $FASTFN_HEADERS;\n"
        "    $FASTFN_STATUS = 418;\n"
        "    $FASTFN_HEADERS = ['X-Tea' => 'yes', 'X-Own' => 'script'];\n"
        "    return ['status' => 200, 'headers' => ['X-Own' => 'envelope'], 'body' => 'env'];\n}\n"),
    "loud.php": (
        "<?php\nfunction handler($event) {\n"
        "    for ($i = 0; $i < 20; $i++) { echo str_repeat('x', 1048576), \"\\n\"; }\n"
        "    fwrite(STDERR, str_repeat('e', 100000));\n"
        "    return 'ok';\n}\n"),
    "helper/_word.php": "<?php\nfunction word() { return 'old'; }\n",
    "helper/handler.php": (
        "<?php\nrequire __DIR__ . '/_word.php';\n"
        "function handler($event) { return word(); }\n"),
    "env/fn.env.json": json.dumps({"GREETING": "hola", "N": 3}),
    "env/handler.php": (
        "<?php\nfunction handler($event) {\n"
        "    return ['g' => getenv('GREETING'), 'n' => getenv('N'), 'e' => $_ENV['GREETING'] ?? null];\n}\n"),
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
        cls.proc = start_daemon(cls.root, cls.sock)

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.proc)
        shutil.rmtree(cls.root, ignore_errors=True)

    def call(self, fn, **event):
        r = v1_call(self.sock, {"fn": fn, "event": event})
        r.pop("stderr", None)
        return r

    def test_script_style_file_sets_status_and_headers(self):
        for _ in range(2):  # the second run is served by the same worker
            r = self.call("script.php", query={"name": "Ada"})
            self.assertEqual(r, {"status": 201, "body": "made Ada", "headers": {
                "Content-Type": "text/plain; charset=utf-8", "X-Kind": "script"}})
        r = self.call("plain-script.php")
        self.assertEqual((r["status"], r["body"]), (200, "<p>hi</p>"))

    def test_echoed_body_of_a_handler_that_returns_nothing(self):
        r = self.call("echo-null.php")
        self.assertEqual((r["status"], r["body"], r.get("stdout")), (200, "echoed body", None))
        r = self.call("echo-envelope.php")
        self.assertEqual((r["status"], r["body"]), (202, "from echo"))

    def test_script_variables_from_inside_a_handler(self):
        r = self.call("globals.php")
        self.assertEqual((r["status"], r["body"], r["headers"].get("X-Tea")),
                         (418, '{"short":true}', "yes"))
        r = self.call("globals-envelope.php")
        self.assertEqual((r["status"], r["body"], r["headers"]),
                         (200, "env", {"X-Own": "envelope", "X-Tea": "yes"}))

    def test_a_changed_helper_file_is_picked_up(self):
        self.assertEqual(self.call("helper")["body"], "old")
        self.assertEqual(self.call("helper")["body"], "old")  # a warm worker
        with open(os.path.join(self.root, "helper/_word.php"), "w") as f:
            f.write("<?php\nfunction word() { return 'new, longer'; }\n")
        self.assertEqual(self.call("helper")["body"], "new, longer")

    def test_fn_env_through_getenv(self):
        r = self.call("env")
        self.assertEqual(json.loads(r["body"]), {"g": "hola", "n": "3", "e": "hola"})
        with open(os.path.join(self.root, "env/fn.env.json"), "w") as f:
            f.write(json.dumps({"GREETING": "changed, same worker"}))
        r = self.call("env")
        self.assertEqual(json.loads(r["body"]), {"g": "changed, same worker", "n": False,
                                                 "e": "changed, same worker"})


    def test_a_handler_printing_20_mb_keeps_its_reply(self):
        r = v1_call(self.sock, {"fn": "loud.php", "event": {}})
        self.assertEqual((r["status"], r["body"]), (200, "ok"))
        self.assertEqual(r["stdout"], "x" * 65536 + "\u2026[truncated %d bytes]" % (20 * 1048577 - 65536))
        self.assertEqual(r["stderr"], "e" * 65536 + "\u2026[truncated 34464 bytes]")


if __name__ == "__main__":
    unittest.main()
