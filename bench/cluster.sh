#!/usr/bin/env bash
# bench/cluster.sh [BUILD_DIR] — cross-node broadcast deliveries per second: a two-node wsio cluster against two
# Node socket.io 4.8 nodes with @socket.io/redis-adapter, on the same redis-server, under the same load.
#
# Each cluster is two nodes, A and B (bench/cluster_server.c, bench/ref/cluster_server.mjs). Every client of
# the load generator (bench/loadgen, Socket.IO broadcast mode) is on B; the sender's "bcast" goes to A as a
# serverSideEmit, and A broadcasts it with io.emit: what B's clients receive are broadcasts made on another
# node, carried by Redis (msgpack on the classic channels, or sharded pub/sub with MODE=sharded). B is pinned to
# SERVER_CPU and the load generator to LOADGEN_CPU; A and redis-server float. Runs alternate (wsio,
# socket.io, wsio, ...) so drift in the machine's load hits both; each figure is the best of RUNS runs, and
# the spread (worst..best) is printed beside it. Raw key=value lines go to $OUT/runs.txt.
#
#   bench/cluster.sh build
#   RUNS=1 SECONDS_=4 CONNS=500 bench/cluster.sh build     # a quick look
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
LOADGEN=$BUILD/bench/loadgen
NODE_WSIO=$BUILD/bench/cluster_server
NODE_REF=$ROOT/bench/ref/cluster_server.mjs

RUNS=${RUNS:-3}
MODE=${MODE:-classic}            # classic | sharded
CONNS=${CONNS:-1000}             # receivers on node B (one sender is added)
DEPTH=${DEPTH:-64}               # broadcasts in flight: enough that the figure is throughput, not latency
SIZE=${SIZE:-64}
SECONDS_=${SECONDS_:-8}
WARMUP=${WARMUP:-2}
SOURCES=${SOURCES:-4}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${PORT_BASE:-19600}
OUT=${OUT:-$(mktemp -d /tmp/wsio-cluster-bench.XXXXXX)}

need() { [ -e "$1" ] || { echo "cluster.sh: $1 is missing ($2)" >&2; exit 1; }; }
need "$LOADGEN" "build first: make all"
need "$NODE_WSIO" "build first: make all"
need "$ROOT/tests/node_modules/@socket.io/redis-adapter/package.json" "npm packages: run scripts/deps"
command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is needed (scripts/deps)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "cluster.sh: taskset (util-linux) is needed" >&2; exit 1; }
mkdir -p "$OUT"
: >"$OUT/runs.txt"
ulimit -n "$(ulimit -Hn)"

pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
redis_pid=
cleanup() {
  stop_all
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port for redis-server: the first one from 19690 that nothing listens on.
redis_port=19690
while (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; do redis_port=$((redis_port + 1)); done
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do grep -q "Ready to accept" "$OUT/redis.log" && break; sleep 0.1; done
REDIS_URL=redis://127.0.0.1:$redis_port
flags=()
[ "$MODE" = sharded ] && flags+=(--sharded)

# start_node STACK PORT CPU: one node, waits for "listening on"; echoes its pid.
start_node() {
  local log=$OUT/$1-$2.log pin=()
  [ -n "$3" ] && pin=(taskset -c "$3")
  case $1 in
    wsio) "${pin[@]}" "$NODE_WSIO" --redis "$REDIS_URL" "${flags[@]}" --host 127.0.0.1 --port "$2" >"$log" 2>&1 & ;;
    socket.io) "${pin[@]}" node "$NODE_REF" --redis "$REDIS_URL" "${flags[@]}" --host 127.0.0.1 --port "$2" >"$log" 2>&1 & ;;
  esac
  local pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$log" 2>/dev/null && { echo "$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "cluster.sh: $1 node did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

run_one() {
  local stack=$1 pa=$PORT pb=$((PORT + 1))
  PORT=$((PORT + 2))
  local a b
  a=$(start_node "$stack" "$pa" "")
  pids+=("$a")
  b=$(start_node "$stack" "$pb" "$SERVER_CPU")
  pids+=("$b")
  sleep 0.5 # both subscribed
  local line rc=0
  line=$(timeout 300 taskset -c "$LOADGEN_CPU" "$LOADGEN" --protocol sio --mode broadcast --host 127.0.0.1 \
    --port "$pb" --sources "$SOURCES" --conns "$CONNS" --depth "$DEPTH" --size "$SIZE" --seconds "$SECONDS_" \
    --warmup "$WARMUP" --server-pid "$b" 2>>"$OUT/loadgen.log") || rc=$?
  stop_all
  echo "stack=$stack mode=$MODE rc=$rc $line" >>"$OUT/runs.txt"
  echo "  $stack: $line" >&2
}

echo "cluster.sh: $MODE pub/sub, $CONNS receivers on node B, depth $DEPTH, ${SIZE} B, ${SECONDS_} s x $RUNS runs;" \
     "results in $OUT" >&2
for _ in $(seq "$RUNS"); do
  run_one wsio
  run_one socket.io
done

# The table: best and worst deliveries/s per stack, and the ratio of the bests.
awk -v mode="$MODE" '
  { st = ""; d = 0; cpu = 0
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "stack") st = kv[2];
      if (kv[1] == "deliveries_per_sec") d = kv[2] + 0; if (kv[1] == "msgs_per_server_cpu_s") cpu = kv[2] + 0 }
    if (!(st in best) || d > best[st]) { best[st] = d; bestcpu[st] = cpu }
    if (!(st in worst) || d < worst[st]) worst[st] = d }
  END {
    printf "| cross-node broadcast (%s) | deliveries/s (worst..best) | deliveries per B CPU-second |\n", mode
    printf "|---|---|---|\n"
    printf "| wsio, 2 nodes | %d..%d | %d |\n", worst["wsio"], best["wsio"], bestcpu["wsio"]
    printf "| socket.io + redis-adapter, 2 nodes | %d..%d | %d |\n", worst["socket.io"], best["socket.io"], bestcpu["socket.io"]
    if (best["socket.io"] > 0) printf "| ratio (best) | %.1fx | %.1fx |\n", best["wsio"] / best["socket.io"],
      (bestcpu["socket.io"] > 0 ? bestcpu["wsio"] / bestcpu["socket.io"] : 0)
  }' "$OUT/runs.txt" | tee "$OUT/table.md"
