#!/usr/bin/env bash
# Rust and Go handlers through the gateway: cold build (first call on a fresh copy, nothing
# cached in the function folder) and warm calls (wrk, c=1 and c=16). Medians of RUNS runs.
#   benches/compiled.sh [RUNS=3] [SECONDS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-4}
PORT=${BENCH_PORT:-18090}
cargo build --release --bin fastfn >/dev/null 2>&1
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for rt in rust go; do
  : > /tmp/ffc.cold; : > /tmp/ffc.c1; : > /tmp/ffc.c16
  for _ in $(seq "$RUNS"); do
    WORK=$(mktemp -d /tmp/ffcomp.XXXX)
    cp -r fixtures/compiled "$WORK/p"
    FN_SOCKET_BASE_DIR=$WORK/s FN_HOST_PORT=$PORT FN_HOT_RELOAD=0 FN_RUNTIMES=$rt \
      ./target/release/fastfn run "$WORK/p" >/dev/null 2>&1 &
    ENGINE=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/_fn/health" >/dev/null && break; sleep 0.1; done
    t0=$(date +%s%N)
    curl -sf "http://127.0.0.1:$PORT/hello" >/dev/null
    echo $(( ($(date +%s%N) - t0) / 1000000 )) >> /tmp/ffc.cold
    for c in 1 16; do
      wrk -t1 -c$c -d${SECS}s --latency "http://127.0.0.1:$PORT/hello" | awk -v f=/tmp/ffc.c$c '
        /^ +50%/ {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v=v*1000} else {sub(/us/,"",v)}; p50=v}
        /Requests\/sec/ {rps=$2}
        END {print rps, p50 >> f}'
    done
    kill $ENGINE; wait $ENGINE 2>/dev/null || true
    rm -rf "$WORK"
  done
  echo "$rt: cold first call $(median < /tmp/ffc.cold) ms (runs: $(paste -sd, /tmp/ffc.cold)); warm c=1 $(cut -d' ' -f1 /tmp/ffc.c1 | median) req/s, p50 $(cut -d' ' -f2 /tmp/ffc.c1 | median) us; warm c=16 $(cut -d' ' -f1 /tmp/ffc.c16 | median) req/s"
done
