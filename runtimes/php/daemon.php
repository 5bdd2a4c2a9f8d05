<?php
/*
 * FastFN PHP runtime daemon (contract §4, php row of §4.1).
 *
 *     php daemon.php <socket-path>
 *     env: FN_FUNCTIONS_ROOT (absolute functions root), FN_MAX_FRAME_BYTES (default 2 MiB)
 *
 * One self-contained file using only what Debian's php-cli ships; the engine embeds it. The
 * same file is the worker: `php daemon.php --worker <handler-path>`.
 *
 * Protocol (docs/protocol.md): v1 — per connection read one frame (4-byte big-endian length +
 * UTF-8 JSON request), write one reply frame, close. v2 — a connection whose first frame is
 * `{"fastfn_hello": 2}` gets the hello answer, then carries multiplexed call/reply/cancel frames
 * (id, meta JSON, raw body) until closed; each call is dispatched to a worker like a v1 request
 * and answered, tagged with its id, when its worker replies (see "protocol v2" below). Every
 * failure is an ordinary reply; error bodies are JSON `{"error": "..."}` with `Content-Type:
 * application/json`. A connection closed before any byte (health probe) is ignored.
 *
 * Design:
 * - The daemon is one non-blocking stream_select loop over the listening socket, stdin, every
 *   client socket and every worker pipe. It never runs user code.
 * - Each handler path gets a pool of worker processes (`php daemon.php --worker <path>`, a fresh
 *   interpreter each, so two functions never share functions, classes or globals). A pool grows
 *   on demand to MAX_WORKERS_PER_FN; further calls queue. Idle workers are reused most recently
 *   used first (a warm worker keeps its module state), reaped after IDLE_SECONDS, and at most
 *   MAX_IDLE_TOTAL stay idle across all pools.
 * - Daemon → worker: the client's request frame, forwarded unchanged, on the worker's stdin (for
 *   a v2 call: the v1 request rebuilt from its meta and raw body).
 *   Worker → daemon: on fd 3, a frame whose first payload byte is a flag ('k' = keep me,
 *   'x' = I exit after this reply) followed by the reply JSON. The worker's fd 1 and fd 2 are
 *   pipes the daemon reads; whatever arrives during a call (echo inside handler(),
 *   fwrite(STDOUT|STDERR), error_log, PHP warnings, traces) becomes the reply's
 *   `stdout`/`stderr`. The worker writes its captured output before the reply, so it is all
 *   in the pipes when the reply is complete.
 * - A changed handler file (mtime or size) retires the pool's workers (busy ones after their
 *   call); the next call starts a fresh one. So does a changed helper file the handler
 *   included from the functions root (not `vendor/`): a worker reports those files (and their
 *   sig) with its first reply ('F' + list + NUL before the flag), and the daemon stats them on
 *   each call of that handler. A fatal error or exit() kills only that worker:
 *   its shutdown function replies 500 (flag 'x'); a worker dying without a reply is a 500 too.
 * - Strict sandbox: calls with `"strict_fs": true` go to workers started with `open_basedir`
 *   (the handler's folder, FN_STRICT_FS_ALLOW, /tmp, this file's folder) and
 *   `disable_functions` (every process spawner), whose `file://` wrapper refuses the protected
 *   platform files (GuardedFile); a pool whose calls change mode retires its workers.
 * - Exits at once when stdin reaches EOF (workers are killed with it; a worker whose stdin
 *   reaches EOF exits too), cleanly on SIGTERM/SIGINT (workers killed, socket removed, exit 0).
 *
 * Choices within the contract:
 * - Handler file: request `entry` (root-relative .php file) wins; else `fn` as a root-relative
 *   .php file; else `fn_source_dir` (+ `version` subfolder) with `handler.php`, then
 *   `index.php`; else `fn` as a folder, same entry order. Anything else → 404 `unknown
 *   function`. Nothing outside the root (`..`, absolute paths, symlinks out) is ever loaded.
 * - Callable: request `handler` (default `handler`), a global function or one of that name in
 *   a namespace the file declared. Called with no argument, `$event`, or `$event, $params`
 *   (`event.params`) depending on how many parameters it declares. A file that defines no such
 *   function is run mod_php style on each call (see the worker section); a non-default
 *   `handler` that is missing → 500 `handler 'x' not found`.
 * - Returns: array with an envelope key → envelope; other arrays, objects, numbers, bools →
 *   200 JSON; string → 200, `text/html; charset=utf-8` when its first non-blank char is `<`,
 *   else `text/plain; charset=utf-8`; null → 200 empty body, no headers. A string body that is
 *   not valid UTF-8 goes out base64 (`application/octet-stream` unless a type is set).
 *   What handler() echoes is its body when it returns null, '' or an envelope without a body
 *   (FastFN's worker does this); otherwise it is the call's `stdout`.
 * - Script variables (FastFN): `$FASTFN_STATUS` (int 100..599) and `$FASTFN_HEADERS` (name =>
 *   scalar), set at the top level of a mod_php-style file or as globals inside handler(), set
 *   the status and headers; they win over shorthand defaults and header(), an envelope's own
 *   status and headers win over them.
 * - Env: the call's `event.env` is also in getenv() and `$_ENV` (one worker serves one handler
 *   file, one call at a time, so nothing leaks to another function).
 * - Output: at most 64 KiB of a call's stdout and of its stderr reach the reply; the rest is
 *   counted and the text ends with `…[truncated N bytes]`.
 * - Runaway calls: a worker still busy past its call's `event.context.timeout_ms` (+50 ms), or
 *   whose started v2 call is cancelled, is killed (SIGKILL); its call is answered 500 `call
 *   stopped (timed out or cancelled)` and the pool starts a fresh worker for the next one.
 * - Envelope: as the python daemon (status else statusCode, numeric strings accepted, outside
 *   100..599 → 500; headers stringified; array/object body → JSON + application/json; base64
 *   via body_base64 / is_base64 / isBase64Encoded; `proxy` passed through).
 * - `event.env` = gateway `event.env` updated with `fn.env.json` (both forms; non-strings
 *   JSON-encoded, bools "true"/"false"); FN_ADMIN_/FN_CONSOLE_/FN_TRUSTED_ dropped; invalid
 *   file → 500. `event.version` = request `version` or "default". JSON objects reach PHP as
 *   arrays, so an empty object in the event is `[]` to the handler.
 * - Errors: exception → 500 `<Class>: <message>`, trace in `stderr`; load failure → 500
 *   `failed to load handler: <Class>: <message> (<file>, line <n>)`; fatal error → 500
 *   `fatal error: <message>` (`failed to load handler: fatal error: ...` while loading);
 *   exit() inside handler() → 500 `handler called exit()`; non-native adapter → 500
 *   `adapter not supported yet: <adapter>`; reply over 10 MiB → 500 `response too large`.
 */

namespace FastFN\PhpDaemon {

const MAX_WORKERS_PER_FN = 8;   // parallel calls of one handler path; more calls queue
const MAX_IDLE_TOTAL = 32;      // idle workers kept across all pools
const IDLE_SECONDS = 60.0;      // an idle worker older than this exits
const MAX_OUTPUT = 65536;        // bytes of a call's stdout / stderr kept for its reply
const KILL_GRACE = 0.05;        // past a call's timeout_ms before its worker is killed
const MAX_REPLY_BYTES = 10485760;
const ENTRY_FILES = ['handler.php', 'index.php'];
const ENV_FILE = 'fn.env.json';
/** Platform files a strict handler may not touch, in any folder. */
const PROTECTED_FILES = ['fn.config.json', 'fn.env.json', 'fn.test_events.json'];
/** Functions a strict worker runs without (`disable_functions`): every way to start a process. */
const SPAWN_FUNCTIONS = ['exec', 'passthru', 'shell_exec', 'system', 'proc_open', 'popen',
    'pcntl_exec', 'pcntl_fork', 'mail', 'dl'];
const HIDDEN_ENV_PREFIXES = ['FN_ADMIN_', 'FN_CONSOLE_', 'FN_TRUSTED_'];
const ENVELOPE_KEYS = ['status', 'statusCode', 'headers', 'body', 'is_base64',
    'isBase64Encoded', 'body_base64', 'proxy'];
const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;
const FATAL = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_RECOVERABLE_ERROR;

function error_reply(int $status, string $message): array
{
    return ['status' => $status, 'headers' => ['Content-Type' => 'application/json'],
        'body' => json_encode(['error' => $message], JSON_FLAGS)];
}

/** Encode a reply as a frame payload (no length prefix); always valid JSON. */
function encode_reply(array $reply): string
{
    if (isset($reply['headers']) && $reply['headers'] === []) {
        $reply['headers'] = new \stdClass();
    }
    $raw = json_encode($reply, JSON_FLAGS);
    if ($raw === false) {
        $raw = json_encode(error_reply(500, 'handler returned a value that cannot be encoded: '
            . json_last_error_msg()), JSON_FLAGS);
    }
    if (strlen($raw) > MAX_REPLY_BYTES) {
        $raw = json_encode(error_reply(500, 'response too large'), JSON_FLAGS);
    }
    return $raw;
}

// The lossy UTF-8 text of bytes: each maximal ill-formed subpart becomes U+FFFD (the Unicode
// recommendation; what the engine's from_utf8_lossy gives v1 handlers). PCRE only, no mbstring.
const UTF8_CHAR = '[\x00-\x7F]|[\xC2-\xDF][\x80-\xBF]|\xE0[\xA0-\xBF][\x80-\xBF]'
    . '|[\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}|\xED[\x80-\x9F][\x80-\xBF]|\xF0[\x90-\xBF][\x80-\xBF]{2}'
    . '|[\xF1-\xF3][\x80-\xBF]{3}|\xF4[\x80-\x8F][\x80-\xBF]{2}';
const UTF8_BAD = '\xE0[\xA0-\xBF]?|[\xE1-\xEC\xEE\xEF][\x80-\xBF]?|\xED[\x80-\x9F]?'
    . '|\xF0(?:[\x90-\xBF][\x80-\xBF]?)?|[\xF1-\xF3](?:[\x80-\xBF][\x80-\xBF]?)?'
    . '|\xF4(?:[\x80-\x8F][\x80-\xBF]?)?|[\x80-\xFF]';

function utf8_lossy(string $s): string
{
    $r = preg_replace('/(?:' . UTF8_CHAR . ')++(*SKIP)(*FAIL)|' . UTF8_BAD . '/', "\u{FFFD}", $s);
    return $r ?? json_decode(json_encode($s, JSON_INVALID_UTF8_SUBSTITUTE)); // PCRE limit: near enough
}

function fail(string $message): void
{
    fwrite(STDERR, "fastfn php daemon: $message\n");
    exit(1);
}

// ------------------------------------------------------------------ daemon side

final class Client
{
    public $sock;
    public string $buf = '';
    public int $need = 0;        // total frame size once the length is known
    public string $out = '';     // reply bytes still to write
    public bool $writing = false;
    public bool $v2 = false;     // a hello made it a v2 connection (many calls, kept open)
    public int $skip = 0;        // v2: bytes of an over-limit call still to discard
    /** @var array<int, true> v2: ids of calls waiting in a pool queue (a cancel drops them) */
    public array $queued = [];
    public bool $closed = false;

