#!/usr/bin/env python3
"""FastFN Python runtime daemon (contract §4, python column of §4.1).

    python3 daemon.py <socket-path>
    env: FN_FUNCTIONS_ROOT (absolute functions root), FN_MAX_FRAME_BYTES (default 2 MiB)

One self-contained file, standard library only, so the engine can embed it.

Protocol (docs/protocol.md): v1 — per connection read one frame (4-byte big-endian length +
UTF-8 JSON request), write one reply frame, close. v2 — a connection whose first frame is
`{"fastfn_hello": 2}` gets the hello answer, then carries multiplexed call/reply/cancel frames
(id, meta JSON, raw body) until closed; its calls are served concurrently. Every failure is an
ordinary reply; error bodies are JSON `{"error": "..."}` with `Content-Type: application/json`.

Invariants kept here:
- Never loads a file outside the functions root (`..`, absolute paths and symlinks out → 404).
- Module state is per folder (as FastFN's daemon shares it): each handler file is imported
  under its own module name, and the private modules it imports from its folder (`_util.py`,
  ...) or its `.deps` are moved out of `sys.modules` into the folder's record (_Folder), which
  every handler file of that folder shares: two handlers importing `_shared` see one module,
  and two folders' same-named helpers never collide. A meta-path finder (_FolderFinder)
  resolves imports in the current folder's record, then its folder and `.deps`, while a handler
  is imported and during its calls (so `import requests` inside handler() works).
- A changed handler file (mtime_ns or size), or a changed helper file of its folder (each
  one's mtime_ns and size is compared on each call of the folder's handlers), drops the
  folder's modules: every handler of the folder is re-imported on its next call.
- Dependencies (contract §4.2): the engine installs a function's packages into
  `<handler folder>/.deps`; it is searched right after the handler's folder, and what is
  imported from it stays private to that folder like its helpers (two functions may hold
  different versions of one package). A new install (its `.deps/.fastfn-signature` stamp
  changes) re-imports the handler on its next call.
- `os.environ` is a view (_EnvOverlay): during a call, the call's `event.env` (gateway env +
  fn.env.json) over the process environment, read from the call's context; other calls,
  threads and coroutines never see it. Writes go to the process environment.
- Runaway calls (see "runaway calls"): a call past `event.context.timeout_ms` (+50 ms), or
  cancelled by the engine after it started, is interrupted (an exception raised in its
  thread; an async call's task cancelled); one that keeps burning CPU makes the daemon exit.
- The daemon writes nothing of its own per call; handler stdout/stderr are captured per call
  (a context-variable selected buffer behind proxies on sys.stdout/sys.stderr) and returned in
  the reply's `stdout`/`stderr` fields, at most 64 KiB (characters) each: the rest is counted
  and the text ends with `…[truncated N bytes]`.
- Concurrency: leader/followers (see _Pool). One leader thread waits on the listener and all
  v2 connections and serves v1 connections and v2 calls inline; a watchdog hands the leader
  role to another thread when a call stalls, so a sleeping handler pins only its own thread
  (also between calls of one v2 connection). Coroutines run on one event loop thread, awaited
  by the calling worker thread.
- Strict sandbox: a request with `"strict_fs": true` runs with a policy in its capture that an
  audit hook checks (see "strict sandbox"); other calls are untouched.
- Exits at once when stdin reaches EOF (the engine holds the other end; so stdin must be a
  pipe kept open, not /dev/null), cleanly on SIGTERM/SIGINT (socket file removed, exit 0).

Choices within the contract:
- Handler file: request `entry` (root-relative .py file) wins; else `fn` as a root-relative .py
  file; else `fn_source_dir` (+ `version` subfolder) with `handler.py`, then `main.py`; else
  `fn` as a folder, same entry order. Anything else → 404 `unknown function`.
- Callable: request `handler` (default `handler`), else `main`; neither → 500. A handler with
  no positional parameter is called without the event. Params go in as keyword arguments
  when named in the signature (`event` parameter name excluded) or when it takes `**kw`.
- Shorthand returns: str → 200, `text/html; charset=utf-8` when its first non-blank character
  is `<`, else `text/plain; charset=utf-8`; None → 200 empty body, no headers; bytes → 200
  base64 with `application/octet-stream`; dict without envelope keys, list, number → 200 JSON.
  JSON bodies are compact; values JSON cannot encode become `str(value)`. Another object with a
  `status`, `headers` or `body` attribute (a response-like object, as FastFN accepts) is the
  envelope those attributes make.
- Envelope: `status` else `statusCode` (default 200; numeric strings accepted; outside
  100..599 → 500); header values become strings (lists stay lists of strings); `proxy` is
  passed through unchanged in the reply. In a tuple a str body gets the html/plain type.
- `event.env` = the gateway's `event.env` (if any) updated with `fn.env.json` from the handler's
  folder (`{"K":{"value":..}}` → value; non-strings JSON/str-encoded); `FN_ADMIN_*`,
  `FN_CONSOLE_*`, `FN_TRUSTED_*` dropped. Invalid `fn.env.json` → 500. `event.version` =
  request `version`, else `"default"`.
- Errors: handler exception → 500 `"<Type>: <message>"`, traceback in `stderr`; import failure
  → 500 `failed to load handler: <Type>: <message>`; an `adapter` other than the ones below →
  500 `unknown adapter: <adapter> (want native, aws-lambda or cloudflare-worker)`; reply over
  10 MiB → 500 `response too large`.

Adapters (request `adapter`, contract §3.1; aliases accepted here too; `native` or absent takes
the native path, which never looks at this section's code). Env, function loading, output
capture and handler errors (500 `"<Type>: <message>"`) are as for native handlers.
- `aws-lambda`: callable `handler` (request `handler`), else `main`, else `lambda_handler`,
  called as `handler(event, context)` (fewer positional arguments if it takes fewer; async
  allowed). `event` is an API Gateway HTTP API payload 2.0 event: `version` "2.0", `routeKey`
  and `requestContext.routeKey` "$default" (the route pattern is not sent to daemons), `rawPath`
  = path, `rawQueryString` = raw_path after `?`, `cookies` = the cookie header split on `;`
  (the cookie header is then left out of `headers`, as AWS does), `headers` lower-case with
  repeated values joined by `,`, `queryStringParameters` (decoded, repeated joined by `,`, a
  key without value → ""), `pathParameters` = params, `requestContext` {accountId "anonymous",
  apiId "fastfn", domainName = host header, domainPrefix, http {method, path, protocol
  "HTTP/1.1", sourceIp, userAgent}, requestId, routeKey, stage "$default", time
  ("14/Nov/2023:22:13:20 +0000"), timeEpoch = event.ts}, `body` (event.body_base64 with
  `isBase64Encoded` true for non-UTF-8 bodies), `isBase64Encoded`. `cookies`,
  `queryStringParameters`, `pathParameters` and `body` are absent when empty, as in AWS.
  `context` has the Python Lambda names: aws_request_id, function_name, function_version
  "$LATEST", invoked_function_arn, memory_limit_in_mb 128, log_group_name, log_stream_name,
  identity/client_context None, get_remaining_time_in_millis() (event.ts + timeout_ms - now),
  and `env` (FastFN extra: fn.env.json is not in os.environ, which the daemon shares).
  Reply: a dict with `statusCode` → status (int or numeric string), `multiValueHeaders` then
  `headers` (same name, any case: `headers` wins), `cookies` → one `Set-Cookie` list (after any
  set-cookie from headers), `body` (str; dict/list → JSON; `isBase64Encoded` → base64 body).
  A dict without `statusCode` (or a list) → 200 JSON of the whole value; anything else (str,
  bytes, None, tuple) → the native shorthand rules.
- `cloudflare-worker`: callable `fetch`, else `on_fetch` (or the request `handler` when it is
  not `handler`), called as `fetch(request, env, ctx)` (fewer arguments if it takes fewer; sync
  or async). `Request`, `Response` and `Headers` (module `fastfn_worker`, also set as globals
  of the handler module unless it defines them) are documented on their classes: request.url =
  `http://<host header or localhost><raw_path>`, request.body = bytes (event.body_base64
  decoded when present), `text()`/`json()` are synchronous. `env` = event.env. `ctx.waitUntil(
  awaitable)` runs it on the daemon's event loop without delaying the reply (its output and
  errors go to the daemon's own stdout/stderr, not to any reply; non-awaitables are ignored);
  `ctx.passThroughOnException()` does nothing; `ctx.params` = path params (FastFN extra).
  Reply of a Response: its status, headers lower-case (repeated values joined by `, `, several
  set-cookie → a list), body as text when there is no content-type or a textual one and it is
  UTF-8, else base64. A return value that is not a Response follows the native rules.
- No .pyc files are written into the functions tree. A module a call imports lazily is in
  `sys.modules` until that call ends (then moved into its folder's record): a concurrent call
  of another folder importing the same name in that window gets it.
"""
import asyncio
import base64
import collections
import contextvars
import importlib.machinery
import importlib.util
import inspect
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from collections.abc import Mapping, MutableMapping

