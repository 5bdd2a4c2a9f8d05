#!/usr/bin/env bash
# The request inspector's recording overhead (issue 12): requests/s at c=16 through the
# gateway, for a trivial handler and for a gateway 404 (the cheapest answer), in three modes:
#   off        FN_INSPECT_REQUESTS=0: no request log at all (the reference)
#   recording  the default with no dashboard open: one small entry per request in the ring
#   dashboard  a client on /_fn/events: headers and bodies captured, one live event each
# Each mode runs RUNS times, alternating, on its own engine (release build); the figure is
# the median, and the overhead is against `off`. Beside requests/s, the engine's own CPU time
# per request (utime + stime of its process over the run, divided by the requests wrk
# counted): far less sensitive than requests/s to other work on the machine. Run on a quiet
# machine:
#   benches/inspect.sh [RUNS=5] [SECONDS=5]
# Needs wrk and curl. BENCH_RUNTIME (default lua: in-process, so the gateway's own cost is
# the largest share) picks the handler from fixtures/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SECS=${2:-5}
PORT=${BENCH_PORT:-18090}
RT=${BENCH_RUNTIME:-lua}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is missing" >&2; exit 2; }
case $RT in node) NAME=hellojs;; python) NAME=hellopy;; php) NAME=hellophp;; lua) NAME=hellolua;; *) echo "BENCH_RUNTIME: node, python, php or lua" >&2; exit 2;; esac
# FASTFN_BIN: another binary (a smoke run with the debug build: the figures mean nothing then).
BIN=${FASTFN_BIN:-target/release/fastfn}
[ -n "${FASTFN_BIN:-}" ] || cargo build --release --bin fastfn >/dev/null 2>&1
BASE=$(mktemp -d /tmp/ffinspect.XXXX)
ENGINE=
SSE=
stop() {
  [ -n "$SSE" ] && kill "$SSE" 2>/dev/null && wait "$SSE" 2>/dev/null || true
  [ -n "$ENGINE" ] && kill "$ENGINE" 2>/dev/null && wait "$ENGINE" 2>/dev/null || true
  ENGINE= SSE=
}
trap 'stop; rm -rf $BASE' EXIT

start() { # mode
  local requests=5000
  [ "$1" = off ] && requests=0
  FN_INSPECT_REQUESTS=$requests FN_SOCKET_BASE_DIR=$BASE FN_HOST_PORT=$PORT FN_HOT_RELOAD=0 FN_RUNTIMES=$RT \
    "$BIN" run fixtures/bench >/dev/null 2>&1 &
  ENGINE=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/_fn/health" >/dev/null && break; sleep 0.1; done
  # Another engine on the port would answer in its place (and its CPU would not be counted).
  kill -0 "$ENGINE" 2>/dev/null || { echo "the engine exited: is port $PORT in use? (BENCH_PORT)" >&2; exit 1; }
  curl -sf "http://127.0.0.1:$PORT/$NAME" >/dev/null
  if [ "$1" = dashboard ]; then
    curl -sN "http://127.0.0.1:$PORT/_fn/events" >/dev/null &
    SSE=$!
    sleep 0.3
  fi
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$ENGINE/stat"; }
TCK=$(getconf CLK_TCK)
measure() { # url file: appends req/s to FILE and engine CPU µs per request to FILE.cpu
  local t0 t1 out
  t0=$(cpu_ticks)
  out=$(wrk -t1 -c16 -d"${SECS}s" "$1")
  t1=$(cpu_ticks)
  echo "$out" | awk '/Requests\/sec/ {printf "%.0f\n", $2}' >> "$2"
  echo "$out" | awk -v d=$((t1 - t0)) -v hz="$TCK" '/requests in/ {printf "%.2f\n", d * 1e6 / hz / $1}' >> "$2.cpu"
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) * 100 / a }'; }
more() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 100 / a }'; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

for mode in off recording dashboard; do
  for f in fn 404; do : > "$BASE/$mode.$f"; : > "$BASE/$mode.$f.cpu"; done
done
for _ in $(seq "$RUNS"); do
  for mode in off recording dashboard; do
    start "$mode"
    measure "http://127.0.0.1:$PORT/$NAME" "$BASE/$mode.fn"
    measure "http://127.0.0.1:$PORT/no-such-route" "$BASE/$mode.404"
    stop
  done
done

printf "%-10s %12s %9s %12s %9s\n" mode "$NAME req/s" overhead "404 req/s" overhead
ref_fn=$(median < "$BASE/off.fn"); ref_404=$(median < "$BASE/off.404")
for mode in off recording dashboard; do
  fn=$(median < "$BASE/$mode.fn"); nf=$(median < "$BASE/$mode.404")
  printf "%-10s %12s %8.1f%% %12s %8.1f%%   runs: %s | %s\n" "$mode" "$fn" \
    "$(pct "$ref_fn" "$fn")" "$nf" "$(pct "$ref_404" "$nf")" \
    "$(paste -sd, "$BASE/$mode.fn")" "$(paste -sd, "$BASE/$mode.404")"
done
echo
printf "%-10s %12s %9s %12s %9s   (engine CPU µs per request)\n" mode "$NAME µs" more "404 µs" more
ref_fn=$(median < "$BASE/off.fn.cpu"); ref_404=$(median < "$BASE/off.404.cpu")
for mode in off recording dashboard; do
  fn=$(median < "$BASE/$mode.fn.cpu"); nf=$(median < "$BASE/$mode.404.cpu")
  printf "%-10s %12s %8.1f%% %12s %8.1f%%   runs: %s | %s\n" "$mode" "$fn" \
    "$(more "$ref_fn" "$fn")" "$nf" "$(more "$ref_404" "$nf")" \
    "$(paste -sd, "$BASE/$mode.fn.cpu")" "$(paste -sd, "$BASE/$mode.404.cpu")"
done