    public function __construct($sock)
    {
        $this->sock = $sock;
    }
}

final class Pool
{
    public string $path;
    /** The handler's folder (where its `fn.env.json` is). */
    public string $dir;
    /** Its workers run in the strict sandbox (the calls' `strict_fs`). */
    public bool $strict = false;
    public string $sig = '';
    /** @var WorkerProc[] idle workers, most recently used last */
    public array $idle = [];
    /** @var array<int, WorkerProc> */
    public array $all = [];
    /** @var array<int, array{Client, string}> */
    public array $queue = [];
    /** @var array<string, string> files the handler included (not vendor/) => their sig */
    public array $helpers = [];

    public function __construct(string $path)
    {
        $this->path = $path;
        $this->dir = dirname($path);
    }
}

final class WorkerProc
{
    public $proc;
    public int $pid = 0;
    public $in;        // its stdin: request frames
    public $rep;       // its fd 3: reply frames
    public $o1;        // its stdout
    public $o2;        // its stderr
    public string $wbuf = '';
    public string $rbuf = '';
    public string $out = '';
    public string $err = '';
    public int $outDropped = 0;  // bytes past MAX_OUTPUT, only counted
    public int $errDropped = 0;
    public ?Client $client = null;
    public int $callId = 0;      // the v2 call id it serves, 0 for a v1 connection
    public int $startedNs = 0;   // hrtime when its call was sent to it (the `handler` stage)
    public float $deadline = INF; // when its call is killed (receipt + timeout_ms)
    public Pool $pool;
    public string $sig;
    public float $idleSince = 0.0;
    public bool $stale = false;
    public int $repId = 0;
    public int $o1Id = 0;

    public function __construct(Pool $pool)
    {
        $this->pool = $pool;
        $this->sig = $pool->sig;
    }
}

final class Daemon
{
    public $server;
    public string $sockPath;
    public int $sockIno = 0;
    public int $maxFrame;
    public string $root;
    public string $rootPrefix;
    /** @var array<int, Client> */
    public array $clients = [];
    /** @var array<string, Pool> */
    public array $pools = [];
    /** @var array<int, WorkerProc> keyed by id of the reply pipe */
    public array $workers = [];
    /** @var array<int, WorkerProc> busy workers whose call has a deadline, by reply pipe id */
    public array $timed = [];
    public array $dying = [];
    public array $resolved = [];
    public string $lengthError;
    public string $jsonError;
    public int $idleCount = 0;

    public function __construct(string $sockPath)
    {
        $this->sockPath = $sockPath;
        $root = getenv('FN_FUNCTIONS_ROOT') ?: getcwd();
        $real = realpath($root);
        $this->root = $real === false ? $root : $real;
        $this->rootPrefix = rtrim($this->root, '/') . '/';
        $max = (int)(getenv('FN_MAX_FRAME_BYTES') ?: 0);
        $this->maxFrame = $max > 0 ? $max : 2 * 1024 * 1024;
        $le = encode_reply(error_reply(400, 'invalid frame length'));
        $je = encode_reply(error_reply(400, 'invalid json request'));
        $this->lengthError = pack('N', strlen($le)) . $le;
        $this->jsonError = pack('N', strlen($je)) . $je;
    }

    public function bind(): void
    {
        $path = $this->sockPath;
        clearstatcache();
        if (file_exists($path) || is_link($path)) {
            if (@filetype($path) !== 'socket') {
                fail("$path exists and is not a socket");
            }
            $probe = @stream_socket_client('unix://' . $path, $errno, $errstr, 1.0);
            if ($probe !== false) {
                fclose($probe);
                fail("socket $path is in use by a live daemon");
            }
            @unlink($path);
        }
        $parent = dirname($path);
        if ($parent !== '' && !is_dir($parent)) {
            @mkdir($parent, 0700, true);
        }
        $old = umask(0177);
        $server = @stream_socket_server('unix://' . $path, $errno, $errstr);
        umask($old);
        if ($server === false) {
            fail("cannot bind $path: $errstr");
        }
        @chmod($path, 0600);
        stream_set_blocking($server, false);
        $this->server = $server;
        $st = @stat($path);
        $this->sockIno = $st ? $st['ino'] : 0;
    }

    public function cleanup(): void
    {
        foreach ($this->workers as $w) {
            if (is_resource($w->proc)) {
                @proc_terminate($w->proc, 9);
            }
        }
        foreach ($this->dying as $p) {
            if (is_resource($p)) {
                @proc_terminate($p, 9);
            }
        }
        clearstatcache();
        $st = @stat($this->sockPath);
        if ($st && $st['ino'] === $this->sockIno) {
            @unlink($this->sockPath);
        }
    }

    public function run(): void
    {
        $stdin = STDIN;
        stream_set_blocking($stdin, false);
        $lastTick = microtime(true);
        while (true) {
            $r = [$this->server, $stdin];
            $w = [];
            foreach ($this->clients as $c) {
                if ($c->v2) {
                    $r[] = $c->sock;
                    if ($c->out !== '') {
                        $w[] = $c->sock;
                    }
                } elseif ($c->writing) {
                    $w[] = $c->sock;
                } else {
                    $r[] = $c->sock;
                }
            }
            foreach ($this->workers as $id => $wk) {
                if ($id === $wk->repId) { // each worker is listed under three pipe ids
                    $r[] = $wk->rep;
                    if ($wk->wbuf !== '') {
                        $w[] = $wk->in;
                    }
                } else {
                    $r[] = $id === $wk->o1Id ? $wk->o1 : $wk->o2;
                }
            }
            $e = null;
            // Calls with a deadline are watched every 50 ms (see killOverdue).
            $n = $this->timed ? @stream_select($r, $w, $e, 0, 50000) : @stream_select($r, $w, $e, 1, 0);
            if ($n === false) {
                continue; // EINTR (a signal)
            }
            foreach ($r as $s) {
                $id = get_resource_id($s);
                if ($s === $this->server) {
                    $this->acceptAll();
                } elseif ($s === $stdin) {
                    $data = @fread($stdin, 65536);
                    if (($data === '' || $data === false) && feof($stdin)) {
                        $this->cleanup();
                        exit(0);
                    }
                } elseif (isset($this->clients[$id])) {
                    $this->readClient($this->clients[$id]);
                } else {
                    $this->readWorkerStream($s);
                }
            }
            foreach ($w as $s) {
                $id = get_resource_id($s);
                if (isset($this->clients[$id])) {
                    $this->writeClient($this->clients[$id]);
                } else {
                    foreach ($this->workers as $wk) {
                        if ($wk->in === $s) {
                            $this->flushWorker($wk);
                            break;
                        }
                    }
                }
            }
            $now = microtime(true);
            if ($this->timed) {
                $this->killOverdue($now);
            }
            if ($now - $lastTick >= 1.0) {
                $lastTick = $now;
                $this->tick($now);
            }
        }
    }

    private function acceptAll(): void
    {
        for ($i = 0; $i < 64; $i++) {
            $c = @stream_socket_accept($this->server, 0);
            if ($c === false) {
                return;
            }
            stream_set_blocking($c, false);
            stream_set_read_buffer($c, 0);
            $this->clients[get_resource_id($c)] = new Client($c);
        }
    }

    private function closeClient(Client $c): void
    {
        $c->closed = true;
        unset($this->clients[get_resource_id($c->sock)]);
        @fclose($c->sock);
    }

    private function readClient(Client $c): void
    {
        if ($c->v2) {
            $this->readClientV2($c);
            return;
        }
        $eof = false;
        while (true) {
            $data = @fread($c->sock, 1 << 20);
            if ($data === false || $data === '') {
                $eof = feof($c->sock);
                break;
            }
            $c->buf .= $data;
            if ($c->need > 0 && strlen($c->buf) >= $c->need) {
                break;
            }
        }
        $len = strlen($c->buf);
        if ($c->need === 0 && $len >= 4) {
            $n = unpack('N', $c->buf)[1];
            if ($n === 0 || $n > $this->maxFrame) {
                $this->reply($c, $this->lengthError);
                return;
            }
            $c->need = $n + 4;
        }
        if ($c->need > 0 && $len >= $c->need) {
            $this->dispatch($c, $c->need === $len ? $c->buf : substr($c->buf, 0, $c->need));
            return;
        }
        if ($eof) {
            if ($len === 0) {
                $this->closeClient($c); // health probe
            } else {
                $this->reply($c, $this->lengthError);
            }
        }
    }

    /** Queue a complete reply frame for a client (for v2 call $id: its JSON is the meta). */
    private function reply(Client $c, string $frame, int $id = 0): void
    {
        if ($id !== 0) {
            $this->sendV2($c, $id, substr($frame, 4), '');
            return;
        }
        $c->buf = '';
        $c->out = $frame;
        $c->writing = true;
        $this->writeClient($c);
    }

    private function replyWith(Client $c, array $reply, int $id = 0): void
    {
        $raw = encode_reply($reply);
        if ($id !== 0) {
            $this->sendV2($c, $id, $raw, '');
            return;
        }
        $this->reply($c, pack('N', strlen($raw)) . $raw);
    }

    private function writeClient(Client $c): void
    {
        $n = @fwrite($c->sock, $c->out);
        if ($n === false) {
            $this->closeClient($c);
            return;
        }
        if ($n > 0) {
            $c->out = (string)substr($c->out, $n);
        }
        if ($c->out === '') {
            if ($c->v2) {
                $c->writing = false;
                return;
            }
            $this->closeClient($c);
        }
    }

    private function dispatch(Client $c, string $frame): void
    {
        $req = json_decode(substr($frame, 4));
        if ($req instanceof \stdClass && ($req->fastfn_hello ?? null) === 2) {
            $this->upgrade($c, (string)substr($c->buf, strlen($frame)));
            return;
        }
        $c->buf = '';
        if (!($req instanceof \stdClass)) {
            $this->reply($c, $this->jsonError);
            return;
        }
        $this->route($c, $req, $frame, 0);
    }