MAX_THREADS = 256          # worker threads at most (slow calls in flight + 1)
MAX_PARKED = 32            # spare worker threads kept parked for the next slow call
STALL_SECONDS = 0.002      # a call longer than this (to 2x) gets a new acceptor beside it
IDLE_TICK_SECONDS = 0.05   # watchdog tick after 1 s without calls
RECLAIM_GRACE = 0.05       # past a call's timeout_ms before its thread is interrupted
RECLAIM_RETRY = 0.25       # between two interruptions of a call that is still running
RECLAIM_EXIT_TRIES = 5     # a call still burning CPU after this many tries: the daemon exits
MAX_REPLY_BYTES = 10 * 1024 * 1024  # the gateway rejects larger reply frames
ENV_FILE = "fn.env.json"
ENTRY_FILES = ("handler.py", "main.py")
DEPS_DIR = ".deps"                 # per-function packages, installed by the engine
DEPS_STAMP = ".fastfn-signature"   # written by the engine after each successful install
HIDDEN_ENV_PREFIXES = ("FN_ADMIN_", "FN_CONSOLE_", "FN_TRUSTED_")
ENVELOPE_KEYS = frozenset(("status", "statusCode", "headers", "body", "is_base64",
                           "isBase64Encoded", "body_base64", "proxy"))

_JSON_CT = "application/json"
_ERR_HEADERS = {"Content-Type": _JSON_CT}  # only ever read (encoded), never mutated


def _json_encoder(ensure_ascii, default):
    """A compact JSON encoder built once (json.dumps with options builds one per call)."""
    from json import encoder as je
    if je.c_make_encoder is not None:
        # No circular-reference markers: a cyclic value raises RecursionError (→ 500).
        c = je.c_make_encoder(None, default, je.c_encode_basestring_ascii if ensure_ascii
                              else je.c_encode_basestring, None, ":", ",", False, False, True)
        join = "".join
        return lambda obj: join(c(obj, 0))
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii,
                            default=default).encode


_encode_frame = _json_encoder(True, None)
_encode_body = _json_encoder(False, str)  # bodies: UTF-8 text; odd objects become str(obj)
_loads = json.loads


def _root():
    root = os.environ.get("FN_FUNCTIONS_ROOT") or os.getcwd()
    return os.path.realpath(root)


ROOT = _root()
ROOT_PREFIX = ROOT.rstrip(os.sep) + os.sep
try:
    MAX_FRAME = int(os.environ.get("FN_MAX_FRAME_BYTES") or 2 * 1024 * 1024)
except ValueError:
    MAX_FRAME = 2 * 1024 * 1024
if MAX_FRAME <= 0:
    MAX_FRAME = 2 * 1024 * 1024


# ---------------------------------------------------------------- replies

def _error(status, message, stderr=None):
    reply = {"status": status, "headers": _ERR_HEADERS,
             "body": _encode_frame({"error": message})}
    if stderr:
        reply["stderr"] = stderr
    return reply


class _HandlerError(Exception):
    """A handler returned something the daemon cannot turn into a reply (→ 500)."""


def _has_header(headers, name):
    for k in headers:
        if k.lower() == name:
            return True
    return False


def _clean_headers(headers):
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise _HandlerError("handler returned invalid headers (not an object)")
    out = {}
    for k, v in headers.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            out[str(k)] = [x if isinstance(x, str) else str(x) for x in v]
        else:
            out[str(k)] = v if isinstance(v, str) else str(v)
    return out


def _status(value):
    if value is None:
        return 200
    if type(value) is int:
        status = value
    elif isinstance(value, str) and value.strip().isdigit():
        status = int(value)
    elif isinstance(value, float) and value.is_integer():
        status = int(value)
    else:
        raise _HandlerError("handler returned an invalid status: %r" % (value,))
    if status < 100 or status > 599:
        raise _HandlerError("handler returned an invalid status: %r" % (value,))
    return status


def _text_type(text):
    """Shorthand strings: text/html when the first non-blank character is '<', else plain."""
    if text.lstrip()[:1] == "<":
        return "text/html; charset=utf-8"
    return "text/plain; charset=utf-8"


def _with_body(reply, body, headers, text_default):
    """Put `body` into `reply`: str as is, bytes as base64, anything else as JSON."""
    if body is None:
        reply["body"] = ""
    elif isinstance(body, str):
        if text_default and not _has_header(headers, "content-type"):
            headers["Content-Type"] = _text_type(body)
        reply["body"] = body
    elif isinstance(body, (bytes, bytearray, memoryview)):
        if not _has_header(headers, "content-type"):
            headers["Content-Type"] = "application/octet-stream"
        reply["is_base64"] = True
        reply["body_base64"] = base64.b64encode(body).decode("ascii")
    else:
        if not _has_header(headers, "content-type"):
            headers["Content-Type"] = _JSON_CT
        reply["body"] = _encode_body(body)
    return reply


def _envelope(d):
    status = d.get("status")
    if status is None:
        status = d.get("statusCode")
    headers = _clean_headers(d.get("headers"))
    reply = {"status": _status(status), "headers": headers}
    b64 = d.get("body_base64")
    body = d.get("body")
    if b64 is not None or d.get("is_base64") or d.get("isBase64Encoded"):
        if b64 is None:
            b64 = body
        if b64 is None:
            b64 = ""
        if isinstance(b64, (bytes, bytearray, memoryview)):
            b64 = bytes(b64).decode("ascii")
        if not isinstance(b64, str):
            raise _HandlerError("handler returned a base64 body that is not a string")
        reply["is_base64"] = True
        reply["body_base64"] = b64
    else:
        _with_body(reply, body, headers, False)
    if "proxy" in d:
        reply["proxy"] = d["proxy"]
    return reply


def _to_reply(res):
    """Map a handler's return value to a reply frame (contract §4.1, python column)."""
    t = type(res)
    if t is dict:
        for k in res:
            if k in ENVELOPE_KEYS:
                return _envelope(res)
        return {"status": 200, "headers": {"Content-Type": _JSON_CT}, "body": _encode_body(res)}
    if t is str:
        return {"status": 200, "headers": {"Content-Type": _text_type(res)}, "body": res}
    if res is None:
        return {"status": 200, "headers": {}, "body": ""}
    if t is tuple:
        if not 1 <= len(res) <= 3:
            raise _HandlerError("handler returned a tuple of %d items (want 1 to 3)" % len(res))
        status = _status(res[1] if len(res) > 1 else None)
        headers = _clean_headers(res[2] if len(res) > 2 else None)
        return _with_body({"status": status, "headers": headers}, res[0], headers, True)
    if isinstance(res, dict):  # dict subclasses (OrderedDict, ...)
        return _to_reply(dict(res))
    if isinstance(res, (bytes, bytearray, memoryview)):
        headers = {}
        return _with_body({"status": 200, "headers": headers}, res, headers, True)
    if t not in _JSON_TYPES and not isinstance(res, (list, int, float)) and \
            (hasattr(res, "status") or hasattr(res, "headers") or hasattr(res, "body")):
        # A response-like object (FastFN accepts them): its status/headers/body attributes
        # make an envelope.
        d = {"status": getattr(res, "status", 200), "headers": getattr(res, "headers", None)}
        body = getattr(res, "body", "")
        d["body"] = body if isinstance(body, (str, bytes, bytearray)) or body is None else str(body)
        if not isinstance(d["headers"], Mapping):
            d["headers"] = {}
        return _envelope(d)
    # list, number, bool, other objects: JSON (objects JSON cannot encode become str(obj))
    return {"status": 200, "headers": {"Content-Type": _JSON_CT}, "body": _encode_body(res)}


_JSON_TYPES = frozenset((list, int, float, bool))


# ---------------------------------------------------------------- output capture

# A call's capture: [stdout parts, stderr parts, _Folder, env dict or None, stdout chars kept,
# stderr chars kept, stdout bytes dropped, stderr bytes dropped].
_CAPTURE = contextvars.ContextVar("fastfn_capture", default=None)


MAX_OUTPUT = 64 * 1024  # stdout/stderr kept per call (characters), the rest counted


def _output(cap, i):
    """A call's stdout (i=0) or stderr (1): at most MAX_OUTPUT characters, then a marker with
    how many bytes were left out, so a chatty handler never bloats (or breaks) its reply."""
    text = "".join(cap[i])
    dropped = cap[6 + i]
    if len(text) > MAX_OUTPUT:
        dropped += len(text[MAX_OUTPUT:].encode("utf-8", "replace"))
        text = text[:MAX_OUTPUT]
    return text + ("\u2026[truncated %d bytes]" % dropped if dropped else "")


class _Capture:
    """Stands in for sys.stdout/sys.stderr: writes go to the current call's buffer, if any."""

    def __init__(self, real, index):
        self._real = real
        self._index = index

    def write(self, s):
        cap = _CAPTURE.get()
        if cap is None:
            return self._real.write(s)
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        i = self._index
        n = cap[4 + i]
        if n < MAX_OUTPUT:
            cap[i].append(s)
            cap[4 + i] = n + len(s)
        else:  # past the bound: only counted (see _output)
            cap[6 + i] += len(s.encode("utf-8", "replace"))
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if _CAPTURE.get() is None:
            self._real.flush()

    def isatty(self):
        return False

    def __getattr__(self, name):
        return getattr(self._real, name)


