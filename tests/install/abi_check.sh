#!/bin/sh
# install/abi: the dynamic symbols libwsio.so defines are exactly the functions include/wsio.h declares
# with WSIO_API, and every function the header declares carries WSIO_API.
# Usage: abi_check.sh LIBWSIO_SO WSIO_H
set -eu
lib=$1
header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The API: on each line starting with WSIO_API, the name right before the first "(".
sed -n 's/^WSIO_API[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' "$header" | sort -u >"$tmp/api"
# Declarations the way tests/docs_check.sh finds them: a line that starts a declaration (not a typedef,
# macro, brace or indented member) and holds "wsio_name(". Each must be a WSIO_API one.
grep -E '^[A-Za-z]' "$header" | grep -vE '^(typedef|#|extern|enum|struct [a-z_]+ \{|\})' |
  grep -oE '\bwsio_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/declared"
# What the library exports: defined dynamic symbols, less the linker's own.
nm -D --defined-only "$lib" | awk '{print $3 " " $2}' |
  grep -vE '^(_init|_fini|_edata|_end|__bss_start) ' >"$tmp/nm"
awk '{print $1}' "$tmp/nm" | sed 's/@.*//' | sort -u >"$tmp/exported"

n=$(wc -l <"$tmp/api")
if [ "$n" -lt 50 ]; then
  echo "install/abi: found only $n WSIO_API functions in $header: is the parser out of date?" >&2
  exit 1
fi
fail=0
if ! cmp -s "$tmp/api" "$tmp/declared"; then
  echo "install/abi: functions declared in wsio.h without WSIO_API (or the reverse):" >&2
  diff "$tmp/api" "$tmp/declared" | sed -n 's/^[<>] /  /p' >&2
  fail=1
fi
# Every export is a function (T); no data symbol leaks out.
if awk '$2 != "T" {found = 1; print "  " $0} END {exit !found}' "$tmp/nm" >&2; then
  echo "install/abi: exported symbols that are not functions (above)" >&2
  fail=1
fi
extra=$(comm -13 "$tmp/api" "$tmp/exported")
missing=$(comm -23 "$tmp/api" "$tmp/exported")
if [ -n "$extra" ]; then
  echo "install/abi: $lib exports symbols that are not WSIO_API functions of wsio.h:" >&2
  printf '  %s\n' $extra >&2
  fail=1
fi
if [ -n "$missing" ]; then
  echo "install/abi: WSIO_API functions of wsio.h that $lib does not export:" >&2
  printf '  %s\n' $missing >&2
  fail=1
fi
# The soname is libwsio.so.MAJOR.
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
case "$soname" in
  libwsio.so.[0-9]*) ;;
  *) echo "install/abi: soname is '$soname', not libwsio.so.MAJOR" >&2; fail=1 ;;
esac
[ "$fail" = 0 ] || exit 1
echo "install/abi: $soname exports exactly the $n WSIO_API functions of wsio.h"