    /** Resolve a request's handler file and hand the call to that file's pool. */
    private function route(Client $c, \stdClass $req, string $frame, int $id): void
    {
        $event = $req->event ?? null;
        if ($event !== null && !($event instanceof \stdClass)) {
            $this->reply($c, $this->jsonError, $id);
            return;
        }
        $adapter = $req->adapter ?? null;
        if ($adapter !== null && $adapter !== '' && $adapter !== 'native') {
            $this->replyWith($c, error_reply(500, 'adapter not supported yet: '
                . (is_scalar($adapter) ? (string)$adapter : json_encode($adapter))), $id);
            return;
        }
        $entry = $req->entry ?? null;
        $fn = $req->fn ?? null;
        $src = $req->fn_source_dir ?? null;
        $version = $req->version ?? null;
        $key = json_encode([$entry, $fn, $src, $version]);
        $path = $this->resolved[$key] ?? null;
        $sig = $path === null ? null : $this->sig($path);
        if ($sig === null) {
            unset($this->resolved[$key]);
            $path = $this->resolve($entry, $fn, $src, $version);
            $sig = $path === null ? null : $this->sig($path);
            if ($sig === null) {
                $this->replyWith($c, error_reply(404, 'unknown function'), $id);
                return;
            }
            if (count($this->resolved) > 10000) {
                $this->resolved = [];
            }
            $this->resolved[$key] = $path;
        }
        $pool = $this->pools[$path] ?? null;
        if ($pool === null) {
            $pool = $this->pools[$path] = new Pool($path);
        }
        if ($pool->helpers && $pool->sig === $sig) {
            // A helper file the handler included changed: its workers go, as for the handler.
            foreach ($pool->helpers as $file => $fileSig) {
                if ($this->sig($file) !== $fileSig) {
                    $pool->sig = '';
                    break;
                }
            }
        }
        $strict = ($req->strict_fs ?? false) === true;
        if ($pool->strict !== $strict) {
            // The sandbox is fixed when a worker starts: workers of the other mode go.
            $pool->strict = $strict;
            $pool->sig = '';
        }
        if ($pool->sig !== $sig) {
            $pool->helpers = [];
            $pool->sig = $sig;
            foreach ($pool->all as $wk) {
                $wk->stale = true;
            }
            foreach ($pool->idle as $wk) {
                $this->retire($wk);
            }
            $pool->idle = [];
        }
        $timeout = $event->context->timeout_ms ?? null;
        $deadline = is_int($timeout) && $timeout > 0
            ? microtime(true) + $timeout / 1000 + KILL_GRACE : INF;
        // The worker gets the signature of its folder's fn.env.json ahead of the call: one
        // stat here instead of the worker's own, which under open_basedir costs a dozen
        // syscalls per call (every allowed dir re-resolves the path of a file that is absent).
        $envSig = $this->envSig($pool->dir);
        $this->assign($pool, $c, pack('N', strlen($envSig)) . $envSig . $frame, $id, $deadline);
    }

    // -------------------------------------------------------------- protocol v2
    //
    // After a hello a connection carries frames `u32 len | u32 id | u8 kind | u32 meta_len |
    // meta JSON | raw body` both ways (docs/protocol.md). Each call goes to its handler's pool
    // like a v1 request, so the calls of one connection run in as many workers at once as the
    // pools allow; replies are appended whole to the connection's output as workers answer.

    /** A v1 frame `{"fastfn_hello": 2}` opened the connection: answer it, then speak v2. */
    private function upgrade(Client $c, string $rest): void
    {
        $c->v2 = true;
        $c->buf = '';
        $c->need = 0;
        $hello = json_encode(['fastfn_hello' => 2, 'runtime' => 'php', 'pid' => getmypid()]);
        $c->out .= pack('N', strlen($hello)) . $hello;
        $c->writing = true;
        $this->writeClient($c);
        if ($rest !== '' && !$c->closed) {
            $c->buf = $rest;
            if (!$this->parseV2($c)) {
                $this->closeClient($c);
            }
        }
    }

    private function readClientV2(Client $c): void
    {
        $eof = false;
        while (true) {
            $data = @fread($c->sock, 1 << 20);
            if ($data === false || $data === '') {
                $eof = feof($c->sock);
                break;
            }
            if ($c->skip > 0) { // the rest of an over-limit call: never buffered
                $n = min($c->skip, strlen($data));
                $c->skip -= $n;
                if ($n === strlen($data)) {
                    continue;
                }
                $data = substr($data, $n);
            }
            $c->buf .= $data;
            if (strlen($c->buf) >= 4 << 20) {
                break; // parse in bounded steps; select reports the rest
            }
        }
        if (!$this->parseV2($c)) {
            $this->closeClient($c); // protocol error
            return;
        }
        if ($eof) {
            $this->closeClient($c);
        }
    }

    /** Dispatch the complete frames in a v2 client's buffer; false on a protocol error. */
    private function parseV2(Client $c): bool
    {
        $buf = $c->buf;
        $size = strlen($buf);
        $off = 0;
        while ($size - $off >= 4) {
            $len = unpack('N', $buf, $off)[1];
            if ($len < 9) {
                return false;
            }
            if ($size - $off < 13) {
                break;
            }
            $h = unpack('Nid/Ckind/Nmeta', $buf, $off + 4);
            $id = $h['id'];
            $kind = $h['kind'];
            if ($h['meta'] > $len - 9 || $id === 0 || ($kind !== 1 && $kind !== 3)) {
                return false;
            }
            if ($len > $this->maxFrame) {
                if ($kind === 1) {
                    $this->replyWith($c, error_reply(413, 'payload too large'), $id);
                    if ($c->closed) {
                        return true;
                    }
                }
                $rest = $len - 9;
                $here = min($rest, $size - $off - 13);
                $off += 13 + $here;
                if ($here < $rest) {
                    $c->skip = $rest - $here;
                    break;
                }
                continue;
            }
            if ($size - $off < 4 + $len) {
                break;
            }
            $meta = substr($buf, $off + 13, $h['meta']);
            $body = (string)substr($buf, $off + 13 + $h['meta'], $len - 9 - $h['meta']);
            $off += 4 + $len;
            if ($kind === 3) {
                // A call still queued is dropped; one in a worker has its worker killed.
                if (isset($c->queued[$id])) {
                    unset($c->queued[$id]);
                } else {
                    $this->cancelStarted($c, $id);
                }
                continue;
            }
            $req = json_decode($meta);
            if (!($req instanceof \stdClass)) {
                return false;
            }
            $this->dispatchV2($c, $id, $req, $meta, $body);
            if ($c->closed) {
                return true; // a reply write failed: the peer is gone
            }
        }
        $c->buf = $off === $size ? '' : substr($buf, $off);
        return true;
    }

    /** A v2 call: the worker gets the v1 request, its event built from the raw body as v1
     * gives it (text; plus base64 when not UTF-8). */
    private function dispatchV2(Client $c, int $id, \stdClass $req, string $meta, string $body): void
    {
        if ($body === '') {
            $this->route($c, $req, pack('N', strlen($meta)) . $meta, $id);
            return;
        }
        $event = $req->event ?? null;
        if ($event === null) {
            $event = $req->event = new \stdClass();
        }
        if ($event instanceof \stdClass) {
            if (preg_match('//u', $body) === 1) {
                $event->body = $body;
                unset($event->body_base64);
            } else {
                $event->body = utf8_lossy($body);
                $event->body_base64 = base64_encode($body);
            }
        }
        $json = json_encode($req, JSON_FLAGS);
        if ($json === false) {
            $this->reply($c, $this->jsonError, $id);
            return;
        }
        $this->route($c, $req, pack('N', strlen($json)) . $json, $id);
    }

    /** A worker's reply JSON for v2 call $id: a base64 body goes raw in the frame's body. */
    private function replyV2(Client $c, int $id, string $json): void
    {
        $body = '';
        if (strpos($json, '"is_base64":true') !== false) {
            $r = json_decode($json);
            if ($r instanceof \stdClass && ($r->is_base64 ?? null) === true && is_string($r->body_base64 ?? null)) {
                $raw = base64_decode($r->body_base64, true);
                if ($raw !== false) {
                    unset($r->is_base64, $r->body_base64);
                    $meta = json_encode($r, JSON_FLAGS);
                    if ($meta !== false) {
                        [$json, $body] = [$meta, $raw];
                    }
                }
            }
        }
        $this->sendV2($c, $id, $json, $body);
    }

    /** Append one whole reply frame to a v2 client's output. */
    private function sendV2(Client $c, int $id, string $meta, string $body): void
    {
        if ($c->closed) {
            return;
        }
        $c->out .= pack('NNCN', 9 + strlen($meta) + strlen($body), $id, 2, strlen($meta)) . $meta . $body;
        $c->writing = true;
        $this->writeClient($c);
    }

    /** `fn.env.json` of $dir: '' when there is none, else a change signature. */
    private function envSig(string $dir): string
    {
        $p = $dir . '/' . ENV_FILE;
        clearstatcache(true, $p);
        $st = @stat($p);
        return $st === false ? '' : $st['mtime'] . ':' . $st['size'] . ':' . $st['ino'] . ':' . $st['mode'];
    }

    private function sig(string $path): ?string
    {
        clearstatcache(true, $path);
        $st = @stat($path);
        if ($st === false || ($st['mode'] & 0170000) !== 0100000) {
            return null;
        }
        return $st['mtime'] . ':' . $st['size'] . ':' . $st['ino'];
    }

    private function inside($rel): ?string
    {
        if (!is_string($rel) || $rel === '' || strpos($rel, "\0") !== false) {
            return null;
        }
        $rel = str_replace('\\', '/', $rel);
        if ($rel[0] === '/') {
            return null;
        }
        foreach (explode('/', $rel) as $part) {
            if ($part === '..') {
                return null;
            }
        }
        $full = realpath($this->root . '/' . $rel);
        if ($full !== false && ($full === $this->root || strncmp($full, $this->rootPrefix, strlen($this->rootPrefix)) === 0)) {
            return $full;
        }
        return null;
    }

    private function entryIn(string $dir, $version): ?string
    {
        if ($version !== null && $version !== '' && $version !== 'default') {
            if (!is_string($version) || strpbrk($version, '/\\') !== false || $version === '.' || $version === '..') {
                return null;
            }
            $dir .= '/' . $version;
        }
        foreach (ENTRY_FILES as $name) {
            $p = realpath($dir . '/' . $name);
            if ($p !== false && strncmp($p, $this->rootPrefix, strlen($this->rootPrefix)) === 0 && is_file($p)) {
                return $p;
            }
        }
        return null;
    }