# ---------------------------------------------------------------- function loading

class _Function:
    """One handler file, loaded: its module, private helpers and callables, or its load error."""

    __slots__ = ("path", "sig", "module", "folder", "gen", "error", "trace", "callables",
                 "env_path", "stamp_path")

    def __init__(self, path, sig, folder):
        self.path = path
        self.sig = sig
        self.module = None
        self.folder = folder
        self.gen = folder.gen
        self.error = None
        self.trace = None
        self.callables = {}
        self.env_path = os.path.join(os.path.dirname(path), ENV_FILE)
        self.stamp_path = _stamp_path(path)


class _Callable:
    __slots__ = ("func", "is_async", "takes_event", "kw_names", "var_kw", "event_name")

    def __init__(self, func):
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)
        self.takes_event = True
        self.kw_names = frozenset()
        self.var_kw = False
        self.event_name = None
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            return
        P = inspect.Parameter
        positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
        var_pos = any(p.kind == P.VAR_POSITIONAL for p in params)
        self.takes_event = bool(positional) or var_pos
        rest = positional[1:] if positional else []
        if positional:
            self.event_name = positional[0].name
        self.kw_names = frozenset(p.name for p in rest if p.kind != P.POSITIONAL_ONLY) | \
            frozenset(p.name for p in params if p.kind == P.KEYWORD_ONLY)
        self.var_kw = any(p.kind == P.VAR_KEYWORD for p in params)


_functions = {}   # handler path -> _Function
_call_load = threading.local()  # load_ns: the current call's time importing its handler
_load_lock = threading.Lock()
_module_seq = [0]


def _search_dirs(folder):
    """Folders put first on sys.path while a handler is imported: its own folder (its helpers
    win), then its installed packages `<folder>/.deps` when present (contract §4.2). Whatever is
    imported from these folders stays per function (see _load)."""
    deps = os.path.join(folder, DEPS_DIR)
    return [folder, deps] if os.path.isdir(deps) else [folder]


def _stamp_path(handler_path):
    return os.path.join(os.path.dirname(handler_path), DEPS_DIR, DEPS_STAMP)


def _stamp_mtime(stamp_path):
    """mtime_ns of a function's dependency stamp, 0 when it has none (checked with access()
    first: most functions have none, and a failed stat costs an exception per call)."""
    if not os.access(stamp_path, os.F_OK):
        return 0
    try:
        return os.stat(stamp_path).st_mtime_ns
    except OSError:
        return 0


class _Folder:
    """The modules private to one function folder, shared by all its handler files (as
    FastFN's daemon shares them: two handlers importing `_shared` see one module). `private`:
    name -> module of everything imported from the folder or its `.deps` (kept out of
    sys.modules, so two folders' same-named helpers never collide); `helpers`: file ->
    (mtime_ns, size) of those from the folder itself, checked on each call: a change drops the
    whole record (`gen` moves on) and every handler of the folder re-imports on its next call."""

    __slots__ = ("dirs", "prefixes", "private", "helpers", "gen")

    def __init__(self, folder):
        self.dirs = _search_dirs(folder)
        self.prefixes = tuple(d.rstrip(os.sep) + os.sep for d in self.dirs)
        self.private = {}
        self.helpers = {}
        self.gen = 0

    def reset(self):
        self.dirs = _search_dirs(self.dirs[0])
        self.prefixes = tuple(d.rstrip(os.sep) + os.sep for d in self.dirs)
        self.private = {}
        self.helpers = {}
        self.gen += 1

    def changed(self):
        for f, sig in self.helpers.items():
            try:
                st = os.stat(f)
            except OSError:
                return True
            if (st.st_mtime_ns, st.st_size) != sig:
                return True
        return False

    def adopt(self, skip=None):
        """Moves the modules imported from this folder (or its .deps) out of sys.modules."""
        own = self.prefixes[0]
        for mod_name, mod in list(sys.modules.items()):
            if mod_name == skip or mod_name.startswith("fastfn_fn_"):
                continue
            f = getattr(mod, "__file__", None)
            if f is None:  # namespace package: judge by its search path
                f = next(iter(getattr(mod, "__path__", None) or ()), None)
            if isinstance(f, str) and f.startswith(self.prefixes):
                self.private[mod_name] = sys.modules.pop(mod_name, mod)
                if f.startswith(own) and not f.startswith(self.prefixes[1:] or (os.sep * 2,)):
                    try:
                        st = os.stat(f)
                        self.helpers[f] = (st.st_mtime_ns, st.st_size)
                    except OSError:
                        pass


_folders = {}  # folder path -> _Folder
_LOADING = contextvars.ContextVar("fastfn_loading", default=None)  # _Folder being imported


class _EnvOverlay(MutableMapping):
    """os.environ during calls: the call's env (gateway env + fn.env.json, FastFN's runtime
    contract) over the process environment, for this call only (a context variable: threads
    and coroutines of other calls never see it). Writes go to the process environment. Child
    processes started with the default env get the process environment only."""

    def __init__(self, real):
        self._real = real

    @staticmethod
    def _over():
        cap = _CAPTURE.get()
        return cap[3] if cap is not None and len(cap) > 3 else None

    def __getitem__(self, key):
        over = self._over()
        if over is not None and key in over:
            value = over[key]
            return value if isinstance(value, str) else json.dumps(value)
        return self._real[key]

    def __setitem__(self, key, value):
        self._real[key] = value

    def __delitem__(self, key):
        del self._real[key]

    def __iter__(self):
        over = self._over()
        if over is None:
            return iter(self._real)
        return iter(dict.fromkeys(list(self._real) + list(over)))

    def __len__(self):
        return sum(1 for _ in self)

    def copy(self):
        return dict(self)

    def __getattr__(self, name):  # encodekey, putenv hooks, ... of the real os._Environ
        return getattr(self._real, name)


class _Existing:
    """Loader of a module already in a folder's `private`: hands it back unchanged."""

    def __init__(self, module):
        self.module = module
        self.spec = getattr(module, "__spec__", None)

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the import system set ours; keep the real one


class _FolderFinder:
    """First on sys.meta_path: while a handler is imported or called, names resolve in its
    folder's private modules, then its folder and `.deps` (contract §4.2) — also for imports
    done inside handler(), long after the handler file was imported."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        folder = _LOADING.get()
        if folder is None:
            cap = _CAPTURE.get()
            if cap is None or len(cap) < 3:
                return None
            folder = cap[2]
        mod = folder.private.get(name)
        if mod is not None:
            return importlib.util.spec_from_loader(name, _Existing(mod))
        if path is not None:
            return None  # a submodule: its package's __path__ knows where
        return importlib.machinery.PathFinder.find_spec(name, folder.dirs)


def _load(path, sig):
    dirname = os.path.dirname(path)
    folder = _folders.get(dirname)
    if folder is None:
        folder = _folders[dirname] = _Folder(dirname)
    fn = _Function(path, sig, folder)
    _module_seq[0] += 1
    name = "fastfn_fn_%d_%s" % (_module_seq[0],
                                "".join(c if c.isalnum() else "_" for c in
                                        os.path.relpath(path, ROOT))[:80])
    # The folders also go on sys.path while importing, for code that searches it (package
    # metadata, pkgutil); imports themselves are resolved by _FolderFinder.
    sys.path[0:0] = folder.dirs
    importlib.invalidate_caches()
    token = _LOADING.set(folder)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        fn.module = module
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit, ... at import time
        sys.modules.pop(name, None)
        fn.error = "failed to load handler: %s: %s" % (type(exc).__name__, exc)
        fn.trace = traceback.format_exc()
    finally:
        _LOADING.reset(token)
        for d in folder.dirs:
            try:
                sys.path.remove(d)
            except ValueError:
                pass
        folder.adopt(skip=name)
    return fn


def _function(path):
    """The loaded function for `path`, re-imported when the file, a private helper of its
    folder or its dependencies changed. None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    fn = _functions.get(path)
    stamp = _stamp_mtime(fn.stamp_path if fn is not None else _stamp_path(path))
    sig = (st.st_mtime_ns, st.st_size, stamp)
    if fn is not None and fn.sig == sig and fn.gen == fn.folder.gen:
        if not fn.folder.helpers or not fn.folder.changed():
            return fn
    with _load_lock:
        fn = _functions.get(path)
        if fn is not None and fn.sig == sig and fn.gen == fn.folder.gen:
            if not fn.folder.changed():
                return fn
        old = fn
        if old is not None and (old.sig != sig or old.folder.changed()) \
                and old.gen == old.folder.gen:
            old.folder.reset()  # the folder's modules start afresh for all its handlers
        loading = time.perf_counter_ns()
        fn = _load(path, sig)
        # A cold call: its import is reported apart from the handler (`load_us`).
        _call_load.load_ns = getattr(_call_load, "load_ns", 0) + time.perf_counter_ns() - loading
        _functions[path] = fn
        if old is not None and old.module is not None:
            sys.modules.pop(old.module.__name__, None)
    return fn


