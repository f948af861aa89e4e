# Shared by prefix_check.sh and deb_check.sh (sourced): temporary folder, servers started and stopped.
# Sets $tmp; every server started with start_server is killed on exit.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsio-install.XXXXXX")
pids=""
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "$name: $*" >&2
  exit 1
}

# start_server LOG CMD...: starts CMD with stdout and stderr in LOG; sets $pid. `timeout` bounds its life
# should this script be killed before it can stop it (SIGTERM after 150 s; timeout passes on our SIGTERM).
start_server() {
  log=$1
  shift
  timeout --preserve-status 150 "$@" >"$log" 2>&1 &
  pid=$!
  pids="$pids $pid"
}

# wait_port LOG: the port of the first "listening on HOST:PORT" line of LOG, within 10 s; sets $port.
wait_port() {
  i=0
  port=""
  while [ $i -lt 100 ]; do
    port=$(sed -n 's/.*listening on [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$1" >&2; fail "server exited before listening"; }
    sleep 0.1
    i=$((i + 1))
  done
  cat "$1" >&2
  fail "server did not listen within 10 s"
}

# stop_server LOG: SIGTERM, then the exit status must be 0 within 10 s.
stop_server() {
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  kill -0 "$pid" 2>/dev/null && fail "server still running 10 s after SIGTERM"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { cat "$1" >&2; fail "server exited with status $rc after SIGTERM"; }
}

# same_path A B: both name the same existing file or folder.
same_path() {
  [ -e "$1" ] && [ -e "$2" ] && [ "$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")" = \
                                  "$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")" ]
}
