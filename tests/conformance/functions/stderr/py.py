import sys


def handler(event):
    sys.stderr.write("warned\n")
    return "ok"