# ---------------------------------------------------------------- resolution

def _inside(rel):
    """Absolute real path of root-relative `rel`, or None when it is unsafe or leaves the root."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return None
    rel = rel.replace("\\", "/")
    if rel.startswith("/"):
        return None
    for part in rel.split("/"):
        if part == "..":
            return None
    full = os.path.realpath(os.path.join(ROOT, rel))
    if full == ROOT or full.startswith(ROOT_PREFIX):
        return full
    return None


def _entry_in(folder, version):
    if version not in (None, "", "default"):
        if not isinstance(version, str) or "/" in version or "\\" in version or \
                version in (".", ".."):
            return None
        folder = os.path.join(folder, version)
    for name in ENTRY_FILES:
        p = os.path.realpath(os.path.join(folder, name))
        if (p.startswith(ROOT_PREFIX)) and os.path.isfile(p):
            return p
    return None


def _resolve(req):
    entry = req.get("entry")
    if entry:
        p = _inside(entry)
        return p if p and p.endswith(".py") and os.path.isfile(p) else None
    version = req.get("version")
    name = req.get("fn")
    p = _inside(name)
    if p and p.endswith(".py") and os.path.isfile(p):
        return p
    src = req.get("fn_source_dir")
    if src:
        d = _inside(src)
        return _entry_in(d, version) if d and os.path.isdir(d) else None
    if p and os.path.isdir(p):
        return _entry_in(p, version)
    return None


_resolved = {}  # (entry, fn, fn_source_dir, version) -> handler path


# ---------------------------------------------------------------- env

_env_cache = {}  # fn.env.json path -> (sig, dict)
_exists = os.access


def _file_env(path):
    if not _exists(path, os.F_OK):  # cheaper than a failing stat in the common case
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    sig = (st.st_mtime_ns, st.st_size)
    hit = _env_cache.get(path)
    if hit is not None and hit[0] == sig:
        return hit[1]
    with open(path, "rb") as f:
        raw = _loads(f.read() or b"{}")
    if not isinstance(raw, dict):
        raise ValueError("fn.env.json must hold an object")
    env = {}
    for k, v in raw.items():
        if k.startswith(HIDDEN_ENV_PREFIXES):
            continue
        if isinstance(v, dict):
            v = v.get("value")
        if v is None:
            continue
        env[k] = v if isinstance(v, str) else (_encode_body(v) if isinstance(v, (list, dict))
                                               else str(v).lower() if isinstance(v, bool)
                                               else str(v))
    _env_cache[path] = (sig, env)
    return env


# ---------------------------------------------------------------- async

_loop = None
_loop_thread = 0  # ident of the event loop's thread (see _reclaim)
_loop_lock = threading.Lock()


def _event_loop():
    global _loop, _loop_thread
    if _loop is None:
        with _loop_lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="fastfn-asyncio", daemon=True)
                t.start()
                _loop_thread = t.ident
                _loop = loop
    return _loop


async def _captured(awaitable, cap, rec):
    _CAPTURE.set(cap)
    if rec is not None:
        rec[3] = asyncio.current_task()  # what _reclaim cancels
    return await awaitable


# ---------------------------------------------------------------- strict sandbox (strict_fs)
#
# A call whose request has `"strict_fs": true` runs with a policy in its capture (cap[8]): an
# audit hook (PEP 578, installed on the first strict call, never removable) refuses, with a
# PermissionError, every audited file operation of that call outside its function folder, the
# FN_STRICT_FS_ALLOW paths, /tmp and the interpreter's own paths (read only), any access to a
# protected platform file (fn.config.json, fn.env.json, fn.test_events.json), and every process
# spawn (subprocess, os.system, os.exec*, os.spawn*, os.posix_spawn, os.fork) and ctypes load.
# The policy follows the call's context (its thread, and its coroutine on the event loop); a
# thread the handler starts itself does not inherit it (docs/compat.md says what is not
# enforced). Other calls and the daemon's own code see no policy: the hook returns at once.

_PROTECTED_FILES = frozenset(("fn.config.json", "fn.env.json", "fn.test_events.json"))
_SPAWN_EVENTS = frozenset(("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
                           "os.fork", "os.forkpty", "pty.spawn", "ctypes.dlopen", "os.startfile"))
# Audit events whose first argument is a path the call reads (r) or changes (w).
_PATH_EVENTS = {"open": None, "os.listdir": "r", "os.scandir": "r", "os.chdir": "r",
                "os.remove": "w", "os.rmdir": "w", "os.mkdir": "w", "os.truncate": "w",
                "os.chmod": "w", "os.chown": "w", "os.utime": "w", "os.rename": "w",
                "os.symlink": "w", "os.link": "w", "shutil.rmtree": "w"}
_sandbox_hook_on = False
_SYSTEM_READ = ()  # interpreter paths, set when the hook is installed


def _sandbox_roots(extra):
    out = []
    for part in (extra or "").replace(":", ",").split(","):
        part = part.strip()
        if part and os.path.isabs(part):
            out.append(os.path.realpath(part).rstrip(os.sep) + os.sep)
    return tuple(out)


_ALLOW_ROOTS = None  # FN_STRICT_FS_ALLOW, read on the first strict call


_POLICIES = {}  # folder -> policy: realpath() per call was a third of a trivial call's time


def _sandbox_policy(folder):
    """(function folder prefix, read roots, write roots) for a strict call of `folder`.
    Kept per folder: a folder later swapped for a symlink keeps its old (real) prefix, which
    only narrows what the call may touch."""
    policy = _POLICIES.get(folder)
    if policy is not None:
        return policy
    global _ALLOW_ROOTS
    if _ALLOW_ROOTS is None:
        _ALLOW_ROOTS = _sandbox_roots(os.environ.get("FN_STRICT_FS_ALLOW", ""))
    _install_sandbox_hook()
    own = os.path.realpath(folder).rstrip(os.sep) + os.sep
    writable = (own, "/tmp/") + _ALLOW_ROOTS
    policy = (own, writable + _SYSTEM_READ, writable)
    if len(_POLICIES) > 4096:
        _POLICIES.clear()
    _POLICIES[folder] = policy
    return policy


def _install_sandbox_hook():
    global _sandbox_hook_on, _SYSTEM_READ
    if _sandbox_hook_on:
        return
    with _load_lock:
        if _sandbox_hook_on:
            return
        root = os.path.realpath(_root()).rstrip(os.sep) + os.sep
        read = ["/etc/ssl/", "/etc/pki/", "/usr/share/zoneinfo/", "/dev/null/", "/dev/urandom/",
                # Shared packs: linked into the .deps of the functions that name them.
                os.path.join(root, ".fastfn", "packs") + os.sep]
        for entry in sys.path:
            if entry and os.path.isabs(entry):
                real = os.path.realpath(entry).rstrip(os.sep) + os.sep
                # The functions root is never an interpreter path: other functions live there.
                if not real.startswith(root) and not root.startswith(real):
                    read.append(real)
        _SYSTEM_READ = tuple(read)
        sys.addaudithook(_sandbox_hook)
        _sandbox_hook_on = True


_LOAD_SANDBOX = contextvars.ContextVar("fastfn_sandbox_loading", default=None)


def _function_for(path, req):
    """_function(path); for a strict call, a first import (the module's top-level code) runs
    under the call's sandbox too."""
    if req.get("strict_fs") is not True:
        return _function(path)
    token = _LOAD_SANDBOX.set(_sandbox_policy(os.path.dirname(path)))
    try:
        return _function(path)
    finally:
        _LOAD_SANDBOX.reset(token)


def _sandbox_hook(event, args):
    cap = _CAPTURE.get()
    policy = cap[8] if cap is not None and len(cap) > 8 else None
    if policy is None:
        policy = _LOAD_SANDBOX.get()
        if policy is None:
            return
    if event in _SPAWN_EVENTS:
        raise PermissionError("strict sandbox: %s is not allowed" % (event,))
    kind = _PATH_EVENTS.get(event, 0)
    if kind == 0 or not args:
        return
    if event == "open":
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else 0
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
        kind = "w" if writing else "r"
    paths = args[:2] if event in ("os.rename", "os.symlink", "os.link") else args[:1]
    for target in paths:
        if target is None and event in ("os.listdir", "os.scandir"):
            target = "."  # listdir() lists the current folder
        if isinstance(target, int) or target is None:
            continue  # an open file descriptor: checked when it was opened
        try:
            path = os.fsdecode(os.fspath(target))
        except TypeError:
            continue
        real = os.path.realpath(path)
        if os.path.basename(real) in _PROTECTED_FILES or os.path.basename(path) in _PROTECTED_FILES:
            raise PermissionError("strict sandbox: %s is a protected platform file" % (path,))
        probe = real.rstrip(os.sep) + os.sep
        roots = policy[2] if kind == "w" else policy[1]
        if not probe.startswith(roots):
            raise PermissionError("strict sandbox: %s is outside the function folder" % (path,))


# ---------------------------------------------------------------- adapters (invoke.adapter)
#
# Only looked at when a request's `adapter` is not `native`; the native path never enters here.

ADAPTERS = {"aws-lambda": "aws-lambda", "lambda": "aws-lambda", "apigw-v2": "aws-lambda",
            "api-gateway-v2": "aws-lambda", "cloudflare-worker": "cloudflare-worker",
            "worker": "cloudflare-worker", "workers": "cloudflare-worker"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPE = None  # compiled on first use (re is not needed on the native path)


def _now_ms():
    return int(time.time() * 1000)


def _ts_of(event):
    ts = event.get("ts")
    return ts if type(ts) is int and ts > 0 else _now_ms()


def _header_text(name, value):
    """One header value as text: repeated values joined (`; ` for cookie, else `, `)."""
    if isinstance(value, list):
        return ("; " if name == "cookie" else ", ").join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _lambda_event(event):
    """API Gateway HTTP API (payload format 2.0) event from a FastFN event."""
    headers = {}
    cookies = []
    raw_headers = event.get("headers")
    if isinstance(raw_headers, dict):
        for k, v in raw_headers.items():
            k = str(k).lower()
            values = v if isinstance(v, list) else [v]
            if k == "cookie":
                cookies.extend(c.strip() for x in values for c in str(x).split(";") if c.strip())
                continue
            headers[k] = ",".join(str(x) for x in values)
    path = event.get("path") if isinstance(event.get("path"), str) else "/"
    raw_path = event.get("raw_path") if isinstance(event.get("raw_path"), str) else path
    raw_query = raw_path.split("?", 1)[1] if "?" in raw_path else ""
    query = {}
    if isinstance(event.get("query"), dict):
        for k, v in event["query"].items():
            values = v if isinstance(v, list) else [v]
            query[k] = ",".join("" if x is True else str(x) for x in values)
    params = event.get("params")
    ts = _ts_of(event)
    t = time.gmtime(ts // 1000)
    client = event.get("client") if isinstance(event.get("client"), dict) else {}
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    method = event.get("method") if isinstance(event.get("method"), str) else "GET"
    host = headers.get("host", "localhost")
    request_id = context.get("request_id") or event.get("id") or ""
    out = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "fastfn",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": client.get("ip") or "",
                     "userAgent": client.get("ua") or headers.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "%02d/%s/%d:%02d:%02d:%02d +0000" % (
                t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec),
            "timeEpoch": ts,
        },
        "isBase64Encoded": False,
    }
    if cookies:
        out["cookies"] = cookies
    if query:
        out["queryStringParameters"] = query
    if isinstance(params, dict) and params:
        out["pathParameters"] = {k: v if isinstance(v, str) else str(v) for k, v in params.items()}
    if isinstance(event.get("body_base64"), str):
        out["body"] = event["body_base64"]
        out["isBase64Encoded"] = True
    elif isinstance(event.get("body"), str):
        out["body"] = event["body"]
    return out


class LambdaContext:
    """The Lambda context object (Python names, as AWS passes them)."""

    def __init__(self, event, deadline_ms):
        context = event.get("context") if isinstance(event.get("context"), dict) else {}
        name = str(context.get("function_name") or "")
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:local:000000000000:function:" + name
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(context.get("request_id") or event.get("id") or "")
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "fastfn"
        self.identity = None
        self.client_context = None
        self.env = event.get("env")  # FastFN extra: fn.env.json (os.environ is the daemon's)
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - _now_ms())


