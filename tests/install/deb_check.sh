#!/bin/sh
# install/deb: builds the Debian packages (packaging/build-deb.sh, a build tree of its own with prefix
# /usr), checks their metadata, unpacks them with `dpkg -x` into a throwaway root and runs the unit's
# ExecStart command line from there, as an unprivileged user, the way systemd would start wsio.service.
#
# Why dpkg -x and not dpkg -i: installing for real needs root and changes this machine (/usr, /etc, a
# system user, systemctl), which a test must not do; `dpkg --root` runs the maintainer scripts chrooted
# into a root that would need a whole Debian system inside. So the maintainer scripts are checked for
# syntax and the files are checked where dpkg would put them, relative to the throwaway root.
# Usage: deb_check.sh BUILD_DIR SOURCE_DIR VERSION
set -eu
name=install/deb
build=$1
src=$2
version=$3
major=${version%%.*}
. "$(dirname "$0")/lib.sh"

for tool in dpkg dpkg-deb dpkg-shlibdeps curl; do
  command -v $tool >/dev/null 2>&1 || { echo "$name: skipped: $tool is not installed"; exit 77; }
done

# ---- build ----
pkgbuild=$build/install-deb
JOBS=2 sh "$src/packaging/build-deb.sh" "$src" "$pkgbuild" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "packaging/build-deb.sh failed"; }
arch=$(dpkg --print-architecture)
rev=$(sed -n 's/^WSIO_PACKAGE_RELEASE:[A-Z]*=//p' "$pkgbuild/CMakeCache.txt")
deb_wsio=$pkgbuild/packages/wsio_${version}-${rev}_$arch.deb
deb_lib=$pkgbuild/packages/libwsio${major}_${version}-${rev}_$arch.deb
deb_dev=$pkgbuild/packages/libwsio-dev_${version}-${rev}_$arch.deb
for d in "$deb_wsio" "$deb_lib" "$deb_dev"; do [ -f "$d" ] || fail "$(basename "$d") was not built"; done

# ---- metadata ----
field() { dpkg-deb -f "$1" "$2"; }
[ "$(field "$deb_wsio" Version)" = "$version-$rev" ] || fail "wsio has version $(field "$deb_wsio" Version)"
# Depends of libwsio-dev: the exact run-time package.
field "$deb_dev" Depends | grep -q "libwsio$major (= $version-$rev)" || fail "libwsio-dev does not depend on libwsio$major (= $version-$rev)"
# conffiles and maintainer scripts of wsio.
dpkg-deb -e "$deb_wsio" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/wsio/wsio.conf ] || fail "wsio's conffiles is not /etc/wsio/wsio.conf"
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] || fail "wsio has no executable $s"
  sh -n "$tmp/control/$s" || fail "wsio's $s has a syntax error"
done
grep -q "adduser --system" "$tmp/control/postinst" || fail "postinst does not create the system user"
field "$deb_wsio" Depends | grep -q adduser || fail "wsio does not depend on adduser (its postinst uses it)"
# The shared library says where programs linked with it get it from.
dpkg-deb -e "$deb_lib" "$tmp/control-lib"
grep -q "^libwsio $major libwsio$major" "$tmp/control-lib/shlibs" || fail "libwsio$major has no shlibs entry"

# ---- unpack into a throwaway root ----
root=$tmp/root
for d in "$deb_wsio" "$deb_lib" "$deb_dev"; do dpkg -x "$d" "$root"; done
chmod 755 "$tmp" "$root" # the server runs as nobody below
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
lib=$root/usr/lib/$multiarch
for f in usr/bin/wsio usr/share/man/man1/wsio.1.gz etc/wsio/wsio.conf lib/systemd/system/wsio.service \
         usr/share/wsio/socket.io-client/socket.io.js usr/share/doc/wsio/copyright usr/include/wsio.h \
         usr/lib/$multiarch/libwsio.so.$version usr/lib/$multiarch/libwsio.a \
         usr/lib/$multiarch/pkgconfig/wsio.pc usr/lib/$multiarch/cmake/wsio/wsioConfig.cmake; do
  [ -e "$root/$f" ] || fail "/$f is in none of the packages"
done
[ "$(readlink "$lib/libwsio.so.$major")" = "libwsio.so.$version" ] || fail "libwsio.so.$major link"
[ "$(readlink "$lib/libwsio.so")" = "libwsio.so.$major" ] || fail "libwsio.so link"
# Which package holds what: the run-time package has the library alone, the -dev package the rest.
dpkg-deb -c "$deb_lib" >"$tmp/lib.list"
dpkg-deb -c "$deb_dev" >"$tmp/dev.list"
grep -q "libwsio.so.$version$" "$tmp/lib.list" || fail "libwsio$major lacks libwsio.so.$version"
grep -qE "include/|\.a$|pkgconfig" "$tmp/lib.list" && fail "libwsio$major holds development files"
grep -q "libwsio.so -> libwsio.so.$major" "$tmp/dev.list" || fail "libwsio-dev lacks the libwsio.so link"
grep -q '^prefix=/usr$' "$lib/pkgconfig/wsio.pc" || fail "wsio.pc's prefix is not /usr"