    private function resolve($entry, $fn, $src, $version): ?string
    {
        if ($entry !== null && $entry !== '') {
            $p = $this->inside($entry);
            return $p !== null && str_ends_with($p, '.php') && is_file($p) ? $p : null;
        }
        $p = $this->inside($fn);
        if ($p !== null && str_ends_with($p, '.php') && is_file($p)) {
            return $p;
        }
        if ($src !== null && $src !== '') {
            $d = $this->inside($src);
            return $d !== null && is_dir($d) ? $this->entryIn($d, $version) : null;
        }
        if ($p !== null && is_dir($p)) {
            return $this->entryIn($p, $version);
        }
        return null;
    }

    private function assign(Pool $pool, Client $c, string $frame, int $id, float $deadline): void
    {
        $wk = array_pop($pool->idle);
        if ($wk !== null) {
            $this->idleCount--;
        } elseif (count($pool->all) < MAX_WORKERS_PER_FN) {
            $wk = $this->spawn($pool);
            if ($wk === null) {
                $this->replyWith($c, error_reply(500, 'cannot start a php worker'), $id);
                return;
            }
        } else {
            $pool->queue[] = [$c, $frame, $id, $deadline];
            if ($id !== 0) {
                $c->queued[$id] = true;
            }
            return;
        }
        $this->send($wk, $c, $frame, $id, $deadline);
    }

    /** The next queued call still wanted (its client open, a v2 call not cancelled), or null. */
    private function nextQueued(Pool $pool): ?array
    {
        while ($pool->queue) {
            $q = array_shift($pool->queue);
            [$c, , $id] = $q;
            if ($c->closed) {
                continue;
            }
            if ($id !== 0) {
                if (!isset($c->queued[$id])) {
                    continue; // cancelled
                }
                unset($c->queued[$id]);
            }
            return $q;
        }
        return null;
    }

    private function send(WorkerProc $wk, Client $c, string $frame, int $id, float $deadline): void
    {
        $wk->client = $c;
        $wk->callId = $id;
        $wk->startedNs = hrtime(true);
        $wk->deadline = $deadline;
        if ($deadline !== INF) {
            $this->timed[$wk->repId] = $wk;
        }
        $wk->out = '';
        $wk->err = '';
        $wk->outDropped = $wk->errDropped = 0;
        $wk->wbuf = $frame;
        $this->flushWorker($wk);
    }

    private function spawn(Pool $pool): ?WorkerProc
    {
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w'], 3 => ['pipe', 'w']];
        // PHP opens sockets and pipes without close-on-exec, so a worker would inherit the
        // listening socket, client sockets (their clients would never see EOF) and other
        // workers' pipes. Every inherited descriptor above 3 is pointed at /dev/null instead.
        foreach (@scandir('/proc/self/fd') ?: [] as $fd) {
            if (ctype_digit($fd) && (int)$fd > 3) {
                $spec[(int)$fd] = ['file', '/dev/null', 'r'];
            }
        }
        $cmd = [PHP_BINARY, '-d', 'display_errors=0', '-d', 'log_errors=1', '-d', 'html_errors=0',
            '-d', 'error_log='];
        if ($pool->strict) {
            // The strict sandbox, enforced by PHP itself in this worker process: files only in
            // the function folder, FN_STRICT_FS_ALLOW, /tmp (and this file, which it runs);
            // no process spawning. Protected files are refused by the worker (GuardedFile).
            // Shared packs are linked into the vendor/ of the functions that name them.
            $dirs = [dirname($pool->path), __DIR__, '/tmp', $this->root . '/.fastfn/packs'];
            foreach (preg_split('/[,:]/', (string)getenv('FN_STRICT_FS_ALLOW')) as $d) {
                $d = trim($d);
                if ($d !== '' && $d[0] === '/') {
                    $dirs[] = $d;
                }
            }
            array_push($cmd, '-d', 'open_basedir=' . implode(':', $dirs),
                '-d', 'disable_functions=' . implode(',', SPAWN_FUNCTIONS));
        }
        array_push($cmd, __FILE__, '--worker', $pool->path);
        if ($pool->strict) {
            $cmd[] = '--strict';
        }
        $proc = @proc_open($cmd, $spec, $pipes, dirname($pool->path));
        if (!is_resource($proc)) {
            return null;
        }
        $pipes = [$pipes[0], $pipes[1], $pipes[2], $pipes[3]];
        $wk = new WorkerProc($pool);
        $wk->proc = $proc;
        $wk->pid = (int)(proc_get_status($proc)['pid'] ?? 0);
        [$wk->in, $wk->o1, $wk->o2, $wk->rep] = [$pipes[0], $pipes[1], $pipes[2], $pipes[3]];
        foreach ($pipes as $p) {
            stream_set_blocking($p, false);
        }
        foreach ([$wk->o1, $wk->o2, $wk->rep] as $p) {
            stream_set_read_buffer($p, 0);
        }
        $wk->repId = get_resource_id($wk->rep);
        $wk->o1Id = get_resource_id($wk->o1);
        $this->workers[$wk->repId] = $wk;
        $this->workers[$wk->o1Id] = $wk;
        $this->workers[get_resource_id($wk->o2)] = $wk;
        $pool->all[$wk->repId] = $wk;
        return $wk;
    }

    private function flushWorker(WorkerProc $wk): void
    {
        if ($wk->wbuf === '') {
            return;
        }
        $n = @fwrite($wk->in, $wk->wbuf);
        if ($n === false) {
            $this->workerDied($wk);
            return;
        }
        if ($n > 0) {
            $wk->wbuf = (string)substr($wk->wbuf, $n);
        }
    }

    private function readWorkerStream($s): void
    {
        $wk = $this->workers[get_resource_id($s)] ?? null;
        if ($wk === null) {
            return;
        }
        $got = '';
        while (true) {
            $data = @fread($s, 1 << 20);
            if ($data === false || $data === '') {
                break;
            }
            $got .= $data;
        }
        if ($s === $wk->o1) {
            if ($wk->client !== null) {
                self::keep($wk->out, $wk->outDropped, $got);
            }
        } elseif ($s === $wk->o2) {
            if ($wk->client !== null) {
                self::keep($wk->err, $wk->errDropped, $got);
            }
        } else {
            $wk->rbuf .= $got;
            $this->checkReply($wk);
            if (!isset($this->workers[get_resource_id($s)])) {
                return;
            }
        }
        if ($got === '' && feof($s)) {
            if ($s === $wk->rep) {
                $this->workerDied($wk);
            } else { // the handler closed its stdout/stderr: stop watching that pipe
                unset($this->workers[get_resource_id($s)]);
            }
        }
    }

    /** Appends a call's output up to MAX_OUTPUT bytes; the rest is only counted. */
    private static function keep(string &$buf, int &$dropped, string $got): void
    {
        $room = MAX_OUTPUT - strlen($buf);
        if ($room >= strlen($got)) {
            $buf .= $got;
            return;
        }
        if ($room > 0) {
            $buf .= substr($got, 0, $room);
        }
        $dropped += strlen($got) - max(0, $room);
    }

    /** The output for a reply: what was kept, then a marker with what was left out. */
    private static function bounded(string $buf, int $dropped, string $rest): string
    {
        self::keep($buf, $dropped, $rest);
        return $dropped > 0 ? $buf . "\u{2026}[truncated $dropped bytes]" : $buf;
    }

    private function drain($s): string
    {
        $got = '';
        while (true) {
            $data = @fread($s, 1 << 20);
            if ($data === false || $data === '') {
                return $got;
            }
            $got .= $data;
        }
    }

    private function checkReply(WorkerProc $wk): void
    {
        $len = strlen($wk->rbuf);
        if ($len < 4) {
            return;
        }
        $n = unpack('N', $wk->rbuf)[1];
        if ($len < $n + 4) {
            return;
        }
        $flag = $wk->rbuf[4];
        $json = substr($wk->rbuf, 5, $n - 1);
        $wk->rbuf = (string)substr($wk->rbuf, $n + 4);
        $loadUs = 0;
        if ($flag === 'F') { // its first reply after loading: when it loaded, the helper files it included
            $end = strpos($json, "\0");
            $list = (string)substr($json, 0, (int)$end);
            $flag = $json[$end + 1] ?? 'x';
            $json = (string)substr($json, $end + 2);
            if (($list[0] ?? '') === '@') {
                [$at, $list] = explode("\n", substr($list, 1), 2) + [1 => ''];
                // From the call's send (for a fresh worker: its spawn) to the end of loading.
                $loadUs = max(0, intdiv((int)$at - $wk->startedNs, 1000));
            }
            if ($wk->sig === $wk->pool->sig && $list !== '') {
                foreach (explode("\n", $list) as $line) {
                    [$file, $sig] = explode("\t", $line, 2) + [1 => ''];
                    $wk->pool->helpers[$file] = $sig;
                }
            }
        }
        $c = $wk->client;
        $wk->client = null;
        unset($this->timed[$wk->repId]);
        if ($c !== null) {
            $out = self::bounded($wk->out, $wk->outDropped, $this->drain($wk->o1));
            $err = self::bounded($wk->err, $wk->errDropped, $this->drain($wk->o2));
            $wk->out = $wk->err = '';
            $wk->outDropped = $wk->errDropped = 0;
            if ($out !== '') {
                $json = substr($json, 0, -1) . ',"stdout":' . json_encode($out, JSON_FLAGS) . '}';
            }
            if ($err !== '') {
                $json = substr($json, 0, -1) . ',"stderr":' . json_encode($err, JSON_FLAGS) . '}';
            }
            if ($wk->callId !== 0) {
                // The call's time in this daemon, for the engine's waterfall (`handler` stage).
                $json = substr($json, 0, -1) . ',"handler_us":' . intdiv(hrtime(true) - $wk->startedNs, 1000)
                    . ($loadUs > 0 ? ',"load_us":' . $loadUs : '') . '}';
            }
            if (strlen($json) > MAX_REPLY_BYTES) {
                $json = encode_reply(error_reply(500, 'response too large'));
            }
            if ($wk->callId === 0) {
                $this->reply($c, pack('N', strlen($json)) . $json);
            } else {
                $this->replyV2($c, $wk->callId, $json);
            }
        }
        if ($flag !== 'k' || $wk->stale || $wk->sig !== $wk->pool->sig) {
            $this->retire($wk, $flag !== 'k');
            $this->serveQueue($wk->pool);
            return;
        }
        $this->release($wk);
    }

    private function release(WorkerProc $wk): void
    {
        $pool = $wk->pool;
        $q = $this->nextQueued($pool);
        if ($q !== null) {
            $this->send($wk, ...$q);
            return;
        }
        $wk->idleSince = microtime(true);
        $pool->idle[] = $wk;
        $this->idleCount++;
        if ($this->idleCount > MAX_IDLE_TOTAL) {
            $this->reapOldestIdle();
        }
    }