def _lambda_reply(res):
    """Lambda HTTP API v2 reply rules: a dict with `statusCode` is a structured response, any
    other dict (or list) is JSON 200; other values follow the native shorthand rules."""
    if not isinstance(res, dict):
        return _to_reply(res) if not isinstance(res, list) else \
            {"status": 200, "headers": {"Content-Type": _JSON_CT}, "body": _encode_body(res)}
    if "statusCode" not in res:
        return {"status": 200, "headers": {"Content-Type": _JSON_CT}, "body": _encode_body(res)}
    headers = {}
    multi = res.get("multiValueHeaders")
    if multi is not None:
        headers = _clean_headers(multi)
    for k, v in _clean_headers(res.get("headers")).items():
        for old in [o for o in headers if o.lower() == k.lower()]:
            del headers[old]
        headers[k] = v
    cookies = res.get("cookies")
    if cookies:
        if not isinstance(cookies, (list, tuple)):
            raise _HandlerError("handler returned invalid cookies (not a list)")
        key, values = "Set-Cookie", []
        for k in list(headers):
            if k.lower() == "set-cookie":
                v = headers.pop(k)
                key = k
                values.extend(v if isinstance(v, list) else [v])
        headers[key] = values + [c if isinstance(c, str) else str(c) for c in cookies]
    reply = {"status": _status(res["statusCode"]), "headers": headers}
    body = res.get("body")
    if res.get("isBase64Encoded"):
        if isinstance(body, (bytes, bytearray, memoryview)):
            body = bytes(body).decode("ascii")
        if body is not None and not isinstance(body, str):
            raise _HandlerError("handler returned a base64 body that is not a string")
        reply["is_base64"] = True
        reply["body_base64"] = body or ""
        return reply
    return _with_body(reply, body, headers, False)


class Headers(Mapping):
    """Case-insensitive, multi-valued headers (a small WHATWG `Headers`). Names are kept
    lower-case; `h[name]` and `h.get(name)` give the values joined with `, ` (`; ` for cookie);
    `get_all(name)` gives the list."""

    def __init__(self, init=None):
        self._items = {}
        if init is None:
            return
        if isinstance(init, Headers):
            self._items = {k: list(v) for k, v in init._items.items()}
            return
        pairs = init.items() if isinstance(init, Mapping) else init
        for k, v in pairs:
            if v is None:
                continue
            for x in (v if isinstance(v, (list, tuple)) else [v]):
                self.append(k, x)

    def __getitem__(self, name):
        if not isinstance(name, str):
            raise KeyError(name)
        name = name.lower()
        return _header_text(name, self._items[name])

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return "Headers(%r)" % (self._items,)

    def get_all(self, name):
        return list(self._items.get(name.lower(), ()))

    def has(self, name):
        return name.lower() in self._items

    def append(self, name, value):
        self._items.setdefault(str(name).lower(), []).append(
            value if isinstance(value, str) else str(value))

    def set(self, name, value):
        self._items[str(name).lower()] = [value if isinstance(value, str) else str(value)]

    def delete(self, name):
        self._items.pop(name.lower(), None)

    __setitem__ = set
    __delitem__ = delete


class Request:
    """The request a worker's `fetch` gets: `method`, `url` (`http://<host><raw_path>`),
    `headers` (Headers), `body` (bytes, b"" when none), `text()`, `json()` (synchronous)."""

    def __init__(self, url, method="GET", headers=None, body=b""):
        self.url = url
        self.method = method
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = bytes(body) if body else b""

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return _loads(self.body)

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.url)