# The packaged (stripped) archive still links: a program calling wsio_version() from it, with the
# dependencies wsio.pc names for static linking.
cat >"$tmp/version.c" <<'C'
#include <stdio.h>
#include <wsio.h>
int main(void) { return puts(wsio_version()) < 0; }
C
requires=$(sed -n 's/^Requires.private: //p' "$lib/pkgconfig/wsio.pc")
libs_private=$(sed -n 's/^Libs.private: //p' "$lib/pkgconfig/wsio.pc")
# shellcheck disable=SC2086
cc -std=c11 -I"$root/usr/include" "$tmp/version.c" "$lib/libwsio.a" $(pkg-config --static --libs $requires) \
   $libs_private -o "$tmp/version" || fail "a program does not link with the packaged libwsio.a"
[ "$("$tmp/version")" = "$version" ] || fail "the packaged libwsio.a says $("$tmp/version")"

# Every library the ELF files need comes from a package their Depends name.
needs() { # needs DEB ELF
  deps=$(field "$1" Depends)
  for so in $(readelf -d "$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$2" | awk -v so="$so" '$1 == so {print $3} substr($1, length($1) - length(so)) == "/" so {print $1}')
    [ -n "$path" ] || fail "$2 needs $so, which this machine does not have"
    owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
    owner=${owner%%:*}
    [ -n "$owner" ] || fail "no package owns $path"
    echo "$deps" | grep -qE "(^|, )$owner( |,|$)" || fail "$(basename "$1"): needs $so of $owner, not in Depends: $deps"
  done
}
needs "$deb_wsio" "$root/usr/bin/wsio"
needs "$deb_lib" "$lib/libwsio.so.$version"
echo "$name: wsio Depends: $(field "$deb_wsio" Depends)"
echo "$name: libwsio$major Depends: $(field "$deb_lib" Depends)"

# ---- the unit ----
unit=$root/lib/systemd/system/wsio.service
for line in User=wsio NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
            ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes CapabilityBoundingSet= \
            'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' LimitNOFILE=1048576; do
  grep -qx "$line" "$unit" || fail "wsio.service lacks $line"
done
if command -v systemd-analyze >/dev/null 2>&1; then
  # systemd's own exposure score of the sandbox, 0 (locked down) to 10; "OK" is below 2 (--threshold is
  # in tenths).
  systemd-analyze security --offline=true --root="$root" --threshold=20 wsio.service >"$tmp/security.log" 2>&1 ||
    { cat "$tmp/security.log" >&2; fail "systemd-analyze security: exposure above 2"; }
  echo "$name: $(grep 'Overall exposure level' "$tmp/security.log")"
else
  echo "$name: systemd-analyze not installed: the exposure score is not checked"
fi

# ExecStart, its absolute paths taken inside the root, on a free loopback port (flags beat the file).
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ -n "$exec_start" ] || fail "wsio.service has no ExecStart"
set --
for word in $exec_start; do
  case "$word" in
    /*) set -- "$@" "$root$word" ;;
    *) set -- "$@" "$word" ;;
  esac
done
set -- "$@" --host 127.0.0.1 --port 0
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  # User=wsio: an unprivileged user; nobody stands in for it.
  set -- setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
fi
echo "$name: running $*"
[ ! -e /usr/share/wsio/socket.io-client ] ||
  echo "$name: note: this machine has /usr/share/wsio/socket.io-client; the bundle is compared byte for byte below"
echo "// the copy unpacked in $root" >>"$root/usr/share/wsio/socket.io-client/socket.io.js"
start_server "$tmp/wsio.log" "$@"
wait_port "$tmp/wsio.log"
[ "$(curl -sf "http://127.0.0.1:$port/healthz")" = ok ] || fail "/healthz did not answer ok"
curl -sf "http://127.0.0.1:$port/socket.io/socket.io.js" -o "$tmp/served.js" || fail "no /socket.io/socket.io.js"
cmp -s "$tmp/served.js" "$root/usr/share/wsio/socket.io-client/socket.io.js" ||
  fail "/socket.io/socket.io.js is not the bundle unpacked from the package"
# A Socket.IO handshake answers (Engine.IO open packet).
curl -sf "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling" | grep -q '^0{"sid":' ||
  fail "no Engine.IO handshake at /socket.io/"
stop_server "$tmp/wsio.log"
echo "$name: the packages install where Debian expects, and the unit's command serves /healthz and the bundle"
