#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — wsio against reference servers on Node.js under the same load: npm `ws` in the
# WebSocket scenarios, npm `socket.io` in the Socket.IO ones (sio-*).
#
# Each server runs pinned to CPU 0 and the load generator to CPU 1. Runs are interleaved (wsio, ws, wsio, ws,
# ...) so that drift in the machine's load hits both alike; each figure is the best of RUNS runs. Prints a
# Markdown table per protocol with the ratio wsio/reference; raw key=value lines are kept in $OUT/runs.txt.
#
# Quick runs: every setting below can be overridden from the environment, e.g.
#   SCENARIOS=echo RUNS=1 ECHO_SECONDS=3 bench/run.sh build
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
WSIO=$BUILD/wsio
LOADGEN=$BUILD/bench/loadgen
SIO_WSIO=$BUILD/bench/sio_server
REF=$ROOT/bench/ref/ws_server.mjs
SIO_REF=$ROOT/bench/ref/sio_server.mjs

RUNS=${RUNS:-3}
SERVERS=${SERVERS:-"wsio ws socket.io"} # a scenario runs those of them that speak its protocol
SCENARIOS=${SCENARIOS:-"echo broadcast broadcast-1 idle sio-echo sio-broadcast sio-idle"}
DEFLATE=${DEFLATE:-off}           # passed to both servers: off | shared | context
WARMUP=${WARMUP:-2}
SOURCES=${SOURCES:-4}             # client source addresses 127.0.0.1..N (ephemeral ports per source)
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${PORT_BASE:-19400}          # each run gets the next port, so no run waits on the last one's sockets
ECHO_CONNS=${ECHO_CONNS:-100}
ECHO_DEPTH=${ECHO_DEPTH:-16}
ECHO_SIZE=${ECHO_SIZE:-32}
ECHO_SECONDS=${ECHO_SECONDS:-8}
BCAST_CONNS=${BCAST_CONNS:-10000}
BCAST_SIZE=${BCAST_SIZE:-64}
BCAST_DEPTH=${BCAST_DEPTH:-8}     # broadcast: messages in flight; one leaves once every receiver has it
                                  # broadcast-1: the same with one message at a time
BCAST_INTERVAL=${BCAST_INTERVAL:-0}
BCAST_SECONDS=${BCAST_SECONDS:-8}
BATCH=${BATCH:-0}                 # 1: echo and broadcast send their D messages as one batch (loadgen --batch)
IDLE_CONNS=${IDLE_CONNS:-19000}
IDLE_SECONDS=${IDLE_SECONDS:-5}
OUT=${OUT:-$(mktemp -d /tmp/wsio-bench.XXXXXX)}

# servers_for SCENARIO: the servers of $SERVERS that take part in it, in their order.
servers_for() {
  local name out=
  for name in $SERVERS; do
    case $1:$name in
      sio-*:wsio | sio-*:socket.io) out+=" $name" ;;
      sio-*:*) ;;
      *:wsio | *:ws) out+=" $name" ;;
    esac
  done
  echo $out
}
sio=0 plain=0
for scenario in $SCENARIOS; do case $scenario in sio-*) sio=1 ;; *) plain=1 ;; esac; done
need() { [ -e "$1" ] || { echo "run.sh: $1 is missing ($2)" >&2; exit 1; }; }
need "$LOADGEN" "build first: make all"
case " $SERVERS " in
  *" wsio "*) [ $plain = 0 ] || need "$WSIO" "build first: make all"
              [ $sio = 0 ] || need "$SIO_WSIO" "build first: make all" ;;
esac
case " $SERVERS " in *" ws "*) [ $plain = 0 ] ||
  need "$ROOT/tests/node_modules/ws/package.json" "npm ws: run scripts/deps" ;; esac
case " $SERVERS " in *" socket.io "*) [ $sio = 0 ] ||
  need "$ROOT/tests/node_modules/socket.io/package.json" "npm socket.io: run scripts/deps" ;; esac
command -v taskset >/dev/null || { echo "run.sh: taskset (util-linux) is needed" >&2; exit 1; }
mkdir -p "$OUT"
: >"$OUT/runs.txt"
ulimit -n "$(ulimit -Hn)"

