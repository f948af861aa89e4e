#!/usr/bin/env bash
# tests/reliability/valgrind.sh [BUILD_DIR] — the interop suites with their servers under valgrind memcheck.
#
# Builds BUILD_DIR (default build-valgrind; RelWithDebInfo, no sanitizer), then puts a wrapper in place of each
# server the interop tests start (wsio, tests' sio_server and redis_node): the real binary moves to NAME.real
# and NAME becomes
#   exec valgrind --error-exitcode=99 --leak-check=full --log-file=BUILD_DIR/valgrind/NAME.%p.log NAME.real "$@"
# so the tests run unchanged (exec keeps the pid: their SIGTERM reaches the server, which stops gracefully).
# Then `ctest -L interop`, and every log is read: the run fails when a test failed or when any server
# reported a memory error or a definite or indirect leak (its ERROR SUMMARY is not 0). A summary is printed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-valgrind}
JOBS=${JOBS:-2}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

# Memcheck runs the servers ~20x slower: the interop cases and their drivers stretch every deadline by SCALE
# (tests/interop/CMakeLists.txt: the ctest TIMEOUTs, and INTEROP_TIMEOUT_SCALE in the drivers).
SCALE=${SCALE:-10}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSIO_INTEROP_TIMEOUT_SCALE="$SCALE" >/dev/null
cmake --build "$BUILD" -j "$JOBS"
LOGS=$BUILD/valgrind
rm -rf "$LOGS"
mkdir -p "$LOGS"

wrap() {
  local bin=$1 name
  name=$(basename "$bin")
  [ -x "$bin" ] || return 0
  # A rebuild since the last run put a real binary back: move it aside again.
  if ! grep -q "^# valgrind wrapper" "$bin" 2>/dev/null; then mv -f "$bin" "$bin.real"; fi
  cat >"$bin" <<EOF
#!/bin/sh
# valgrind wrapper (tests/reliability/valgrind.sh)
exec valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \\
  --show-leak-kinds=definite,indirect --track-fds=no --log-file=$LOGS/$name.%p.log "$bin.real" "\$@"
EOF
  chmod +x "$bin"
}
wrap "$BUILD/wsio"
wrap "$BUILD/tests/interop/sio_server"
wrap "$BUILD/tests/interop/redis_node"

# One test at a time: the servers under memcheck need the CPU.
rc=0
(cd "$BUILD" && ctest --output-on-failure -L interop) || rc=$?

runs=0 bad=0
for log in "$LOGS"/*.log; do
  [ -e "$log" ] || continue
  runs=$((runs + 1))
  summary=$(grep -h "ERROR SUMMARY" "$log" | tail -1 || true) # none: grep fails, which must not end the script
  if [ -z "$summary" ]; then
    echo "valgrind: $(basename "$log"): no summary (the server was killed before it could exit)"
  elif ! grep -q "ERROR SUMMARY: 0 errors" <<<"$summary"; then
    bad=$((bad + 1))
    echo "valgrind: $(basename "$log"):"
    sed -n '/ERROR SUMMARY/p;/definitely lost/p;/indirectly lost/p;/Invalid/,+6p;/uninitialised/,+6p' "$log" | head -40
  fi
done
echo "valgrind: $runs server runs under memcheck, $bad with errors or leaks; ctest exit $rc"
[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]