    /** A pool lost a worker: start another for its queued calls, if any. */
    private function serveQueue(Pool $pool): void
    {
        while (count($pool->all) < MAX_WORKERS_PER_FN && ($q = $this->nextQueued($pool)) !== null) {
            $wk = $this->spawn($pool);
            if ($wk === null) {
                $this->replyWith($q[0], error_reply(500, 'cannot start a php worker'), $q[2]);
                continue;
            }
            $this->send($wk, ...$q);
        }
    }

    private function unregister(WorkerProc $wk): void
    {
        unset($this->timed[$wk->repId]);
        unset($this->workers[get_resource_id($wk->rep)], $this->workers[get_resource_id($wk->o1)],
            $this->workers[get_resource_id($wk->o2)], $wk->pool->all[get_resource_id($wk->rep)]);
        $i = array_search($wk, $wk->pool->idle, true);
        if ($i !== false) {
            array_splice($wk->pool->idle, $i, 1);
            $this->idleCount--;
        }
    }

    /** Stop using a worker: close its stdin (it exits on EOF), reap it later. */
    private function retire(WorkerProc $wk, bool $exiting = false): void
    {
        $this->unregister($wk);
        foreach ([$wk->in, $wk->o1, $wk->o2, $wk->rep] as $p) {
            @fclose($p);
        }
        $this->dying[] = $wk->proc;
    }

    private function workerDied(WorkerProc $wk): void
    {
        if (!isset($this->workers[get_resource_id($wk->rep)])) {
            return;
        }
        $c = $wk->client;
        $wk->client = null;
        $err = '';
        if ($c !== null) {
            $err = self::bounded($wk->err, $wk->errDropped, $this->drain($wk->o2));
        }
        $this->retire($wk, true);
        if ($c !== null) {
            $reply = error_reply(500, 'php worker exited unexpectedly');
            if ($err !== '') {
                $reply['stderr'] = $err;
            }
            $this->replyWith($c, $reply, $wk->callId);
        }
        $this->serveQueue($wk->pool);
    }

    // Runaway calls: a worker still busy past its call's deadline (receipt +
    // event.context.timeout_ms + KILL_GRACE), or whose v2 call the engine cancelled, is killed
    // (SIGKILL: a handler cannot delay it), so its CPU comes back at once; the pool starts a
    // fresh worker for the next call. The call is answered 500 (the engine no longer waits).

    private function killOverdue(float $now): void
    {
        foreach ($this->timed as $wk) {
            if ($now >= $wk->deadline) {
                $this->kill($wk);
            }
        }
    }

    private function cancelStarted(Client $c, int $id): void
    {
        foreach ($this->workers as $key => $wk) {
            if ($key === $wk->repId && $wk->client === $c && $wk->callId === $id) {
                $this->kill($wk);
                return;
            }
        }
    }

    private function kill(WorkerProc $wk): void
    {
        $c = $wk->client;
        $wk->client = null;
        @proc_terminate($wk->proc, 9);
        $this->retire($wk, true);
        if ($c !== null) {
            $this->replyWith($c, error_reply(500, 'call stopped (timed out or cancelled)'), $wk->callId);
        }
        $this->serveQueue($wk->pool);
    }

    private function reapOldestIdle(): void
    {
        $oldest = null;
        foreach ($this->pools as $pool) {
            if ($pool->idle && ($oldest === null || $pool->idle[0]->idleSince < $oldest->idleSince)) {
                $oldest = $pool->idle[0];
            }
        }
        if ($oldest !== null) {
            $this->retire($oldest);
        }
    }

    private function tick(float $now): void
    {
        foreach ($this->pools as $path => $pool) {
            while ($pool->idle && $now - $pool->idle[0]->idleSince > IDLE_SECONDS) {
                $this->retire($pool->idle[0]);
            }
            if (!$pool->all && !$pool->queue) {
                unset($this->pools[$path]);
            }
        }
        foreach ($this->dying as $i => $proc) {
            $st = @proc_get_status($proc);
            if (!$st || !$st['running']) {
                @proc_close($proc);
                unset($this->dying[$i]);
            }
        }
    }
}

function daemon_main(array $argv): void
{
    if (count($argv) !== 2) {
        fail('usage: daemon.php <socket-path>');
    }
    $path = $argv[1];
    if ($path[0] !== '/') {
        $path = getcwd() . '/' . $path;
    }
    $d = new Daemon($path);
    $d->bind();
    if (function_exists('pcntl_signal')) {
        pcntl_async_signals(true);
        pcntl_signal(SIGPIPE, SIG_IGN);
        $stop = function () use ($d) {
            $d->cleanup();
            exit(0);
        };
        pcntl_signal(SIGTERM, $stop);
        pcntl_signal(SIGINT, $stop);
    }
    $d->run();
}

// ------------------------------------------------------------------ worker side

final class Exited extends \Exception
{
}

final class Worker
{
    public string $path;
    public string $dir;
    public $rep;
    public bool $loaded = false;
    /** The source to eval instead of including the file (header() calls rewritten), or null. */
    public ?string $code = null;
    public bool $modphp = false;
    public bool $retireEach = false;
    public bool $inCall = false;
    public bool $loading = false;
    public array $req = [];
    public array $event = [];
    public string $handlerName = 'handler';
    public array $callables = [];
    public array $newFunctions = [];
    public array $baseGlobals = [];
    public array $baseServer = [];
    public array $baseEnv = [];
    public array $putEnv = [];
    public int $obBase = 0;
    public array $envCache = ['', null];
    /** `hrtime` when the handler file finished loading (reported with the first reply). */
    private int $loadedAt = 0;
    /** The daemon's signature of `fn.env.json` for the current call ('' = none). */
    private string $envSig = '';
    /** Headers set by header() in this call: lower-case name => [name, [values]]. */
    public array $headers = [];
    public static ?Worker $current = null;

    public function __construct(string $path)
    {
        $this->path = $path;
        $this->dir = dirname($path);
        $this->rep = fopen('php://fd/3', 'wb');
        self::$current = $this;
        chdir($this->dir);
        set_include_path($this->dir . PATH_SEPARATOR . get_include_path());
        ini_set('display_errors', '0');
        ini_set('log_errors', '1');
        error_reporting(E_ALL);
        $this->baseServer = $_SERVER;
        $this->baseEnv = $_ENV;
        register_shutdown_function([$this, 'onShutdown']);
    }

    /** Files required before the handler file: the function's own composer autoloader
     *  (`<fn>/vendor/autoload.php`, installed by the engine from its `composer.json`). */
    public function autoloaders(): array
    {
        $autoload = $this->dir . '/vendor/autoload.php';
        return is_file($autoload) ? [$autoload] : [];
    }

    /** The next request frame from the daemon, or null at EOF. */
    public function next(): ?array
    {
        // From the daemon: `u32 len | fn.env.json signature` ('' = none), then the call frame.
        $head = $this->readExact(4);
        if ($head === null) {
            return null;
        }
        $n = unpack('N', $head)[1];
        $sig = $n === 0 ? '' : $this->readExact($n);
        $head = $sig === null ? null : $this->readExact(4);
        if ($head === null) {
            return null;
        }
        $this->envSig = $sig;
        $n = unpack('N', $head)[1];
        $raw = $this->readExact($n);
        if ($raw === null) {
            return null;
        }
        $req = json_decode($raw, true);
        $this->req = is_array($req) ? $req : [];
        $this->inCall = true;
        $this->headers = [];
        error_clear_last();
        $this->obBase = ob_get_level();
        return $this->req;
    }

    private function readExact(int $n): ?string
    {
        $buf = '';
        while (strlen($buf) < $n) {
            $data = fread(STDIN, $n - strlen($buf));
            if ($data === false || $data === '') {
                if (feof(STDIN)) {
                    return null;
                }
                continue;
            }
            $buf .= $data;
        }
        return $buf;
    }

    /** Build the event; on failure send the error reply and return false. */
    public function prepare(): bool
    {
        $event = $this->req['event'] ?? [];
        if (!is_array($event)) {
            $event = [];
        }
        GuardedFile::$bypass = true; // the worker reads fn.env.json itself, before the handler runs
        try {
            $fileEnv = $this->fileEnv();
        } catch (\Throwable $e) {
            $this->send(error_reply(500, 'invalid fn.env.json: ' . $e->getMessage()));
            return false;
        } finally {
            GuardedFile::$bypass = false;
        }
        $env = [];
        if (isset($event['env']) && is_array($event['env'])) {
            foreach ($event['env'] as $k => $v) {
                if (!self::hidden((string)$k)) {
                    $env[$k] = $v;
                }
            }
        }
        foreach ($fileEnv as $k => $v) {
            $env[$k] = $v;
        }
        $event['env'] = $env;
        $v = $this->req['version'] ?? null;
        $event['version'] = is_string($v) && $v !== '' ? $v : 'default';
        $this->event = $event;
        $name = $this->req['handler'] ?? null;
        $this->handlerName = is_string($name) && $name !== '' ? $name : 'handler';
        return true;
    }

    private static function hidden(string $k): bool
    {
        foreach (HIDDEN_ENV_PREFIXES as $p) {
            if (strncmp($k, $p, strlen($p)) === 0) {
                return true;
            }
        }
        return false;
    }

    private function fileEnv(): array
    {
        $p = $this->dir . '/' . ENV_FILE;
        $sig = $this->envSig; // the daemon's stat of it, sent with the call
        if ($sig === '') {
            return [];
        }
        if ($this->envCache[0] === $sig) {
            return $this->envCache[1];
        }
        $text = @file_get_contents($p);
        if ($text === false) {
            throw new \RuntimeException('cannot read ' . ENV_FILE);
        }
        $raw = trim($text) === '' ? [] : json_decode($text, false, 512, JSON_THROW_ON_ERROR);
        if (is_array($raw) && $raw === []) {
            $raw = new \stdClass();
        }
        if (!($raw instanceof \stdClass)) {
            throw new \RuntimeException('fn.env.json must hold an object');
        }
        $env = [];
        foreach (get_object_vars($raw) as $k => $v) {
            $k = (string)$k;
            if (self::hidden($k)) {
                continue;
            }
            if ($v instanceof \stdClass) {
                $v = $v->value ?? null;
            }
            if ($v === null) {
                continue;
            }
            if (is_bool($v)) {
                $v = $v ? 'true' : 'false';
            } elseif (!is_string($v)) {
                $v = is_scalar($v) ? (string)$v : json_encode($v, JSON_FLAGS);
            }
            $env[$k] = $v;
        }
        $this->envCache = [$sig, $env];
        return $env;
    }

