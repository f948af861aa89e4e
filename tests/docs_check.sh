#!/bin/sh
# docs/api: every public function declared in include/wsio.h is documented in docs/api.md.
# Usage: tests/docs_check.sh [SOURCE_DIR]   (default: the folder above this script)
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
header="$root/include/wsio.h"
doc="$root/docs/api.md"
[ -r "$header" ] || { echo "docs/api: cannot read $header" >&2; exit 1; }
[ -r "$doc" ] || { echo "docs/api: cannot read $doc" >&2; exit 1; }

# A declaration starts at the beginning of a line (struct members and comment lines are indented), is no
# typedef, macro or brace, and its first "wsio_name(" is the function's name. Return types such as wsio_op
# are not followed by "(".
names=$(grep -E '^[A-Za-z]' "$header" | grep -vE '^(typedef|#|extern|enum|struct [a-z_]+ \{|\})' |
        grep -oE '\bwsio_[a-z0-9_]+\(' | tr -d '(' | sort -u)

count=$(printf '%s\n' "$names" | grep -c . || true)
# A guard against a parser that finds nothing (or nearly nothing) and so passes vacuously.
if [ "$count" -lt 50 ]; then
  echo "docs/api: found only $count functions in $header: is the parser out of date?" >&2
  exit 1
fi

missing=0
for n in $names; do
  # Documented means named in code: `wsio_x(...)`, `wsio_x`, or inside a code block, as a whole word.
  if ! grep -qE "(^|[^a-z0-9_])$n([^a-z0-9_]|\$)" "$doc"; then
    echo "docs/api: $n is declared in include/wsio.h but not documented in docs/api.md" >&2
    missing=$((missing + 1))
  fi
done

if [ "$missing" -ne 0 ]; then
  echo "docs/api: $missing of $count public functions missing" >&2
  exit 1
fi
echo "docs/api: all $count public functions of include/wsio.h are in docs/api.md"