class Response:
    """What a worker's `fetch` returns: `Response(body=None, status=200, headers=None)`.
    body: str (gets `text/plain;charset=UTF-8` unless a content-type is given), bytes, None, or
    a dict/list (JSON, `application/json`). headers: a dict (list values repeat a header), a list
    of (name, value) pairs, or Headers. `Response.json(data, status, headers)` and
    `Response.redirect(url, status=302)` as in Workers."""

    def __init__(self, body=None, status=200, headers=None, status_text=""):
        self.status = status
        self.status_text = status_text
        self.headers = Headers(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
            if not self.headers.has("content-type"):
                self.headers.set("content-type", "text/plain;charset=UTF-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            body = bytes(body)
        elif body is not None:
            body = _encode_body(body).encode("utf-8")
            if not self.headers.has("content-type"):
                self.headers.set("content-type", _JSON_CT)
        self.body = body

    @classmethod
    def json(cls, data, status=200, headers=None):
        h = Headers(headers)
        if not h.has("content-type"):
            h.set("content-type", _JSON_CT)
        return cls(_encode_body(data), status, h)

    @classmethod
    def redirect(cls, url, status=302):
        return cls(None, status, {"location": url})

    def text(self):
        return (self.body or b"").decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %s>" % (self.status,)


def _worker_reply(res):
    """A Response → reply; anything else follows the native shorthand rules."""
    global _TEXT_TYPE
    if not isinstance(res, Response):
        return _to_reply(res)
    headers = {}
    for k, values in res.headers._items.items():
        headers[k] = list(values) if k == "set-cookie" and len(values) > 1 else \
            _header_text(k, values)
    reply = {"status": _status(res.status), "headers": headers}
    body = res.body or b""
    ctype = headers.get("content-type")
    if _TEXT_TYPE is None:
        import re
        _TEXT_TYPE = re.compile(r"^(text/|application/(json|javascript|xml|x-www-form-urlencoded)"
                                r"|[^;]*\+(json|xml))", re.I)
    if ctype is None or _TEXT_TYPE.match(ctype):
        try:
            reply["body"] = body.decode("utf-8")
            return reply
        except UnicodeDecodeError:
            pass
    reply["is_base64"] = True
    reply["body_base64"] = base64.b64encode(body).decode("ascii")
    return reply


def _worker_request(event):
    headers = Headers()
    raw_headers = event.get("headers")
    if isinstance(raw_headers, dict):
        for k, v in raw_headers.items():
            for x in (v if isinstance(v, list) else [v]):
                headers.append(k, x)
    host = headers.get("host") or "localhost"
    raw_path = event.get("raw_path") or event.get("path") or "/"
    method = event.get("method") if isinstance(event.get("method"), str) else "GET"
    b64 = event.get("body_base64")
    if isinstance(b64, str):
        body = base64.b64decode(b64)
    else:
        body = event.get("body")
        body = body.encode("utf-8") if isinstance(body, str) else b""
    return Request("http://%s%s" % (host, raw_path), method, headers, body)


async def _background(awaitable):
    """A `ctx.waitUntil` task: runs after the reply; its output goes to the daemon's streams."""
    _CAPTURE.set(None)
    try:
        await awaitable
    except BaseException:  # noqa: a background task must not take the loop down
        sys.stderr.write(traceback.format_exc())


class ExecutionContext:
    """A worker's `ctx`: `waitUntil(awaitable)` schedules it on the daemon's event loop and does
    not delay the reply (anything not awaitable is ignored); `passThroughOnException()` does
    nothing. FastFN extra: `params` (the route's path parameters)."""

    def __init__(self, params):
        self.params = params

    def waitUntil(self, awaitable):
        if inspect.isawaitable(awaitable):
            asyncio.run_coroutine_threadsafe(_background(awaitable), _event_loop())

    wait_until = waitUntil

    def passThroughOnException(self):
        pass

    pass_through_on_exception = passThroughOnException


class _AdapterCallable:
    """A callable called with as many of its adapter's positional arguments as it takes."""
    __slots__ = ("func", "is_async", "nargs")

    def __init__(self, func, most):
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)
        self.nargs = most
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            return
        P = inspect.Parameter
        if not any(p.kind == P.VAR_POSITIONAL for p in params):
            self.nargs = min(most, sum(1 for p in params
                                       if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)))


_WORKER_GLOBALS = (("Request", Request), ("Response", Response), ("Headers", Headers))


def _register_worker_module():
    """`from fastfn_worker import Response, Request, Headers` works in handlers."""
    import types
    mod = types.ModuleType("fastfn_worker", "FastFN cloudflare-worker adapter classes.")
    for attr, value in _WORKER_GLOBALS + (("ExecutionContext", ExecutionContext),):
        setattr(mod, attr, value)
    sys.modules["fastfn_worker"] = mod


def _adapter_target(fn, kind, name):
    key = (kind, name)
    target = fn.callables.get(key)
    if target is not None:
        return target
    if kind == "aws-lambda":
        names = (name, "main", "lambda_handler")
    else:
        names = ("fetch", "on_fetch") if name == "handler" else (name,)
        for attr, value in _WORKER_GLOBALS:  # like the Workers globals, unless the module has its own
            if not hasattr(fn.module, attr):
                setattr(fn.module, attr, value)
    for n in names:
        obj = getattr(fn.module, n, None) if isinstance(n, str) else None
        if callable(obj):
            target = fn.callables[key] = _AdapterCallable(obj, 2 if kind == "aws-lambda" else 3)
            return target
    if kind == "aws-lambda":
        raise _HandlerError("handler %r not found" % (name,))
    raise _HandlerError("worker function %s(request, env, ctx) not found" % (names[0],))


def _dispatch_adapter(kind, req, fn, event):
    try:
        target = _adapter_target(fn, kind, req.get("handler") or "handler")
    except _HandlerError as exc:
        return _error(500, str(exc))
    failed = _with_env(fn, event, req)
    if failed is not None:
        return failed
    cap = [[], [], fn.folder, event["env"] or None, 0, 0, 0, 0,
           _sandbox_policy(fn.folder.dirs[0]) if req.get("strict_fs") is True else None]
    n_modules = len(sys.modules)
    _CAPTURE.set(cap)
    try:
        if kind == "aws-lambda":
            context = event.get("context") if isinstance(event.get("context"), dict) else {}
            timeout = context.get("timeout_ms")
            deadline = _ts_of(event) + (timeout if type(timeout) is int else 2500)
            args = (_lambda_event(event), LambdaContext(event, deadline))
            convert = _lambda_reply
        else:
            params = event.get("params") if isinstance(event.get("params"), dict) else {}
            args = (_worker_request(event), event["env"], ExecutionContext(params))
            convert = _worker_reply
        res = target.func(*args[:target.nargs])
        if target.is_async or inspect.isawaitable(res):
            res = asyncio.run_coroutine_threadsafe(
                _captured(res, cap, _running.get(threading.get_ident())), _event_loop()).result()
        reply = convert(res)
    except _HandlerError as exc:
        reply = _error(500, str(exc))
    except BaseException as exc:
        cap[1].append(traceback.format_exc())
        reply = _error(500, "%s: %s" % (type(exc).__name__, exc))
    finally:
        _CAPTURE.set(None)
        if len(sys.modules) != n_modules:
            fn.folder.adopt()  # modules the call imported from its folder stay private
    if cap[0]:
        reply["stdout"] = _output(cap, 0)
    if cap[1]:
        reply["stderr"] = (reply.get("stderr") or "") + _output(cap, 1)
    return reply


# ---------------------------------------------------------------- dispatch

def _with_env(fn, event, req):
    """Sets `event.env` (gateway env + fn.env.json) and `event.version`; an error reply or None."""
    try:
        file_env = _file_env(fn.env_path)
    except (OSError, ValueError) as exc:
        return _error(500, "invalid fn.env.json: %s" % (exc,))
    env = event.get("env")
    if type(env) is dict:
        env = {k: v for k, v in env.items() if not k.startswith(HIDDEN_ENV_PREFIXES)}
        if file_env:
            env.update(file_env)
    else:
        env = dict(file_env) if file_env else {}
    event["env"] = env
    event["version"] = req.get("version") or "default"
    return None


# ---------------------------------------------------------------- runaway calls
#
# A thread cannot be killed, but the interpreter can raise an exception in it between two
# bytecodes (PyThreadState_SetAsyncExc): that ends `while True: pass` handlers. Each started
# call is registered with its deadline (receipt + event.context.timeout_ms; none without it);
# the watchdog interrupts calls past their deadline and calls the engine cancelled (v2 cancel
# of a started call). An async call's task is cancelled instead; when the event loop thread
# itself keeps burning CPU (a busy coroutine never yields), the interruption goes there. A call
# that keeps burning CPU through RECLAIM_EXIT_TRIES interruptions (a loop in C code, or a
# handler swallowing the exception) makes the daemon exit: the engine restarts it, which is the
# only way to get that CPU back. A call sleeping past its deadline costs no CPU and is left to
# finish.

class _Reclaimed(Exception):
    """Raised inside a handler whose call timed out or was cancelled."""

    def __str__(self):
        return "call stopped (timed out or cancelled)"


_running = {}   # thread ident -> [deadline, conn, cid, asyncio task, tries, cpu]
_running_lock = threading.Lock()  # an interruption never lands after its call ended


def _begin(req, conn=None, cid=0):
    event = req.get("event")
    ctx = event.get("context") if type(event) is dict else None
    timeout = ctx.get("timeout_ms") if type(ctx) is dict else None
    deadline = (time.monotonic() + timeout / 1000.0 + RECLAIM_GRACE
                if type(timeout) is int and timeout > 0 else float("inf"))
    _running[threading.get_ident()] = [deadline, conn, cid, None, 0, 0.0]


def _end():
    with _running_lock:
        _running.pop(threading.get_ident(), None)


def _cancel_started(conn, cid):
    for rec in list(_running.values()):
        if rec[1] is conn and rec[2] == cid:
            rec[0] = 0.0


def _thread_cpu(tid):
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(tid))
    except (OSError, AttributeError, OverflowError):
        return 0.0


def _interrupt(target, tid, rec):
    """Raises _Reclaimed in thread `target`, if call `rec` (of thread `tid`) still runs."""
    import ctypes
    with _running_lock:
        if _running.get(tid) is rec:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target),
                                                       ctypes.py_object(_Reclaimed))


