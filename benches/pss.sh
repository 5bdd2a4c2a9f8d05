#!/usr/bin/env bash
# Memory of a one-file node project: PSS (proportional set size, from
# /proc/<pid>/smaps_rollup) of the engine plus every process in its tree (the daemons), after
# the first call. Runtimes enabled: node, python, php (only node has a route, so only node
# runs). Medians of RUNS runs.
#   benches/pss.sh [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PORT=${BENCH_PORT:-18091}
cargo build --release --bin fastfn >/dev/null 2>&1
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
tree_pids() { # the pid and its descendants
  local pid=$1
  echo "$pid"
  for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
: > /tmp/ffpss.total; : > /tmp/ffpss.engine
for _ in $(seq "$RUNS"); do
  WORK=$(mktemp -d /tmp/ffpss.XXXX)
  mkdir -p "$WORK/p"
  echo 'exports.handler = async () => "hi";' > "$WORK/p/hello.js"
  FN_SOCKET_BASE_DIR=$WORK/s FN_HOST_PORT=$PORT FN_RUNTIMES=node,python,php \
    ./target/release/fastfn dev "$WORK/p" >/dev/null 2>&1 &
  ENGINE=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/hello" >/dev/null && break; sleep 0.1; done
  sleep 1
  total=0; procs=""
  for p in $(tree_pids "$ENGINE"); do
    kib=$(pss_kib "$p"); total=$((total + kib))
    procs="$procs $(tr '\0' ' ' < /proc/"$p"/cmdline | awk '{print $1}' | xargs basename):${kib}KiB"
  done
  echo "run: total $((total / 1024)) MiB ($procs )"
  echo "$total" >> /tmp/ffpss.total
  pss_kib "$ENGINE" >> /tmp/ffpss.engine
  kill "$ENGINE"; wait "$ENGINE" 2>/dev/null || true
  rm -rf "$WORK"
done
echo "median PSS: engine $(( $(median < /tmp/ffpss.engine) / 1024 )) MiB, engine + daemons $(( $(median < /tmp/ffpss.total) / 1024 )) MiB (n=$RUNS)"