    /** Called before the file is first included (from the global scope). */
    public function beginLoad(): void
    {
        $this->loading = true;
        $this->baseGlobals = array_fill_keys(array_keys($GLOBALS), true);
        $this->newFunctions = get_defined_functions()['user'];
        $this->classCount = count(get_declared_classes());
        $src = @file_get_contents($this->path);
        if ($src !== false && stripos($src, 'header') !== false) {
            $this->code = rewrite_headers($src, $this->path);
        }
        foreach ($this->autoloaders() as $f) {
            require_once $f;
        }
        $this->setGlobals();
        ob_start();
    }

    public int $classCount = 0;

    /** After the first include: decide between handler() and mod_php style. */
    public function endLoad(?\Throwable $e): void
    {
        $this->loadedAt = hrtime(true);
        $this->loading = false;
        $this->loaded = true;
        $output = $this->collectOutput();
        if ($e !== null) {
            // The worker exits after this reply: the next call loads the file afresh.
            fwrite(STDERR, 'PHP ' . (string)$e . "\n");
            $msg = self::describe($e);
            if ($e instanceof \ParseError || $e instanceof \CompileError
                || function_exists($this->handlerName)) {
                $msg = 'failed to load handler: ' . $msg;
            }
            $this->send(error_reply(500, $msg), true);
            return;
        }
        $before = array_fill_keys($this->newFunctions, true);
        $this->newFunctions = [];
        foreach (get_defined_functions()['user'] as $f) {
            if (!isset($before[$f])) {
                $this->newFunctions[] = $f;
            }
        }
        if ($this->findCallable($this->handlerName) === null && $this->handlerName === 'handler') {
            $this->modphp = true;
            $this->retireEach = $this->newFunctions !== [] || count(get_declared_classes()) !== $this->classCount;
            $this->finishModphp($output);
            return;
        }
        if ($output !== '') {
            fwrite(STDOUT, $output);
        }
        $this->callHandler();
    }

    private function findCallable(string $name): ?array
    {
        if (array_key_exists($name, $this->callables)) {
            return $this->callables[$name];
        }
        $lname = strtolower(ltrim($name, '\\'));
        $found = null;
        foreach ($this->newFunctions as $f) {
            if ($f === $lname || str_ends_with($f, '\\' . $lname)) {
                $found = $f;
                if ($f === $lname) {
                    break;
                }
            }
        }
        if ($found === null) {
            return $this->callables[$name] = null;
        }
        $rf = new \ReflectionFunction($found);
        return $this->callables[$name] = [$found, $rf->isVariadic() ? 2 : $rf->getNumberOfParameters()];
    }

    /** A call after the first: handler() or another mod_php run. */
    public function call(): bool
    {
        if (!$this->modphp) {
            if ($this->event['env'] !== $this->envApplied) {
                $_ENV = $this->applyEnv(); // fn.env.json changed since the last call
            }
            $this->callHandler();
            return false;
        }
        $this->resetGlobals();
        $this->setGlobals();
        ob_start();
        return true; // the caller includes the file at global scope, then finishModphp()
    }

    public function callHandler(): void
    {
        $target = $this->findCallable($this->handlerName);
        if ($target === null) {
            $this->send(error_reply(500, "handler '" . $this->handlerName . "' not found"));
            return;
        }
        unset($GLOBALS['FASTFN_STATUS'], $GLOBALS['FASTFN_HEADERS']);
        ob_start();
        try {
            [$fname, $argc] = $target;
            if ($argc === 0) {
                $res = $fname();
            } elseif ($argc === 1) {
                $res = $fname($this->event);
            } else {
                $params = $this->event['params'] ?? [];
                $res = $fname($this->event, is_array($params) ? $params : []);
            }
            $output = $this->collectOutput();
            $envelope = is_array($res) && array_intersect(ENVELOPE_KEYS, array_keys($res)) !== [];
            // As FastFN's worker: what the handler echoed is the body when it returns nothing
            // (null, '', or an envelope without a body); otherwise it is the call's stdout.
            if ($output !== '' && ($res === null || $res === '')) {
                $res = $output;
                $output = '';
            } elseif ($output !== '' && $envelope && ($res['body'] ?? '') === ''
                && !isset($res['body_base64'])) {
                $res['body'] = $output;
                $output = '';
            }
            if ($output !== '') {
                fwrite(STDOUT, $output);
            }
            try {
                $reply = to_reply($res);
            } catch (HandlerError $e) {
                $reply = error_reply(500, $e->getMessage());
            }
            if ($reply['status'] < 500) {
                $reply = self::scriptVars($reply, !$envelope);
            }
            if ($this->headers && $reply['status'] < 500) {
                $reply['headers'] = $this->mergeShimHeaders($reply['headers']);
            }
        } catch (\Throwable $e) {
            $output = $this->collectOutput();
            if ($output !== '') {
                fwrite(STDOUT, $output);
            }
            fwrite(STDERR, 'PHP ' . (string)$e . "\n");
            $reply = error_reply(500, self::describe($e));
        }
        $this->send($reply);
    }

    /** FastFN's script variables: `$FASTFN_STATUS` (an int 100..599) and `$FASTFN_HEADERS`
     * (name => scalar), set by a script-style file or a handler (`global`). They win over the
     * shorthand defaults; an envelope's own status and headers win over them. */
    private static function scriptVars(array $reply, bool $override): array
    {
        $status = $GLOBALS['FASTFN_STATUS'] ?? null;
        if (is_int($status) && $status >= 100 && $status <= 599 && $override) {
            $reply['status'] = $status;
        }
        $extra = $GLOBALS['FASTFN_HEADERS'] ?? null;
        if (is_array($extra) && $extra !== []) {
            $headers = is_array($reply['headers'] ?? null) ? $reply['headers'] : [];
            $have = array_change_key_case($headers, CASE_LOWER);
            foreach ($extra as $k => $v) {
                if (!is_string($k) || trim($k) === '' || !is_scalar($v)) {
                    continue;
                }
                $lk = strtolower($k);
                if (isset($have[$lk]) && !$override) {
                    continue;
                }
                foreach (array_keys($headers) as $name) {
                    if (strtolower((string)$name) === $lk) {
                        unset($headers[$name]);
                    }
                }
                $headers[$k] = is_bool($v) ? ($v ? 'true' : 'false') : (string)$v;
            }
            $reply['headers'] = $headers;
        }
        return $reply;
    }

    private function mergeShimHeaders($headers): array
    {
        $headers = is_array($headers) ? $headers : [];
        $have = array_change_key_case($headers, CASE_LOWER);
        foreach ($this->headers as $lname => [$name, $values]) {
            if (!isset($have[$lname])) {
                $headers[$name] = count($values) === 1 ? $values[0] : $values;
            }
        }
        return $headers;
    }

    public function finishModphp(?string $output = null, bool $exiting = false): void
    {
        if ($output === null) {
            $output = $this->collectOutput();
        }
        $status = http_response_code();
        $status = is_int($status) && $status >= 100 && $status <= 599 ? $status : 200;
        $headers = [];
        foreach ($this->headers as [$name, $values]) {
            $headers[$name] = count($values) === 1 ? $values[0] : $values;
        }
        if (!isset($this->headers['content-type'])) {
            $headers['Content-Type'] = 'text/html; charset=utf-8';
        }
        $reply = self::scriptVars(['status' => $status, 'headers' => $headers], true);
        if (preg_match('//u', $output)) {
            $reply['body'] = $output;
        } else {
            $reply['is_base64'] = true;
            $reply['body_base64'] = base64_encode($output);
        }
        $this->send($reply, $exiting || $this->retireEach);
    }

    public static function describe(\Throwable $e): string
    {
        $msg = get_class($e) . ': ' . $e->getMessage();
        if ($e instanceof \ParseError || $e instanceof \CompileError) {
            $msg .= ' (' . basename($e->getFile()) . ', line ' . $e->getLine() . ')';
        }
        return $msg;
    }

    private function collectOutput(): string
    {
        $out = '';
        while (ob_get_level() > $this->obBase) {
            $out = ob_get_clean() . $out;
        }
        return $out;
    }

    /** @var array|null the event env last put in getenv() / $_ENV */
    public ?array $envApplied = null;

    /** Puts the call's env (gateway env + fn.env.json) into getenv(); returns the new $_ENV. */
    private function applyEnv(): array
    {
        foreach ($this->putEnv as $k => $_) {
            putenv($k);
        }
        $this->putEnv = [];
        $env = $this->baseEnv;
        foreach ($this->event['env'] as $k => $v) {
            if (is_string($v)) {
                $env[$k] = $v;
                putenv("$k=$v");
                $this->putEnv[$k] = true;
            }
        }
        $this->envApplied = $this->event['env'];
        return $env;
    }

    private function setGlobals(): void
    {
        $ev = $this->event;
        $method = is_string($ev['method'] ?? null) ? strtoupper($ev['method']) : 'GET';
        $get = [];
        foreach ((is_array($ev['query'] ?? null) ? $ev['query'] : []) as $k => $v) {
            $get[$k] = $v === true ? '' : $v;
        }
        $headers = is_array($ev['headers'] ?? null) ? $ev['headers'] : [];
        $body = is_string($ev['body'] ?? null) ? $ev['body'] : '';
        $ctype = $headers['content-type'] ?? '';
        $ctype = is_array($ctype) ? (string)($ctype[0] ?? '') : (string)$ctype;
        $post = [];
        if ($body !== '' && stripos($ctype, 'application/x-www-form-urlencoded') === 0) {
            parse_str($body, $post);
        }
        $cookies = $ev['session']['cookies'] ?? null;
        if (!is_array($cookies)) {
            $cookies = [];
            $raw = $headers['cookie'] ?? '';
            foreach (explode(';', is_array($raw) ? implode(';', $raw) : (string)$raw) as $part) {
                $kv = explode('=', trim($part), 2);
                if ($kv[0] !== '') {
                    $cookies[$kv[0]] = urldecode($kv[1] ?? '');
                }
            }
        }
        $rawPath = is_string($ev['raw_path'] ?? null) ? $ev['raw_path'] : (string)($ev['path'] ?? '/');
        $q = strpos($rawPath, '?');
        $server = $this->baseServer;
        $env = $this->applyEnv();
        foreach ($headers as $k => $v) {
            $server['HTTP_' . strtoupper(str_replace('-', '_', (string)$k))] = is_array($v) ? implode(', ', $v) : (string)$v;
        }
        $now = microtime(true);
        $server = array_merge($server, [
            'REQUEST_METHOD' => $method,
            'REQUEST_URI' => $rawPath,
            'QUERY_STRING' => $q === false ? '' : substr($rawPath, $q + 1),
            'PATH_INFO' => (string)($ev['path'] ?? ''),
            'SCRIPT_FILENAME' => $this->path,
            'SCRIPT_NAME' => (string)($ev['path'] ?? ''),
            'PHP_SELF' => (string)($ev['path'] ?? ''),
            'DOCUMENT_ROOT' => getenv('FN_FUNCTIONS_ROOT') ?: $this->dir,
            'SERVER_PROTOCOL' => 'HTTP/1.1',
            'GATEWAY_INTERFACE' => 'CGI/1.1',
            'REMOTE_ADDR' => (string)($ev['client']['ip'] ?? ''),
            'CONTENT_TYPE' => $ctype,
            'CONTENT_LENGTH' => (string)strlen($body),
            'REQUEST_TIME' => (int)$now,
            'REQUEST_TIME_FLOAT' => $now,
        ]);
        $GLOBALS['_GET'] = $_GET = $get;
        $GLOBALS['_POST'] = $_POST = $post;
        $GLOBALS['_COOKIE'] = $_COOKIE = $cookies;
        $GLOBALS['_REQUEST'] = $_REQUEST = array_merge($get, $post);
        $GLOBALS['_FILES'] = $_FILES = [];
        $GLOBALS['_SERVER'] = $_SERVER = $server;
        $GLOBALS['_ENV'] = $_ENV = $env;
        $GLOBALS['fastfn_event'] = $ev;
        PhpStream::$input = $body;
        http_response_code(200);
    }