def _reclaim(now):
    """Watchdog: interrupts the calls past their deadline (see above)."""
    for tid, rec in list(_running.items()):
        if now < rec[0] or _running.get(tid) is not rec:
            continue
        task = rec[3]
        target = _loop_thread if task is not None else tid
        cpu = _thread_cpu(target) if target else 0.0
        busy = cpu - rec[5] > RECLAIM_RETRY * 0.5
        if rec[4] == 0:
            if task is not None:
                # A coroutine awaiting something is cancelled on the loop; the calling thread
                # waits on until the task really ended (a busy one is interrupted below).
                _loop.call_soon_threadsafe(task.cancel)
            else:
                _interrupt(tid, tid, rec)
        elif busy:
            if rec[4] >= RECLAIM_EXIT_TRIES:
                os.write(2, b"fastfn python daemon: a timed-out call keeps running; exiting so "
                            b"the engine restarts the daemon\n")
                os._exit(70)
            if target:
                _interrupt(target, tid, rec)
        else:
            rec[0] = now + 1.0  # sleeping in C (time.sleep, a socket): no CPU lost, look later
            continue
        rec[4] += 1
        rec[5] = cpu
        rec[0] = now + RECLAIM_RETRY


def _dispatch(req):
    adapter = req.get("adapter")
    if adapter and adapter != "native":
        adapter = ADAPTERS.get(adapter) if isinstance(adapter, str) else None
        if adapter is None:
            return _error(500, "unknown adapter: %s (want native, aws-lambda or cloudflare-worker)"
                          % (req.get("adapter"),))
    else:
        adapter = None
    event = req.get("event")
    if event is None:
        event = {}
    elif type(event) is not dict:
        return _error(400, "invalid json request")
    key = (req.get("entry"), req.get("fn"), req.get("fn_source_dir"), req.get("version"))
    try:
        path = _resolved.get(key)
        fn = _function_for(path, req) if path else None
        if fn is None:
            _resolved.pop(key, None)
            path = _resolve(req)
            if path is None:
                return _error(404, "unknown function")
            fn = _function_for(path, req)
            if fn is None:
                return _error(404, "unknown function")
            if len(_resolved) > 10000:
                _resolved.clear()
            _resolved[key] = path
    except (TypeError, ValueError, OSError):
        return _error(404, "unknown function")
    if fn.error is not None:
        return _error(500, fn.error, fn.trace)
    if adapter is not None:
        return _dispatch_adapter(adapter, req, fn, event)

    name = req.get("handler") or "handler"
    target = fn.callables.get(name)
    if target is None:
        obj = getattr(fn.module, name, None) if isinstance(name, str) else None
        if not callable(obj):
            obj = getattr(fn.module, "main", None)
        if not callable(obj):
            return _error(500, "handler %r not found" % (name,))
        target = fn.callables[name] = _Callable(obj)

    failed = _with_env(fn, event, req)
    if failed is not None:
        return failed

    # A call's scope: its output buffers, its folder (imports, _FolderFinder), its env (os.environ).
    cap = [[], [], fn.folder, event["env"] or None, 0, 0, 0, 0,
           _sandbox_policy(fn.folder.dirs[0]) if req.get("strict_fs") is True else None]
    n_modules = len(sys.modules)
    _CAPTURE.set(cap)
    try:
        if not target.takes_event:
            args = ()
        else:
            args = (event,)
        kwargs = None
        if target.var_kw or target.kw_names:
            params = event.get("params")
            if type(params) is dict and params:
                if target.var_kw:
                    kwargs = {k: v for k, v in params.items()
                              if k != target.event_name and isinstance(k, str)}
                else:
                    kwargs = {k: v for k, v in params.items() if k in target.kw_names}
        res = target.func(*args, **kwargs) if kwargs else target.func(*args)
        if target.is_async or (type(res) not in _PLAIN and inspect.isawaitable(res)):
            res = asyncio.run_coroutine_threadsafe(
                _captured(res, cap, _running.get(threading.get_ident())), _event_loop()).result()
        reply = _to_reply(res)
    except _HandlerError as exc:
        reply = _error(500, str(exc))
    except BaseException as exc:  # SystemExit from a handler is a failed call too
        cap[1].append(traceback.format_exc())
        reply = _error(500, "%s: %s" % (type(exc).__name__, exc))
    finally:
        _CAPTURE.set(None)
        if len(sys.modules) != n_modules:
            fn.folder.adopt()  # modules the call imported from its folder stay private
    if cap[0]:
        reply["stdout"] = _output(cap, 0)
    if cap[1]:
        reply["stderr"] = (reply.get("stderr") or "") + _output(cap, 1)
    return reply


_PLAIN = frozenset((dict, str, tuple, list, bytes, type(None), int))
_LENGTH_ERROR = None  # prebuilt reply frames, set in main()
_JSON_ERROR = None


def _frame(reply):
    try:
        raw = _encode_frame(reply).encode()
    except (TypeError, ValueError) as exc:
        raw = _encode_frame(_error(500, "handler returned a value that cannot be encoded: %s"
                                   % (exc,))).encode()
    if len(raw) > MAX_REPLY_BYTES:
        raw = _encode_frame(_error(500, "response too large")).encode()
    return len(raw).to_bytes(4, "big") + raw


