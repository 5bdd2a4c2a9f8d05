#!/usr/bin/env python3
"""FastFN Python runtime daemon (contract §4, python column of §4.1).

    python3 daemon.py <socket-path>
    env: FN_FUNCTIONS_ROOT (absolute functions root), FN_MAX_FRAME_BYTES (default 2 MiB)

One self-contained file, standard library only, so the engine can embed it.

Protocol: per connection read one frame (4-byte big-endian length + UTF-8 JSON request), write
one reply frame, close. Every failure is an ordinary reply; error bodies are JSON
`{"error": "..."}` with `Content-Type: application/json`.

Invariants kept here:
- Never loads a file outside the functions root (`..`, absolute paths and symlinks out → 404).
- Module state is per handler file: each file is imported under its own module name and the
  private helpers it imported from its folder (`_util.py`, ...) are moved out of `sys.modules`
  into that function's own record, so two functions' same-named helpers never collide.
- A changed handler file (mtime_ns or size) is re-imported on its next call.
- Dependencies (contract §4.2): the engine installs a function's packages into
  `<handler folder>/.deps`; it is searched right after the handler's folder while the handler
  is imported, and what is imported from it stays private to that function like its helpers
  (two functions may hold different versions of one package). A new install (its
  `.deps/.fastfn-signature` stamp changes) re-imports the handler on its next call.
- The daemon writes nothing of its own per call; handler stdout/stderr are captured per call
  (a context-variable selected buffer behind proxies on sys.stdout/sys.stderr) and returned in
  the reply's `stdout`/`stderr` fields.
- Concurrency: one acceptor thread serves connections inline; a watchdog hands the accept()
  role to another thread when a call stalls (see _Pool), so a sleeping handler pins only its
  own thread. Coroutines run on one event loop thread, awaited by the calling worker thread.
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
  JSON bodies are compact; values JSON cannot encode become `str(value)`.
- Envelope: `status` else `statusCode` (default 200; numeric strings accepted; outside
  100..599 → 500); header values become strings (lists stay lists of strings); `proxy` is
  passed through unchanged in the reply. In a tuple a str body gets the html/plain type.
- `event.env` = the gateway's `event.env` (if any) updated with `fn.env.json` from the handler's
  folder (`{"K":{"value":..}}` → value; non-strings JSON/str-encoded); `FN_ADMIN_*`,
  `FN_CONSOLE_*`, `FN_TRUSTED_*` dropped. Invalid `fn.env.json` → 500. `event.version` =
  request `version`, else `"default"`.
- Errors: handler exception → 500 `"<Type>: <message>"`, traceback in `stderr`; import failure
  → 500 `failed to load handler: <Type>: <message>`; non-native adapter → 500
  `adapter not supported yet: <adapter>`; reply over 10 MiB → 500 `response too large`.
- No .pyc files are written into the functions tree. Private helpers are importable while
  the handler file is imported (top-level imports); a helper first imported lazily inside a
  call is not on the path then. Only the handler file's change (or a new install of its
  dependencies) triggers a re-import.
"""
import asyncio
import base64
import contextvars
import importlib.util
import inspect
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
import traceback

MAX_THREADS = 256          # worker threads at most (slow calls in flight + 1)
MAX_PARKED = 32            # spare worker threads kept parked for the next slow call
STALL_SECONDS = 0.002      # a call longer than this (to 2x) gets a new acceptor beside it
IDLE_TICK_SECONDS = 0.05   # watchdog tick after 1 s without calls
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
    # list, number, bool, other objects: JSON (objects JSON cannot encode become str(obj))
    return {"status": 200, "headers": {"Content-Type": _JSON_CT}, "body": _encode_body(res)}


# ---------------------------------------------------------------- output capture

_CAPTURE = contextvars.ContextVar("fastfn_capture", default=None)


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
        cap[self._index].append(s)
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

    __slots__ = ("path", "sig", "module", "private", "error", "trace", "callables", "env_path",
                 "stamp_path")

    def __init__(self, path, sig):
        self.path = path
        self.sig = sig
        self.module = None
        self.private = {}
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


def _load(path, sig):
    fn = _Function(path, sig)
    folder = os.path.dirname(path)
    dirs = _search_dirs(folder)
    prefixes = tuple(d.rstrip(os.sep) + os.sep for d in dirs)
    _module_seq[0] += 1
    name = "fastfn_fn_%d_%s" % (_module_seq[0],
                                "".join(c if c.isalnum() else "_" for c in
                                        os.path.relpath(path, ROOT))[:80])
    before = set(sys.modules)
    sys.path[0:0] = dirs
    importlib.invalidate_caches()
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
        for d in dirs:
            try:
                sys.path.remove(d)
            except ValueError:
                pass
        for mod_name in set(sys.modules) - before:
            if mod_name == name:
                continue
            mod = sys.modules.get(mod_name)
            f = getattr(mod, "__file__", None)
            if f is None:  # namespace package: judge by its search path
                f = next(iter(getattr(mod, "__path__", None) or ()), None)
            if isinstance(f, str) and f.startswith(prefixes):
                fn.private[mod_name] = sys.modules.pop(mod_name)
    return fn