server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME PORT SCENARIO: starts it on CPU $SERVER_CPU and waits for "listening on".
start_server() {
  local name=$1 port=$2 log=$OUT/$1-$2.log
  local args=(--host 127.0.0.1 --port "$port" --ws-echo /echo --ws-broadcast /bcast --deflate "$DEFLATE")
  local sio_args=(--host 127.0.0.1 --port "$port")
  case $3:$name in
    sio-*:wsio) taskset -c "$SERVER_CPU" "$SIO_WSIO" "${sio_args[@]}" 2>"$log" >/dev/null & ;;
    sio-*:socket.io) taskset -c "$SERVER_CPU" node "$SIO_REF" "${sio_args[@]}" 2>"$log" >/dev/null & ;;
    # One worker: the server has one core (workers = auto would start one loop per core of the machine,
    # all on that core, and split the clients between them).
    *:wsio) taskset -c "$SERVER_CPU" "$WSIO" "${args[@]}" --workers 1 2>"$log" >/dev/null & ;;
    *:ws) taskset -c "$SERVER_CPU" node "$REF" "${args[@]}" 2>"$log" >/dev/null & ;;
    *) echo "run.sh: server $name does not run scenario $3" >&2; exit 1 ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$log" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: $name did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

# run_one SCENARIO SERVER: one server process, one load generator run; appends the result line.
run_one() {
  local scenario=$1 name=$2 port=$PORT
  PORT=$((PORT + 1))
  local lg=(taskset -c "$LOADGEN_CPU" "$LOADGEN" --host 127.0.0.1 --port "$port" --sources "$SOURCES")
  case $scenario in sio-*) lg+=(--protocol sio) ;; esac
  case ${scenario#sio-} in
    echo) lg+=(--mode echo --conns "$ECHO_CONNS" --depth "$ECHO_DEPTH" --size "$ECHO_SIZE"
               --seconds "$ECHO_SECONDS" --warmup "$WARMUP") ;;
    broadcast | broadcast-1)
      local depth=$BCAST_DEPTH
      [ "$scenario" = broadcast-1 ] && depth=1
      lg+=(--mode broadcast --conns "$BCAST_CONNS" --depth "$depth" --size "$BCAST_SIZE"
           --interval "$BCAST_INTERVAL" --seconds "$BCAST_SECONDS" --warmup "$WARMUP") ;;
    idle) lg+=(--mode idle --conns "$IDLE_CONNS" --seconds "$IDLE_SECONDS") ;;
    *) echo "run.sh: unknown scenario $scenario" >&2; exit 1 ;;
  esac
  case $BATCH:$scenario in 1:*echo | 1:*broadcast) lg+=(--batch) ;; esac
  start_server "$name" "$port" "$scenario"
  local line rc=0
  line=$(timeout 300 "${lg[@]}" --server-pid "$server_pid" 2>>"$OUT/loadgen.log") || rc=$?
  cleanup
  [ $rc -eq 0 ] || echo "run.sh: $scenario/$name: load generator exited $rc" >&2
  echo "scenario=$scenario server=$name rc=$rc $line" >>"$OUT/runs.txt"
  echo "  $scenario $name: $line" >&2
}

{
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  echo "machine: $(nproc) CPUs, $cpu, Linux $(uname -r)"
  npm_version() {
    sed -n 's/^ *"version": "\(.*\)",*$/\1/p' "$ROOT/tests/node_modules/$1/package.json" 2>/dev/null
  }
  echo "node $(node --version 2>/dev/null || echo missing), ws $(npm_version ws)," \
    "socket.io $(npm_version socket.io) (engine.io $(npm_version engine.io))"
} | tee "$OUT/machine.txt" >&2
echo "run.sh: results in $OUT; server on CPU $SERVER_CPU, load generator on CPU $LOADGEN_CPU" >&2
for scenario in $SCENARIOS; do
  for run in $(seq "$RUNS"); do
    for name in $(servers_for "$scenario"); do
      echo "run.sh: $scenario, run $run/$RUNS, $name" >&2
      run_one "$scenario" "$name"
    done
  done