def _send(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _serve(fd):
    """Serves a connection's first frame as a v1 call. Returns None when done (the caller closes
    fd), or, when that frame was a v2 hello, the bytes read past it (the connection is kept)."""
    read = os.read
    data = read(fd, 65536)
    if not data:
        return None
    while len(data) < 4:
        more = read(fd, 65536)
        if not more:
            _send(fd, _LENGTH_ERROR)
            return None
        data += more
    n = int.from_bytes(data[:4], "big")
    if n == 0 or n > MAX_FRAME:
        _send(fd, _LENGTH_ERROR)
        return None
    total = n + 4
    if len(data) < total:
        buf = bytearray(data)
        while len(buf) < total:
            more = read(fd, min(total - len(buf), 1 << 20))
            if not more:
                _send(fd, _LENGTH_ERROR)
                return None
            buf += more
        data = buf
    try:
        req = _loads(data[4:total])
    except ValueError:  # also invalid UTF-8
        _send(fd, _JSON_ERROR)
        return None
    if type(req) is not dict:
        _send(fd, _JSON_ERROR)
        return None
    if req.get("fastfn_hello") == 2:
        return bytes(data[total:])
    _begin(req)
    try:
        reply = _dispatch(req)
    except Exception:
        reply = _error(500, "internal daemon error", traceback.format_exc())
    finally:
        _end()
    _send(fd, _frame(reply))
    return None


# ---------------------------------------------------------------- protocol v2

# After a hello a connection carries frames `u32 len | u32 id | u8 kind | u32 meta_len | meta
# JSON | raw body` both ways (docs/protocol.md). Calls of one connection run concurrently (see
# _Pool); each reply frame is written whole under the connection's write lock.

_CALL, _REPLY, _CANCEL = 1, 2, 3
_V2_HEAD = struct.Struct(">IIBI")
_TOO_LARGE = None  # reply meta, set in main()
_HELLO = None      # hello answer frame (v1), set in main()


class _Conn:
    """A v2 connection. `buf`, `skip` and `queued` belong to the leader thread (it alone reads
    and parses); replies are written by whichever thread served the call, under `wlock`."""
    __slots__ = ("sock", "fd", "buf", "skip", "queued", "wlock", "closed")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.skip = 0        # bytes of an over-limit call still to discard
        self.queued = {}     # id -> job, parsed but not started (a cancel drops it)
        self.wlock = threading.Lock()
        self.closed = False

    def send(self, data):
        with self.wlock:
            if self.closed:
                return
            try:
                _send(self.fd, data)
            except OSError:
                pass  # the peer went away: the leader sees EOF and closes

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a writer blocked on a full buffer
        except OSError:
            pass
        with self.wlock:
            self.closed = True
            self.sock.close()


def _feed(conn, data, ready):
    """Adds bytes read from a v2 connection; complete calls go to `ready` as jobs
    [conn, id, request, body]. Returns False on a protocol error (the caller closes)."""
    if conn.skip:
        n = min(conn.skip, len(data))
        conn.skip -= n
        data = data[n:]
    buf = conn.buf
    buf += data
    size = len(buf)
    off = 0
    while size - off >= 4:
        length = int.from_bytes(buf[off:off + 4], "big")
        if length < 9:
            return False
        if size - off < 13:
            break
        _, cid, kind, meta_len = _V2_HEAD.unpack_from(buf, off)
        if meta_len > length - 9 or cid == 0 or (kind != _CALL and kind != _CANCEL):
            return False
        if length > MAX_FRAME:
            # Answer 413 now and discard the frame's bytes as they come (never buffered).
            if kind == _CALL:
                conn.send(_v2_frame(cid, _TOO_LARGE, b""))
            rest = length - 9
            here = min(rest, size - off - 13)
            off += 13 + here
            if here < rest:
                conn.skip = rest - here
                break
            continue
        if size - off < 4 + length:
            break
        start = off + 13
        off += 4 + length
        if kind == _CANCEL:
            # A call not started yet is dropped; a started one is interrupted (_reclaim).
            if conn.queued.pop(cid, None) is None and _running:
                _cancel_started(conn, cid)
            continue
        try:
            req = _loads(buf[start:start + meta_len])
        except ValueError:
            return False
        if type(req) is not dict:
            return False
        job = (conn, cid, req, bytes(buf[start + meta_len:off]))
        conn.queued[cid] = job
        ready.append(job)
    del buf[:off]
    return True


def _v2_frame(cid, meta, body):
    return _V2_HEAD.pack(9 + len(meta) + len(body), cid, _REPLY, len(meta)) + meta + body


def _serve_call(job):
    conn, cid, req, body = job
    if body:
        # The event exactly as v1 gives it: the body as text, plus base64 when not UTF-8.
        event = req.get("event")
        if event is None:
            event = req["event"] = {}
        if type(event) is dict:
            try:
                event["body"] = body.decode("utf-8")
                event.pop("body_base64", None)
            except UnicodeDecodeError:
                event["body"] = body.decode("utf-8", "replace")
                event["body_base64"] = base64.b64encode(body).decode("ascii")
    _begin(req, conn, cid)
    _call_load.load_ns = 0
    started = time.perf_counter_ns()
    try:
        reply = _dispatch(req)
    except Exception:
        reply = _error(500, "internal daemon error", traceback.format_exc())
    finally:
        _end()
    # The call's time in this daemon, for the engine's waterfall (`handler` stage), and the
    # part of it spent importing the handler on a cold call (`cold` stage).
    reply["handler_us"] = (time.perf_counter_ns() - started) // 1000
    if _call_load.load_ns:
        reply["load_us"] = _call_load.load_ns // 1000
    raw = b""
    if reply.get("is_base64") is True and type(reply.get("body_base64")) is str:
        # A binary body goes raw in the frame instead of base64 in meta (invalid base64 from
        # a handler's envelope stays in meta, as v1 sends it).
        try:
            raw = base64.b64decode(reply["body_base64"], validate=True)
            del reply["is_base64"], reply["body_base64"]
        except ValueError:
            raw = b""
    try:
        meta = _encode_frame(reply).encode()
    except (TypeError, ValueError) as exc:
        meta = _encode_frame(_error(500, "handler returned a value that cannot be encoded: %s"
                                    % (exc,))).encode()
        raw = b""
    if len(meta) + len(raw) > MAX_REPLY_BYTES:
        meta = _encode_frame(_error(500, "response too large")).encode()
        raw = b""
    conn.send(_v2_frame(cid, meta, raw))


# ---------------------------------------------------------------- server

_WAKE = object()


class _Pool:
    """Worker threads serving v1 connections and v2 calls (leader/followers).

    Exactly one thread, the leader, waits (selector) on the listener and every v2 connection,
    reads what is ready (a new connection, or complete v2 frames into its connection's buffer),
    appends the work to `ready` and serves it inline, one job after the other, so a fast call
    costs no thread hand-off and no GIL contention. A watchdog notices when the leader has
    spent more than STALL_SECONDS in one job (a sleeping or slow handler) and designates
    another thread (a parked one, or a new one up to MAX_THREADS) as leader; it takes over
    `ready` and the selector, and the replaced thread finishes its job and parks. So a slow
    call pins only its own thread, and the calls behind it (on the same v2 connection too)
    wait at most a watchdog tick. A v1 connection is a job too: its frame is read and served
    inline as before; when that frame is a v2 hello, the connection joins the selector.
    """

    def __init__(self, listener):
        self.listener = listener
        listener.setblocking(False)  # accept() until EAGAIN, then back to the selector
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, None)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, _WAKE)
        self.ready = collections.deque()  # v1 connection fds and v2 call jobs, in order
        self.lock = threading.Lock()
        self.wake = threading.Semaphore(0)
        self.token = 0        # designation of the current leader
        self.seq = 0          # jobs started by the current leader
        self.in_call = False  # the current leader is serving a job
        self.parked = 0
        self.total = 0

    def start(self):
        with self.lock:
            self.total += 1
        threading.Thread(target=self.run, name="fastfn-worker", daemon=True).start()
        threading.Thread(target=self.watch, name="fastfn-watchdog", daemon=True).start()

    def _promote(self):  # caller holds self.lock
        self.token += 1
        self.in_call = False
        if self.parked:
            self.parked -= 1
            self.wake.release()
        else:
            self.total += 1
            threading.Thread(target=self.run, name="fastfn-worker", daemon=True).start()

    def watch(self):
        sleep = time.sleep
        last = -1
        quiet = 0.0
        while True:
            # Tick fast while calls flow, slowly when idle (a desktop daemon should sleep).
            sleep(STALL_SECONDS if quiet < 1.0 else IDLE_TICK_SECONDS)
            if _running:
                _reclaim(time.monotonic())
            with self.lock:
                if self.in_call and self.seq == last and self.total < MAX_THREADS:
                    self._promote()
                if self.seq == last and not self.in_call:
                    quiet += STALL_SECONDS if quiet < 1.0 else IDLE_TICK_SECONDS
                else:
                    quiet = 0.0
                last = self.seq

    def _poll(self):
        """Leader only: waits for the listener or a v2 connection and queues what is ready."""
        ready = self.ready
        for key, _ in self.sel.select():
            conn = key.data
            if conn is None:
                accept = self.listener._accept
                for _ in range(64):
                    try:
                        fd, _ = accept()
                    except OSError:  # EAGAIN: the backlog is empty
                        break
                    ready.append(fd)
            elif conn is _WAKE:
                try:
                    os.read(self.wake_r, 4096)
                except OSError:
                    pass
            else:
                try:
                    data = os.read(conn.fd, 262144)
                except OSError:
                    data = b""
                if not data or not _feed(conn, data, ready):
                    self.sel.unregister(conn.fd)
                    conn.close()

    def _upgrade(self, fd, rest):
        """A v1 connection sent a hello: answer it and hand the connection to the selector."""
        try:
            _send(fd, _HELLO)
            conn = _Conn(socket.socket(fileno=fd))
        except OSError:
            os.close(fd)
            return
        if rest and not _feed(conn, rest, self.ready):
            conn.close()
            return
        self.sel.register(conn.fd, selectors.EVENT_READ, conn)
        if self.ready:
            # Calls sent right behind the hello: if this thread has been replaced meanwhile,
            # the new leader may sit in select() and must look at `ready`.
            os.write(self.wake_w, b"x")

    def run(self):
        lock = self.lock
        close = os.close
        ready = self.ready
        while True:
            with lock:
                me = self.token
            while True:
                if not ready:
                    self._poll()
                    continue
                job = ready.popleft()
                if type(job) is not int:
                    conn = job[0]
                    if conn.queued.pop(job[1], None) is not job or conn.closed:
                        continue  # cancelled before it started, or its connection is gone
                with lock:
                    if me == self.token:
                        self.seq += 1
                        self.in_call = True
                if type(job) is int:
                    try:
                        rest = _serve(job)
                    except Exception:
                        rest = None
                    if rest is None:
                        try:
                            close(job)
                        except OSError:
                            pass
                    else:
                        self._upgrade(job, rest)
                else:
                    try:
                        _serve_call(job)
                    except Exception:
                        pass
                with lock:
                    if me == self.token:
                        self.in_call = False
                        continue
                    # Replaced while serving a slow job: park, or retire if enough are parked.
                    if self.parked >= MAX_PARKED:
                        self.total -= 1
                        return
                    self.parked += 1
                break
            self.wake.acquire()


def _fail(message):
    sys.stderr.write("fastfn python daemon: %s\n" % message)
    sys.stderr.flush()
    sys.exit(1)


def _bind(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            _fail("%s exists and is not a socket" % path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
            live = True
        except OSError:
            live = False
        finally:
            probe.close()
        if live:
            _fail("socket %s is in use by a live daemon" % path)
        os.unlink(path)
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    except OSError as exc:
        _fail("cannot bind %s: %s" % (path, exc))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    listener.listen(4096)
    return listener


def main(argv):
    global _LENGTH_ERROR, _JSON_ERROR, _TOO_LARGE, _HELLO
    if len(argv) != 2:
        _fail("usage: daemon.py <socket-path>")
    path = os.path.abspath(argv[1])
    # Handlers import only from their own folder, never the daemon's; and write no .pyc files
    # into the user's tree (that would be a file write per load, and wake the file watcher).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.dont_write_bytecode = True
    _register_worker_module()
    listener = _bind(path)
    ident = os.stat(path).st_ino

    def cleanup():
        try:
            if os.stat(path).st_ino == ident:
                os.unlink(path)
        except OSError:
            pass

    def on_signal(signum, frame):
        cleanup()
        os._exit(0)

    def watch_stdin():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        cleanup()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=watch_stdin, name="fastfn-stdin", daemon=True).start()

    _TOO_LARGE = _encode_frame(_error(413, "payload too large")).encode()
    _HELLO = _frame({"fastfn_hello": 2, "runtime": "python", "pid": os.getpid()})
    _LENGTH_ERROR = _frame(_error(400, "invalid frame length"))
    _JSON_ERROR = _frame(_error(400, "invalid json request"))
    sys.meta_path.insert(0, _FolderFinder)
    os.environ = _EnvOverlay(os.environ)
    sys.stdout = _Capture(sys.stdout, 0)
    sys.stderr = _Capture(sys.stderr, 1)
    _Pool(listener).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv)
