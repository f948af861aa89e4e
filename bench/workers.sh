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
# so the figure is what the server can deliver rather than the round trip of a shallow window. The window
# drains in waves, so a short measured window counts a whole number of them; 15 seconds hold enough waves
# that the count moves by a few percent from run to run rather than by a fifth.
#
#   RUNS=3 CONNS=4000 DEPTH=4096 SECONDS_=15 bench/workers.sh build
#
# RATES="8 10 12 14 16 18" (millions of deliveries per second) switches to an open-loop search instead: the
# sender is paced to each rate in turn (loadgen --interval; DEPTH, 1024 by default then, only bounds the
# backlog), RUNS runs per rate and setting, and a rate holds when the median run delivers at least 97% of
# it. Each setting stops at its second failing rate; the table gives the highest rate each one held.
#
#   RATES="8 9 10 11 12 13 14 15 16 17 18" RUNS=3 bench/workers.sh build
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
SERVER=$BUILD/bench/sio_server
LOADGEN=$BUILD/bench/loadgen
RUNS=${RUNS:-3}
CONNS=${CONNS:-4000}
RATES=${RATES:-}
DEPTH=${DEPTH:-$([ -n "$RATES" ] && echo 1024 || echo 4096)}
SIZE=${SIZE:-64}
SECONDS_=${SECONDS_:-15}
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
  local workers=$1 interval=${2:-0} port=$PORT log=$OUT/server-$PORT.log
  PORT=$((PORT + 1))
  "$SERVER" --host 127.0.0.1 --port "$port" --workers "$workers" 2>"$log" &
  server_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3 # every worker listening
  local line rc=0
  line=$(timeout 300 "$LOADGEN" --protocol sio --host 127.0.0.1 --port "$port" --sources "$SOURCES" \
           --mode broadcast --conns "$CONNS" --depth "$DEPTH" --size "$SIZE" --seconds "$SECONDS_" \
           --interval "$interval" --warmup "$WARMUP" --server-pid "$server_pid" 2>>"$OUT/loadgen.log") || rc=$?
  cleanup
  echo "workers=$workers rc=$rc $line" >>"$OUT/runs.txt"
  echo "  workers=$workers: $line" >&2
}

# The open-loop search (RATES set): prints the table and exits.
if [ -n "$RATES" ]; then
  echo "workers.sh: results in $OUT; open loop, rates (M deliveries/s): $RATES" >&2
  declare -A best
  for w in $WORKERS_LIST; do
    best[$w]=0
    fails=0
    for rate in $RATES; do
      # One message every interval us reaches CONNS receivers: rate M deliveries/s.
      interval=$(awk -v c="$CONNS" -v r="$rate" 'BEGIN { printf "%d", c / r + 0.5 }')
      got=()
      for run in $(seq "$RUNS"); do
        echo "workers.sh: --workers $w, $rate M/s (one message every $interval us), run $run/$RUNS" >&2
        run_one "$w" "$interval"
        got+=("$(tail -n 1 "$OUT/runs.txt" | tr ' ' '\n' | sed -n 's/^deliveries_per_sec=//p')")
      done
      med=$(printf '%s\n' "${got[@]}" | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
      held=$(awk -v m="$med" -v c="$CONNS" -v i="$interval" 'BEGIN { print (m >= 0.97 * c * 1e6 / i) ? 1 : 0 }')
      echo "rate workers=$w target_m=$rate interval_us=$interval median=$med held=$held" >>"$OUT/rates.txt"
      if [ "$held" = 1 ]; then best[$w]=$rate; fails=0; else fails=$((fails + 1)); fi
      [ "$fails" -ge 2 ] && break
    done
  done
  echo "| workers | highest rate held (M deliveries/s) |"
  echo "| --- | ---: |"
  for w in $WORKERS_LIST; do echo "| $w | ${best[$w]} |"; done
  set -- $WORKERS_LIST
  awk -v a="${best[$1]}" -v b="${best[$2]:-0}" -v w1="$1" -v w2="${2:-}" \
    'BEGIN { if (a > 0 && w2 != "") printf "\nratio, --workers %s / --workers %s: %.2fx\n", w2, w1, b / a }'
  exit 0
fi

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
