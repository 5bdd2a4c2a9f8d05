#!/usr/bin/env bash
# Above the gate, A/B: the rate of 200s and of 429s on hellopy (20 worker-pool slots) at c=16
# and c=64, for two or more engine binaries, alternating them ROUNDS times so that each sees
# the same machine. Compare a change against the build before it:
#   cp target/release/fastfn /tmp/fastfn-before; (change, cargo build --release)
#   benches/gate-ab.sh /tmp/fastfn-before target/release/fastfn
# Prints per round and binary: c16=<200s/s>/<429s/s> c64=<200s/s>/<429s/s>.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: benches/gate-ab.sh BINARY [BINARY...]" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
PORT=${BENCH_PORT:-18099}
P=""
trap '[ -n "$P" ] && kill $P 2>/dev/null; true' EXIT
SECS=5
source benches/wrk.sh
rates() { # conc → "<200s/s>/<429s/s>"
  wrk_run "http://127.0.0.1:$PORT/hellopy" "$1" | awk -v s="$SECS" '{printf "%.0f/%.0f\n", $1 - $4 / s, $4 / s}'
}
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    BASE=$(mktemp -d /tmp/ffgate.XXXX)
    FN_SOCKET_BASE_DIR=$BASE FN_HOST_PORT=$PORT FN_HOT_RELOAD=0 FN_RUNTIMES=python "$bin" run fixtures/bench >/dev/null 2>&1 &
    P=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/hellopy" >/dev/null && break; sleep 0.1; done
    wrk -t1 -c16 -d2s "http://127.0.0.1:$PORT/hellopy" >/dev/null
    echo "round $round $bin: c16=$(rates 16) c64=$(rates 64)"
    kill $P; wait $P 2>/dev/null || true; P=""
    rm -rf "$BASE"
  done
done