done

# The tables: per scenario and server, the best of the runs (highest rate, lowest latency and memory). The
# WebSocket scenarios compare wsio with ws, the Socket.IO ones with socket.io.
awk -v order_list="$SCENARIOS" '
function val(k,   i, kv) {
  for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
  return ""
}
function keep(key, v, hi) {
  if (v == "") return
  if (!(key in best) || (hi && v + 0 > best[key] + 0) || (!hi && v + 0 < best[key] + 0)) best[key] = v
}
{
  s = val("scenario"); n = val("server"); seen[s] = 1
  if (val("rc") != 0) bad[s, n]++
  keep(s SUBSEP n SUBSEP "rate", val("msgs_per_sec"), 1)
  keep(s SUBSEP n SUBSEP "cpu", val("msgs_per_server_cpu_s"), 1)
  keep(s SUBSEP n SUBSEP "p50", val("p50_us"), 0)
  keep(s SUBSEP n SUBSEP "p99", val("p99_us"), 0)
  keep(s SUBSEP n SUBSEP "util", val("server_cpu_util"), 1)
  keep(s SUBSEP n SUBSEP "cutil", val("client_cpu_util"), 1)
  keep(s SUBSEP n SUBSEP "psi", val("cpu_pressure"), 0)
  keep(s SUBSEP n SUBSEP "rss", val("rss_per_conn_kib"), 0)
  keep(s SUBSEP n SUBSEP "rssall", val("rss_kib"), 0)
  keep(s SUBSEP n SUBSEP "open", val("open"), 1)
  keep(s SUBSEP n SUBSEP "slab", val("slab_per_conn_kib"), 0)
}
function ref(s) { return s ~ /^sio-/ ? "socket.io" : "ws" }
function row(s, label, m, fmt,   a, b, r) {
  a = best[s, "wsio", m]; b = best[s, ref(s), m]
  if (a == "" && b == "") return
  r = (a != "" && b != "" && b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
  a = (a == "") ? "-" : sprintf(fmt, a)
  b = (b == "") ? "-" : sprintf(fmt, b)
  printf "| %s | %s | %s | %s | %s |\n", s, label, a, b, r
}
# Prints the rows of the scenarios that compare wsio with server r, under a header of their own.
function table(r,   i, s, ns, order, rate, head) {
  ns = split(order_list, order, " ")
  for (i = 1; i <= ns; i++) {
    s = order[i]
    if (!(s in seen) || ref(s) != r) continue
    if (!head++) {
      if (tables++) print ""
      printf "| scenario | figure | wsio | %s | wsio/%s |\n", r, r
      print "|---|---|---:|---:|---:|"
    }
    rate = (s ~ /broadcast/) ? "deliveries" : (s ~ /^sio-/) ? "events" : "messages"
    if (s !~ /idle$/) {
      row(s, rate " per server CPU-second", "cpu", "%.0f")
      row(s, rate " per wall second", "rate", "%.0f")
      row(s, "server CPU busy (of one core)", "util", "%.2f")
      row(s, "load generator CPU busy (of one core)", "cutil", "%.2f")
      row(s, "CPU pressure: share of time a task waited for a CPU", "psi", "%.2f")
      row(s, "p50 latency (us)", "p50", "%.0f")
      row(s, "p99 latency (us)", "p99", "%.0f")
    }
    row(s, "connections open", "open", "%d")
    if (s ~ /idle$/) {
      row(s, "server RSS per connection (KiB)", "rss", "%.2f")
      row(s, "server RSS, all open (KiB)", "rssall", "%d")
      row(s, "kernel slab per connection, both ends (KiB)", "slab", "%.2f")
    }
  }
}
END {
  table("ws")
  table("socket.io")
  for (k in bad) {
    split(k, p, SUBSEP)
    printf "\nwarning: %s/%s: %d run(s) failed, see runs.txt\n", p[1], p[2], bad[k]
  }
}' "$OUT/runs.txt" | tee "$OUT/table.md"