    private function resetGlobals(): void
    {
        foreach (array_keys($GLOBALS) as $k) {
            if (!isset($this->baseGlobals[$k])) {
                unset($GLOBALS[$k]);
            }
        }
    }

    public bool $reported = false;

    /** The helper files this worker included from the functions root (vendor/ aside), with
     * their sig, for the daemon to watch (see Pool::$helpers); empty once reported. */
    private function helperReport(): string
    {
        $this->reported = true;
        $root = rtrim((string)getenv('FN_FUNCTIONS_ROOT'), '/') . '/';
        $real = realpath($root);
        $roots = $real === false ? [$root] : [$root, rtrim($real, '/') . '/'];
        $self = realpath($this->path);
        $lines = [];
        foreach (get_included_files() as $f) {
            if ($f === __FILE__ || $f === $self || $f === $this->path || strpos($f, '/vendor/') !== false) {
                continue;
            }
            $inside = false;
            foreach ($roots as $r) {
                $inside = $inside || strncmp($f, $r, strlen($r)) === 0;
            }
            clearstatcache(true, $f);
            $st = $inside ? @stat($f) : false;
            if ($st !== false) {
                $lines[] = $f . "\t" . $st['mtime'] . ':' . $st['size'] . ':' . $st['ino'];
            }
        }
        // First line: when loading ended (`hrtime`, the monotonic clock the daemon reads too),
        // so the daemon can tell the cold part of this first call (process start + load).
        array_unshift($lines, '@' . $this->loadedAt);
        return 'F' . implode("\n", $lines) . "\0";
    }

    public function send(array $reply, bool $exiting = false): void
    {
        $this->inCall = false;
        $raw = ($this->reported || !$this->loaded ? '' : $this->helperReport())
            . ($exiting ? 'x' : 'k') . encode_reply($reply);
        $frame = pack('N', strlen($raw)) . $raw;
        for ($off = 0, $len = strlen($frame); $off < $len;) {
            $n = fwrite($this->rep, $off === 0 ? $frame : substr($frame, $off));
            if ($n === false || $n === 0) {
                exit(0);
            }
            $off += $n;
        }
        if ($exiting) {
            exit(0);
        }
    }

    /** exit() or a fatal error during a call: reply 500 (or the output, mod_php exit()). */
    public function onShutdown(): void
    {
        if (!$this->inCall) {
            return;
        }
        $err = error_get_last();
        $output = $this->collectOutput();
        if ($err !== null && ($err['type'] & FATAL)) {
            if ($output !== '') {
                fwrite(STDOUT, $output);
            }
            $msg = 'fatal error: ' . $err['message'];
            if ($this->loading) {
                $msg = 'failed to load handler: ' . $msg;
            }
            $this->send(error_reply(500, $msg), true);
        } elseif ($this->modphp || ($this->loading && $this->findCallableAfterExit() === null)) {
            $this->modphp = true;
            $this->finishModphp($output, true);
        } else {
            if ($output !== '') {
                fwrite(STDOUT, $output);
            }
            $this->send(error_reply(500, 'handler called exit()'), true);
        }
    }