def _function(path):
    """The loaded function for `path`, re-imported when the file or its dependencies changed.
    None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    fn = _functions.get(path)
    stamp = _stamp_mtime(fn.stamp_path if fn is not None else _stamp_path(path))
    sig = (st.st_mtime_ns, st.st_size, stamp)
    if fn is not None and fn.sig == sig:
        return fn
    with _load_lock:
        fn = _functions.get(path)
        if fn is not None and fn.sig == sig:
            return fn
        old = fn
        fn = _load(path, sig)
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
_loop_lock = threading.Lock()


def _event_loop():
    global _loop
    if _loop is None:
        with _loop_lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="fastfn-asyncio",
                                 daemon=True).start()
                _loop = loop
    return _loop


async def _captured(awaitable, cap):
    _CAPTURE.set(cap)
    return await awaitable


# ---------------------------------------------------------------- dispatch

def _dispatch(req):
    adapter = req.get("adapter")
    if adapter and adapter != "native":
        return _error(500, "adapter not supported yet: %s" % (adapter,))
    event = req.get("event")
    if event is None:
        event = {}
    elif type(event) is not dict:
        return _error(400, "invalid json request")
    key = (req.get("entry"), req.get("fn"), req.get("fn_source_dir"), req.get("version"))
    try:
        path = _resolved.get(key)
        fn = _function(path) if path else None
        if fn is None:
            _resolved.pop(key, None)
            path = _resolve(req)
            if path is None:
                return _error(404, "unknown function")
            fn = _function(path)
            if fn is None:
                return _error(404, "unknown function")
            if len(_resolved) > 10000:
                _resolved.clear()
            _resolved[key] = path
    except (TypeError, ValueError, OSError):
        return _error(404, "unknown function")
    if fn.error is not None:
        return _error(500, fn.error, fn.trace)

    name = req.get("handler") or "handler"
    target = fn.callables.get(name)
    if target is None:
        obj = getattr(fn.module, name, None) if isinstance(name, str) else None
        if not callable(obj):
            obj = getattr(fn.module, "main", None)
        if not callable(obj):
            return _error(500, "handler %r not found" % (name,))
        target = fn.callables[name] = _Callable(obj)

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

    cap = ([], [])
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
            res = asyncio.run_coroutine_threadsafe(_captured(res, cap), _event_loop()).result()
        reply = _to_reply(res)
    except _HandlerError as exc:
        reply = _error(500, str(exc))
    except BaseException as exc:  # SystemExit from a handler is a failed call too
        cap[1].append(traceback.format_exc())
        reply = _error(500, "%s: %s" % (type(exc).__name__, exc))
    finally:
        _CAPTURE.set(None)
    if cap[0]:
        reply["stdout"] = "".join(cap[0])
    if cap[1]:
        reply["stderr"] = (reply.get("stderr") or "") + "".join(cap[1])
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
    read = os.read
    data = read(fd, 65536)
    if not data:
        return
    while len(data) < 4:
        more = read(fd, 65536)
        if not more:
            _send(fd, _LENGTH_ERROR)
            return
        data += more
    n = int.from_bytes(data[:4], "big")
    if n == 0 or n > MAX_FRAME:
        _send(fd, _LENGTH_ERROR)
        return
    total = n + 4
    if len(data) < total:
        buf = bytearray(data)
        while len(buf) < total:
            more = read(fd, min(total - len(buf), 1 << 20))
            if not more:
                _send(fd, _LENGTH_ERROR)
                return
            buf += more
        data = buf
    try:
        req = _loads(data[4:total])
    except ValueError:  # also invalid UTF-8
        _send(fd, _JSON_ERROR)
        return
    if type(req) is not dict:
        _send(fd, _JSON_ERROR)
        return
    try:
        reply = _dispatch(req)
    except Exception:
        reply = _error(500, "internal daemon error", traceback.format_exc())
    _send(fd, _frame(reply))


# ---------------------------------------------------------------- server

class _Pool:
    """Worker threads serving connections from one listening socket.

    Exactly one thread (the acceptor) blocks in accept() and serves each connection inline,
    so a fast handler costs no thread hand-off and no GIL contention. A watchdog notices when
    the acceptor has spent more than STALL_SECONDS in one call (a sleeping or slow handler)
    and designates another thread (a parked one, or a new one up to MAX_THREADS) as acceptor;
    the replaced thread finishes its call and parks. So slow calls pin only their own thread.
    """

    def __init__(self, listener):
        self.listener = listener
        self.lock = threading.Lock()
        self.wake = threading.Semaphore(0)
        self.token = 0        # designation of the current acceptor
        self.seq = 0          # calls started by the current acceptor
        self.in_call = False  # the current acceptor is serving a connection
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
            with self.lock:
                if self.in_call and self.seq == last and self.total < MAX_THREADS:
                    self._promote()
                if self.seq == last and not self.in_call:
                    quiet += STALL_SECONDS if quiet < 1.0 else IDLE_TICK_SECONDS
                else:
                    quiet = 0.0
                last = self.seq

    def run(self):
        accept = self.listener._accept
        lock = self.lock
        close = os.close
        while True:
            with lock:
                me = self.token
            while True:
                try:
                    fd, _ = accept()
                except OSError:
                    continue
                with lock:
                    if me == self.token:
                        self.seq += 1
                        self.in_call = True
                try:
                    _serve(fd)
                except Exception:
                    pass
                finally:
                    try:
                        close(fd)
                    except OSError:
                        pass
                with lock:
                    if me == self.token:
                        self.in_call = False
                        continue
                    # Replaced while serving a slow call: park, or retire if enough are parked.
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
    global _LENGTH_ERROR, _JSON_ERROR
    if len(argv) != 2:
        _fail("usage: daemon.py <socket-path>")
    path = os.path.abspath(argv[1])
    # Handlers import only from their own folder, never the daemon's; and write no .pyc files
    # into the user's tree (that would be a file write per load, and wake the file watcher).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.dont_write_bytecode = True
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

    _LENGTH_ERROR = _frame(_error(400, "invalid frame length"))
    _JSON_ERROR = _frame(_error(400, "invalid json request"))
    sys.stdout = _Capture(sys.stdout, 0)
    sys.stderr = _Capture(sys.stderr, 1)
    _Pool(listener).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv)
