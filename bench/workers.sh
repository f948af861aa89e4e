#!/usr/bin/env bash
# bench/workers.sh [BUILD_DIR] — Socket.IO broadcast deliveries per second of bench/sio_server with
# --workers 1 and --workers 2, side by side under the same load (docs/benchmarks.md, "Workers").
#
# The load: C receivers and one sender (loadgen --mode broadcast --protocol sio); the sender's io.emit
# reaches every socket of "/", whichever worker it is on. Runs alternate (1, 2, 1, 2, ...) so drift in the
# machine's load hits both alike; the table gives each setting's best, median and worst run and the ratio of
# the medians. The server may use every CPU; the load generator runs beside it (on a 2-CPU machine it shares
# them: docs/benchmarks.md, "Workers", says what that caps).
#
# The defaults keep 4096 broadcasts in flight to 4000 receivers: a window that deep keeps the server busy,
# so the figure is what the server can deliver rather than the round trip of a shallow window.
#
#   RUNS=5 CONNS=4000 DEPTH=4096 SECONDS_=6 bench/workers.sh build
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
SERVER=$BUILD/bench/sio_server
LOADGEN=$BUILD/bench/loadgen
RUNS=${RUNS:-5}
CONNS=${CONNS:-4000}
DEPTH=${DEPTH:-4096}
SIZE=${SIZE:-64}
SECONDS_=${SECONDS_:-6}
WARMUP=${WARMUP:-2}
SOURCES=${SOURCES:-4}
WORKERS_LIST=${WORKERS_LIST:-"1 2"}
PORT=${PORT_BASE:-19700}
OUT=${OUT:-$(mktemp -d /tmp/wsio-workers-bench.XXXXXX)}
mkdir -p "$OUT"

[ -x "$SERVER" ] && [ -x "$LOADGEN" ] || { echo "workers.sh: build first ($SERVER, $LOADGEN)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap cleanup EXIT

run_one() {
  local workers=$1 port=$PORT log=$OUT/server-$PORT.log
  PORT=$((PORT + 1))
  "$SERVER" --host 127.0.0.1 --port "$port" --workers "$workers" 2>"$log" &
  server_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3 # every worker listening
  local line rc=0
  line=$(timeout 300 "$LOADGEN" --protocol sio --host 127.0.0.1 --port "$port" --sources "$SOURCES" \
           --mode broadcast --conns "$CONNS" --depth "$DEPTH" --size "$SIZE" --seconds "$SECONDS_" \
           --warmup "$WARMUP" --server-pid "$server_pid" 2>>"$OUT/loadgen.log") || rc=$?
  cleanup
  echo "workers=$workers rc=$rc $line" >>"$OUT/runs.txt"
  echo "  workers=$workers: $line" >&2
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "workers.sh: results in $OUT" >&2
for run in $(seq "$RUNS"); do
  for w in $WORKERS_LIST; do
    echo "workers.sh: run $run/$RUNS, --workers $w" >&2
    run_one "$w"
  done
done

awk -v list="$WORKERS_LIST" '
function val(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
$0 ~ /rc=0/ {
  w = val("workers"); n[w]++; d[w, n[w]] = val("deliveries_per_sec") + 0
  scpu[w] += val("server_cpu_util"); ccpu[w] += val("client_cpu_util"); rss[w] += val("rss_kib") / 1024
}
END {
  split(list, ws, " ")
  print "| workers | deliveries/s (median) | best | worst | runs | server CPU (cores, mean) | load generator CPU | server RSS (MiB, mean) |"
  print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for (i = 1; i in ws; i++) {
    w = ws[i]
    # sort this setting runs (insertion sort: a handful of values)
    for (a = 1; a <= n[w]; a++) v[a] = d[w, a]
    for (a = 2; a <= n[w]; a++) for (b = a; b > 1 && v[b - 1] > v[b]; b--) { t = v[b]; v[b] = v[b - 1]; v[b - 1] = t }
    med[w] = n[w] % 2 ? v[(n[w] + 1) / 2] : (v[n[w] / 2] + v[n[w] / 2 + 1]) / 2
    printf "| %s | %.0f | %.0f | %.0f | %d | %.2f | %.2f | %.0f |\n", w, med[w], v[n[w]], v[1], n[w], scpu[w] / n[w],
      ccpu[w] / n[w], rss[w] / n[w]
  }
  if (ws[1] in med && ws[2] in med && med[ws[1]] > 0)
    printf "\nratio of the medians, --workers %s / --workers %s: %.2fx\n", ws[2], ws[1], med[ws[2]] / med[ws[1]]
}' "$OUT/runs.txt"