    private function findCallableAfterExit(): ?array
    {
        return function_exists($this->handlerName) ? [$this->handlerName, 1] : null;
    }
}

final class HandlerError extends \Exception
{
}

function has_header(array $headers, string $lname): bool
{
    foreach ($headers as $k => $_) {
        if (strtolower((string)$k) === $lname) {
            return true;
        }
    }
    return false;
}

function clean_headers($headers): array
{
    if ($headers === null) {
        return [];
    }
    if ($headers instanceof \stdClass) {
        $headers = get_object_vars($headers);
    }
    if (!is_array($headers)) {
        throw new HandlerError('handler returned invalid headers (not an object)');
    }
    $out = [];
    foreach ($headers as $k => $v) {
        if ($v === null) {
            continue;
        }
        if (is_array($v)) {
            $out[(string)$k] = array_map('FastFN\PhpDaemon\header_string', array_values($v));
        } else {
            $out[(string)$k] = header_string($v);
        }
    }
    return $out;
}

function header_string($v): string
{
    if (is_bool($v)) {
        return $v ? 'true' : 'false';
    }
    if (is_scalar($v) || $v === null) {
        return (string)$v;
    }
    return json_encode($v, JSON_FLAGS);
}

function status_of($value): int
{
    if ($value === null) {
        return 200;
    }
    if (is_int($value)) {
        $status = $value;
    } elseif (is_string($value) && ctype_digit(trim($value))) {
        $status = (int)trim($value);
    } elseif (is_float($value) && floor($value) === $value) {
        $status = (int)$value;
    } else {
        throw new HandlerError('handler returned an invalid status: ' . var_export($value, true));
    }
    if ($status < 100 || $status > 599) {
        throw new HandlerError('handler returned an invalid status: ' . var_export($value, true));
    }
    return $status;
}

function text_type(string $s): string
{
    return substr(ltrim($s), 0, 1) === '<' ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
}

function json_body($v): string
{
    $raw = json_encode($v, JSON_FLAGS);
    if ($raw === false) {
        throw new HandlerError('handler returned a value that cannot be encoded: ' . json_last_error_msg());
    }
    return $raw;
}

function with_body(array $reply, $body, bool $textDefault): array
{
    $headers = $reply['headers'];
    if ($body === null) {
        $reply['body'] = '';
    } elseif (is_string($body)) {
        if (preg_match('//u', $body)) {
            if ($textDefault && !has_header($headers, 'content-type')) {
                $reply['headers']['Content-Type'] = text_type($body);
            }
            $reply['body'] = $body;
        } else {
            if (!has_header($headers, 'content-type')) {
                $reply['headers']['Content-Type'] = 'application/octet-stream';
            }
            $reply['is_base64'] = true;
            $reply['body_base64'] = base64_encode($body);
        }
    } else {
        if (!has_header($headers, 'content-type')) {
            $reply['headers']['Content-Type'] = 'application/json';
        }
        $reply['body'] = json_body($body);
    }
    return $reply;
}

function envelope(array $d): array
{
    $status = $d['status'] ?? null;
    if ($status === null) {
        $status = $d['statusCode'] ?? null;
    }
    $reply = ['status' => status_of($status), 'headers' => clean_headers($d['headers'] ?? null)];
    $b64 = $d['body_base64'] ?? null;
    $body = $d['body'] ?? null;
    if ($b64 !== null || !empty($d['is_base64']) || !empty($d['isBase64Encoded'])) {
        if ($b64 === null) {
            $b64 = $body ?? '';
        }
        if (!is_string($b64)) {
            throw new HandlerError('handler returned a base64 body that is not a string');
        }
        $reply['is_base64'] = true;
        $reply['body_base64'] = $b64;
    } else {
        $reply = with_body($reply, $body, false);
    }
    if (array_key_exists('proxy', $d)) {
        $reply['proxy'] = $d['proxy'];
    }
    return $reply;
}

/** Map a handler's return value to a reply (contract §4.1, php row). */
function to_reply($res): array
{
    if (is_array($res)) {
        foreach (ENVELOPE_KEYS as $k) {
            if (array_key_exists($k, $res)) {
                return envelope($res);
            }
        }
        return ['status' => 200, 'headers' => ['Content-Type' => 'application/json'], 'body' => json_body($res)];
    }
    if (is_string($res)) {
        return with_body(['status' => 200, 'headers' => []], $res, true);
    }
    if ($res === null) {
        return ['status' => 200, 'headers' => [], 'body' => ''];
    }
    return ['status' => 200, 'headers' => ['Content-Type' => 'application/json'], 'body' => json_body($res)];
}

/**
 * php-cli ignores header() (headers_list() stays empty), so calls to header(),
 * headers_list() and header_remove() in the handler file are rewritten, token by token, to
 * the fastfn_* shims below. __FILE__/__DIR__ are replaced by the file's real values (the
 * rewritten source is eval'd). Line numbers are kept. Only the handler file is rewritten.
 */
function rewrite_headers(string $src, string $path): ?string
{
    $map = ['header' => '\fastfn_header', 'headers_list' => '\fastfn_headers_list',
        'header_remove' => '\fastfn_header_remove', 'headers_sent' => '\fastfn_headers_sent'];
    $tokens = @token_get_all($src);
    $out = '';
    $changed = false;
    $prev = null; // previous significant token
    $php = false;  // the source starts with an open tag
    $count = count($tokens);
    for ($i = 0; $i < $count; $i++) {
        $t = $tokens[$i];
        if (is_array($t)) {
            [$id, $text] = $t;
            if ($id === T_STRING || $id === T_NAME_FULLY_QUALIFIED) {
                $lname = strtolower(ltrim($text, '\\'));
                if (isset($map[$lname]) && !in_array($prev, [T_OBJECT_OPERATOR, T_NULLSAFE_OBJECT_OPERATOR,
                        T_DOUBLE_COLON, T_FUNCTION, T_NEW, T_CONST, T_USE], true)) {
                    $j = $i + 1;
                    while ($j < $count && is_array($tokens[$j]) && in_array($tokens[$j][0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)) {
                        $j++;
                    }
                    if ($j < $count && $tokens[$j] === '(') {
                        $text = $map[$lname];
                        $changed = true;
                    }
                }
            } elseif ($id === T_OPEN_TAG && $i === 0) {
                // eval() starts in PHP mode; dropping the open tag (rather than prefixing a close tag) keeps a
                // leading declare(strict_types=1) the first statement. Newlines keep lines.
                $text = str_repeat("\n", substr_count($text, "\n"));
                $php = true;
            } elseif ($id === T_FILE) {
                $text = var_export($path, true);
            } elseif ($id === T_DIR) {
                $text = var_export(dirname($path), true);
            }
            $out .= $text;
            if (!in_array($id, [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)) {
                $prev = $id;
            }
        } else {
            $out .= $t;
            $prev = $t;
        }
    }
    return $changed ? ($php ? $out : '?>' . $out) : null;
}

/** `php://input` reads the request body; every other php:// stream is the real one. */
final class PhpStream
{
    public static string $input = '';
    public $context;
    private $inner = null;
    private int $pos = 0;
    private bool $isInput = false;

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        if (strtolower($path) === 'php://input') {
            $this->isInput = true;
            return true;
        }
        stream_wrapper_restore('php');
        try {
            $this->inner = @fopen($path, $mode);
        } finally {
            stream_wrapper_unregister('php');
            stream_wrapper_register('php', self::class);
        }
        return $this->inner !== false;
    }

    public function stream_read(int $n)
    {
        if ($this->isInput) {
            $chunk = (string)substr(self::$input, $this->pos, $n);
            $this->pos += strlen($chunk);
            return $chunk;
        }
        return fread($this->inner, $n);
    }

    public function stream_write(string $data)
    {
        return $this->isInput ? 0 : fwrite($this->inner, $data);
    }

    public function stream_eof(): bool
    {
        return $this->isInput ? $this->pos >= strlen(self::$input) : feof($this->inner);
    }

    public function stream_tell(): int
    {
        return $this->isInput ? $this->pos : (int)ftell($this->inner);
    }

    public function stream_seek(int $offset, int $whence): bool
    {
        if (!$this->isInput) {
            return fseek($this->inner, $offset, $whence) === 0;
        }
        $len = strlen(self::$input);
        $to = $whence === SEEK_SET ? $offset : ($whence === SEEK_CUR ? $this->pos + $offset : $len + $offset);
        if ($to < 0) {
            return false;
        }
        $this->pos = $to;
        return true;
    }

    public function stream_flush(): bool
    {
        return $this->isInput ? true : fflush($this->inner);
    }

    public function stream_truncate(int $size): bool
    {
        return $this->isInput ? false : ftruncate($this->inner, $size);
    }

    public function stream_stat()
    {
        return $this->isInput ? ['size' => strlen(self::$input)] : fstat($this->inner);
    }

    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool
    {
        return false;
    }

    public function stream_close(): void
    {
        if ($this->inner) {
            fclose($this->inner);
        }
    }
}

/**
 * The `file` stream wrapper of a strict worker: refuses the protected platform files (which
 * open_basedir cannot single out inside the function folder) and passes everything else to the
 * real plain-files wrapper, where open_basedir applies.
 */
final class GuardedFile
{
    public static bool $bypass = false;
    public $context;
    private $h = null;
    private $d = null;

    private static function denied(string $path): bool
    {
        if (self::$bypass) {
            return false;
        }
        $p = strncasecmp($path, 'file://', 7) === 0 ? substr($path, 7) : $path;
        return in_array(basename($p), PROTECTED_FILES, true);
    }

    /** Runs $f with the real wrapper in place. */
    private static function real(callable $f)
    {
        stream_wrapper_restore('file');
        try {
            return $f();
        } finally {
            stream_wrapper_unregister('file');
            stream_wrapper_register('file', self::class);
        }
    }

    private static function refuse(string $path): bool
    {
        trigger_error("strict sandbox: $path is a protected platform file", E_USER_WARNING);
        return false;
    }

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        if (self::denied($path)) {
            return ($options & STREAM_REPORT_ERRORS) ? self::refuse($path) : false;
        }
        $this->h = self::real(fn() => ($options & STREAM_USE_PATH) ? @fopen($path, $mode, true) : @fopen($path, $mode));
        return $this->h !== false;
    }

    public function stream_read(int $n)
    {
        return fread($this->h, $n);
    }

    public function stream_write(string $data)
    {
        return fwrite($this->h, $data);
    }

    public function stream_eof(): bool
    {
        return feof($this->h);
    }

    public function stream_tell()
    {
        return ftell($this->h);
    }

    public function stream_seek(int $offset, int $whence): bool
    {
        return fseek($this->h, $offset, $whence) === 0;
    }

    public function stream_flush(): bool
    {
        return fflush($this->h);
    }

    public function stream_stat()
    {
        return fstat($this->h);
    }

    public function stream_lock($op): bool
    {
        return $op === 0 ? false : flock($this->h, $op);
    }

    public function stream_truncate(int $size): bool
    {
        return ftruncate($this->h, $size);
    }

    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool
    {
        return false;
    }

    public function stream_close(): void
    {
        fclose($this->h);
    }

    public function stream_metadata(string $path, int $option, $value): bool
    {
        if (self::denied($path)) {
            return self::refuse($path);
        }
        return self::real(function () use ($path, $option, $value) {
            switch ($option) {
                case STREAM_META_TOUCH:
                    return @touch($path, ...array_slice((array)$value, 0, 2));
                case STREAM_META_OWNER_NAME:
                case STREAM_META_OWNER:
                    return @chown($path, $value);
                case STREAM_META_GROUP_NAME:
                case STREAM_META_GROUP:
                    return @chgrp($path, $value);
                case STREAM_META_ACCESS:
                    return @chmod($path, $value);
            }
            return false;
        });
    }

    public function url_stat(string $path, int $flags)
    {
        if (self::denied($path)) {
            return false;
        }
        return self::real(fn() => ($flags & STREAM_URL_STAT_LINK) ? @lstat($path) : @stat($path));
    }

    public function unlink(string $path): bool
    {
        return self::denied($path) ? self::refuse($path) : self::real(fn() => @unlink($path));
    }

    public function rename(string $from, string $to): bool
    {
        if (self::denied($from) || self::denied($to)) {
            return self::refuse(self::denied($from) ? $from : $to);
        }
        return self::real(fn() => @rename($from, $to));
    }

    public function mkdir(string $path, int $mode, int $options): bool
    {
        return self::real(fn() => @mkdir($path, $mode, (bool)($options & STREAM_MKDIR_RECURSIVE)));
    }

    public function rmdir(string $path, int $options): bool
    {
        return self::real(fn() => @rmdir($path));
    }

    public function dir_opendir(string $path, int $options): bool
    {
        $this->d = self::real(fn() => @opendir($path));
        return $this->d !== false;
    }

    public function dir_readdir()
    {
        return readdir($this->d);
    }

    public function dir_rewinddir(): bool
    {
        rewinddir($this->d);
        return true;
    }

    public function dir_closedir(): bool
    {
        closedir($this->d);
        return true;
    }
}

function worker_start(string $path, bool $strict = false): Worker
{
    $w = new Worker($path);
    stream_wrapper_unregister('php');
    stream_wrapper_register('php', PhpStream::class);
    if ($strict) {
        stream_wrapper_unregister('file');
        stream_wrapper_register('file', GuardedFile::class);
    }
    return $w;
}

} // namespace FastFN\PhpDaemon

namespace {

/** header() for handler files (calls to header() in the handler file are rewritten to this). */
function fastfn_header(string $header, bool $replace = true, int $response_code = 0): void
{
    $w = \FastFN\PhpDaemon\Worker::$current;
    if ($w === null) {
        return;
    }
    if (preg_match('~^HTTP/\S+\s+(\d{3})~i', $header, $m)) {
        http_response_code((int)$m[1]);
        return;
    }
    $pos = strpos($header, ':');
    if ($pos === false) {
        return;
    }
    $name = trim(substr($header, 0, $pos));
    $value = trim(substr($header, $pos + 1));
    $lname = strtolower($name);
    if ($replace || !isset($w->headers[$lname])) {
        $w->headers[$lname] = [$name, [$value]];
    } else {
        $w->headers[$lname][1][] = $value;
    }
    if ($response_code > 0) {
        http_response_code($response_code);
    } elseif ($lname === 'location') {
        $code = http_response_code();
        if (!is_int($code) || ($code !== 201 && ($code < 300 || $code > 399))) {
            http_response_code(302);
        }
    }
}

function fastfn_headers_list(): array
{
    $w = \FastFN\PhpDaemon\Worker::$current;
    $out = [];
    foreach ($w ? $w->headers : [] as [$name, $values]) {
        foreach ($values as $v) {
            $out[] = "$name: $v";
        }
    }
    return $out;
}

function fastfn_header_remove(?string $name = null): void
{
    $w = \FastFN\PhpDaemon\Worker::$current;
    if ($w === null) {
        return;
    }
    if ($name === null) {
        $w->headers = [];
    } else {
        unset($w->headers[strtolower($name)]);
    }
}

function fastfn_headers_sent(&$file = null, &$line = null): bool
{
    return false;
}

/** The raw request body (also readable as php://input). */
function fastfn_input(): string
{
    return \FastFN\PhpDaemon\PhpStream::$input;
}

if (PHP_SAPI === 'cli' && isset($argv[1]) && $argv[1] === '--worker' && isset($argv[2])) {
    // Worker mode. The handler file is included here, at global scope, so its top-level
    // variables are real globals (as under mod_php / a plain `php file.php`).
    $__fastfn = \FastFN\PhpDaemon\worker_start($argv[2], ($argv[3] ?? '') === '--strict');
    unset($argv, $argc);
    while ($__fastfn->next() !== null) {
        if (!$__fastfn->prepare()) {
            continue;
        }
        if (!$__fastfn->loaded) {
            $__fastfn->beginLoad();
            try {
                if ($__fastfn->code !== null) {
                    eval($__fastfn->code);
                } else {
                    include $__fastfn->path;
                }
                $__fastfn->endLoad(null);
            } catch (\Throwable $__fastfn_e) {
                $__fastfn->endLoad($__fastfn_e);
                unset($__fastfn_e);
            }
        } elseif ($__fastfn->call()) {
            try {
                if ($__fastfn->code !== null) {
                    eval($__fastfn->code);
                } else {
                    include $__fastfn->path;
                }
                $__fastfn->finishModphp();
            } catch (\Throwable $__fastfn_e) {
                fwrite(STDERR, 'PHP ' . (string)$__fastfn_e . "\n");
                while (ob_get_level() > $__fastfn->obBase) {
                    ob_end_clean();
                }
                $__fastfn->send(\FastFN\PhpDaemon\error_reply(500,
                    \FastFN\PhpDaemon\Worker::describe($__fastfn_e)), $__fastfn->retireEach);
                unset($__fastfn_e);
            }
        }
    }
    exit(0);
}

if (PHP_SAPI === 'cli' && isset($argv)) {
    \FastFN\PhpDaemon\daemon_main($argv);
}

} // namespace
