#!/usr/bin/env bash
# Gateway vs direct: requests/s and p50/p99 for trivial python and node handlers, at c=1 and
# c=16, through the gateway (wrk) and on the daemon's own socket (frameload). Each figure is
# the median of RUNS runs; gateway and direct runs alternate so both see the same machine.
#   benches/gateway.sh [RUNS=3] [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
BENCH_RUNTIMES=${BENCH_RUNTIMES:-node,python,php,lua}
SECS=${2:-5}
PORT=${BENCH_PORT:-18080}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
cargo build --release --bin fastfn --bench frameload --bench luadirect --bench barehello >/dev/null 2>&1
LOAD=$(ls -t target/release/deps/frameload-* | grep -v '\.d$' | head -1)
BARE=$(ls -t target/release/deps/barehello-* | grep -v '\.d$' | head -1)
LUALOAD=$(ls -t target/release/deps/luadirect-* | grep -v '\.d$' | head -1)
BASE=$(mktemp -d /tmp/ffbench.XXXX)
FN_GATEWAY_THREADS=${FN_GATEWAY_THREADS:-} FN_SOCKET_BASE_DIR=$BASE FN_HOST_PORT=$PORT FN_HOT_RELOAD=0 FN_RUNTIMES=$BENCH_RUNTIMES \
  ./target/release/fastfn run fixtures/bench >/dev/null 2>&1 &
ENGINE=$!
# Everything started below joins PIDS; the trap reads it when the script ends.
PIDS=$ENGINE
trap 'kill $PIDS 2>/dev/null; wait $ENGINE 2>/dev/null; rm -rf $BASE' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/_fn/health" >/dev/null && break; sleep 0.1; done
SOCKDIR=$(ls -d $BASE/s-*)
source benches/wrk.sh

direct_run() { # runtime entry conc
  if [ "$1" = lua ]; then "$LUALOAD" fixtures/bench "$2" "$3" "$SECS"; else "$LOAD" "$SOCKDIR/fn-$1.sock" "$1" "$2" "$3" "$SECS"; fi | python3 -c '
import json,sys; d=json.load(sys.stdin); print(d["rps"], d["p50_us"], d["p99_us"], d["errors"])'
}
# One result line: medians of a file of "req/s p50 p99 errors" lines, and its runs' req/s.
row() { # label c kind file
  printf "%-8s %-4s %-9s %9s %8s %8s   runs: %s\n" "$1" "$2" "$3" \
    "$(cut -d' ' -f1 "$4" | median)" "$(cut -d' ' -f2 "$4" | median)" "$(cut -d' ' -f3 "$4" | median)" \
    "$(cut -d' ' -f1 "$4" | paste -sd, -)"
}
# Each kind=url in turn at c=16, RUNS times (alternating, so all see the same machine), then
# a row per kind.
alternate() { # label kind=url...
  local label=$1 i pair
  shift
  i=0; for pair in "$@"; do : > /tmp/ffb.$i; i=$((i + 1)); done
  for _ in $(seq "$RUNS"); do
    i=0; for pair in "$@"; do wrk_run "${pair#*=}" 16 >> /tmp/ffb.$i; i=$((i + 1)); done
  done
  i=0; for pair in "$@"; do row "$label" 16 "${pair%%=*}" /tmp/ffb.$i; i=$((i + 1)); done
}

printf "%-8s %-4s %-9s %9s %8s %8s\n" runtime c path "req/s" "p50_us" "p99_us"
for rt in ${BENCH_RUNTIMES//,/ }; do
  case $rt in node) name=hellojs; ext=js;; python) name=hellopy; ext=py;; php) name=hellophp; ext=php;; lua) name=hellolua; ext=lua;; esac
  entry=$name.$ext
  url="http://127.0.0.1:$PORT/$name"
  curl -sf "$url" >/dev/null
  for c in 1 16; do
    : > /tmp/ffb.g; : > /tmp/ffb.d
    for _ in $(seq "$RUNS"); do
      wrk_run "$url" "$c" >> /tmp/ffb.g
      direct_run "$rt" "$entry" "$c" >> /tmp/ffb.d
    done
    for kind in gateway direct; do
      f=/tmp/ffb.${kind:0:1}
      row "$rt" "$c" "$kind" "$f"
    done
  done
done

# The gateway's own floor: /nope (a 404 the router decides) against a bare hyper server that
# answers a constant 404, and the same bare server configured as the gateway's listener is
# (200 header lines, header-read timeout): same wrk, same run, alternating.
BARE_PORT=$((PORT + 1))
"$BARE" "$BARE_PORT" >/dev/null 2>&1 &
PIDS="$PIDS $!"
BARE_HEADERS=1 BARE_TIMER=1 "$BARE" $((PORT + 2)) >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
alternate 404 "gateway=http://127.0.0.1:$PORT/nope" "bare=http://127.0.0.1:$BARE_PORT/nope" \
  "bare-cfg=http://127.0.0.1:$((PORT + 2))/nope"

# A project with static assets (fixtures/bench-assets: `public/` plus hellojs): every function
# call first looks for a file of its path (§2.6 step 1). The node call there against the one on
# the project without assets, and an asset GET, in the same run.
if [[ ",$BENCH_RUNTIMES," == *",node,"* ]]; then
  APORT=$((PORT + 3))
  FN_SOCKET_BASE_DIR=$BASE FN_HOST_PORT=$APORT FN_HOT_RELOAD=0 FN_RUNTIMES=node \
    ./target/release/fastfn run fixtures/bench-assets >/dev/null 2>&1 &
  ASSETS_ENGINE=$!
  PIDS="$PIDS $ASSETS_ENGINE"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$APORT/hellojs" >/dev/null && break; sleep 0.1; done
  alternate assets "no-assets=http://127.0.0.1:$PORT/hellojs" "assets-on=http://127.0.0.1:$APORT/hellojs" \
    "asset-get=http://127.0.0.1:$APORT/index.html"
  kill $ASSETS_ENGINE 2>/dev/null; wait $ASSETS_ENGINE 2>/dev/null || true
fi

# Above the gate: hellopy has 20 worker-pool slots (the default max_concurrency). At c=64 the
# extra clients get 429s and come back (paced: docs/compat.md); the rate of 200s must hold.
# benches/gate-ab.sh compares builds on this alone.
if [[ ",$BENCH_RUNTIMES," == *",python,"* ]]; then
  : > /tmp/ffb.g; : > /tmp/ffb.d
  for _ in $(seq "$RUNS"); do
    wrk_run "http://127.0.0.1:$PORT/hellopy" 16 | ok_rate >> /tmp/ffb.g
    wrk_run "http://127.0.0.1:$PORT/hellopy" 64 | ok_rate >> /tmp/ffb.d
  done
  printf "%-8s %-4s %-8s %10s   runs: %s\n" gate 16 "200s/s" "$(median < /tmp/ffb.g)" "$(paste -sd, /tmp/ffb.g)"
  printf "%-8s %-4s %-8s %10s   runs: %s\n" gate 64 "200s/s" "$(median < /tmp/ffb.d)" "$(paste -sd, /tmp/ffb.d)"
fi
