#!/usr/bin/env bash
# CPU time per call of the engine and of the daemon, through the gateway (wrk, c=16) and on
# the daemon's own socket (frameload, c=16): what bounds throughput on a machine whose cores
# are shared by the load generator, the gateway and the daemon (docs/benchmarks.md).
# Reads utime + stime from /proc/<pid>/stat before and after each run. Release build.
#   benches/cpu-per-call.sh [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
PORT=${BENCH_PORT:-18181}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
cargo build --release --bin fastfn --bench frameload >/dev/null 2>&1
LOAD=$(ls -t target/release/deps/frameload-* | grep -v '\.d$' | head -1)
BASE=$(mktemp -d /tmp/ffcpu.XXXX)
FN_SOCKET_BASE_DIR=$BASE FN_HOST_PORT=$PORT FN_HOT_RELOAD=0 FN_RUNTIMES=python,node,php \
  ./target/release/fastfn run fixtures/bench >/dev/null 2>&1 &
ENGINE=$!
trap 'kill $ENGINE 2>/dev/null; wait $ENGINE 2>/dev/null; rm -rf $BASE' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/_fn/health" >/dev/null && break; sleep 0.1; done
SOCKDIR=$(ls -d $BASE/s-*)
HZ=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
# µs per call from a tick difference and a call count.
per_call() { python3 -c "print(f'{$1 * 1e6 / $HZ / max($2, 1):.1f}')"; }
printf "%-7s %-8s %9s %12s %12s\n" runtime path calls "engine µs" "daemon µs"
for rt in node python php; do
  case $rt in
    python) entry=hellopy.py; url=hellopy; pat="python3? .*daemon.py";;
    node) entry=hellojs.js; url=hellojs; pat="node .*daemon";;
    php) entry=hellophp.php; url=hellophp; pat="php.*daemon.php";;
  esac
  curl -sf "http://127.0.0.1:$PORT/$url" >/dev/null
  daemons=$(pgrep -f "$pat" | tr '\n' ' ')
  e0=$(ticks $ENGINE); d0=$(ticks $daemons)
  calls=$(wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$PORT/$url" | awk '/requests in/{print $1}')
  e1=$(ticks $ENGINE); d1=$(ticks $daemons)
  printf "%-7s %-8s %9s %12s %12s\n" $rt gateway "$calls" "$(per_call $((e1 - e0)) "$calls")" "$(per_call $((d1 - d0)) "$calls")"
  daemons=$(pgrep -f "$pat" | tr '\n' ' ')
  d0=$(ticks $daemons)
  calls=$("$LOAD" "$SOCKDIR/fn-$rt.sock" $rt $entry 16 "$SECS" | python3 -c "import json,sys; d=json.load(sys.stdin); print(int(d['rps'] * $SECS))")
  d1=$(ticks $daemons)
  printf "%-7s %-8s %9s %12s %12s\n" $rt direct "$calls" - "$(per_call $((d1 - d0)) "$calls")"
done
