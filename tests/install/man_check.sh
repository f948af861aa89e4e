#!/bin/sh
# install/man: man/wsio.1 holds the SETTINGS section generated from the settings table, names this
# version, and formats without a groff warning.
# Usage: man_check.sh WSIO_MAN MAN_PAGE VERSION
set -eu
gen=$1
page=$2
version=$3
"$gen" --check "$page"
if ! grep -q "^\.TH WSIO 1 [^ ]* \"wsio $version\"" "$page"; then
  echo "install/man: the .TH line of $page does not name wsio $version" >&2
  exit 1
fi
if command -v groff >/dev/null 2>&1; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  if [ -n "$warnings" ]; then
    echo "install/man: groff warns about $page:" >&2
    echo "$warnings" >&2
    exit 1
  fi
else
  echo "install/man: groff not installed, formatting not checked"
fi
echo "install/man: $page is in sync with the settings table"
