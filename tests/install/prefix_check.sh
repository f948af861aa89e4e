#!/bin/sh
# install/prefix: `cmake --install` of this build into a temporary prefix (and with DESTDIR), then what a
# user of the installed tree does: the program serves the installed client bundle; a program built against
# wsio.h reports the version the packaging files name; examples/embed is built out of tree four ways
# (pkg-config and find_package, each shared and static), run, and talked to by the npm clients.
# Usage: prefix_check.sh BUILD_DIR SOURCE_DIR VERSION
set -eu
name=install/prefix
build=$1
src=$2
version=$3
major=${version%%.*}
. "$(dirname "$0")/lib.sh"

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
if [ "$(cache CMAKE_INSTALL_PREFIX)" = /usr ]; then
  # Its configuration file would go to /etc, outside any temporary prefix; install/deb covers /usr.
  echo "$name: skipped: $build is configured for prefix /usr"
  exit 77
fi
node=$(command -v node || true)
[ -n "$node" ] && [ -r "$src/tests/node_modules/socket.io-client/package.json" ] ||
  { echo "$name: skipped: node and tests/node_modules are needed (scripts/deps)"; exit 77; }

# ---- install ----
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
libdir=$prefix/$(cache CMAKE_INSTALL_LIBDIR)
client=$prefix/share/wsio/socket.io-client
for f in include/wsio.h bin/wsio share/man/man1/wsio.1.gz etc/wsio/wsio.conf share/doc/wsio/wsio.conf.example \
         lib/systemd/system/wsio.service share/wsio/socket.io-client/socket.io.js \
         share/wsio/socket.io-client/socket.io.min.js share/wsio/socket.io-client/LICENSE; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
for f in libwsio.a pkgconfig/wsio.pc cmake/wsio/wsioConfig.cmake cmake/wsio/wsioConfigVersion.cmake \
         cmake/wsio/wsioTargets.cmake cmake/wsio/wsioStaticTargets.cmake; do
  [ -f "$libdir/$f" ] || fail "$libdir/$f not installed"
done
# libwsio.so -> libwsio.so.MAJOR -> libwsio.so.MAJOR.MINOR.PATCH
[ -f "$libdir/libwsio.so.$version" ] && [ ! -L "$libdir/libwsio.so.$version" ] || fail "no libwsio.so.$version"
[ "$(readlink "$libdir/libwsio.so.$major")" = "libwsio.so.$version" ] || fail "libwsio.so.$major is not a link to libwsio.so.$version"
[ "$(readlink "$libdir/libwsio.so")" = "libwsio.so.$major" ] || fail "libwsio.so is not a link to libwsio.so.$major"
readelf -d "$libdir/libwsio.so.$version" | grep -q "(SONAME).*\[libwsio.so.$major\]" || fail "soname is not libwsio.so.$major"
# The archive carries llhttp: one archive to link.
nm "$libdir/libwsio.a" 2>/dev/null | grep -q " T llhttp_execute$" || fail "libwsio.a lacks llhttp"
grep -q '^host = 127.0.0.1 ' "$prefix/etc/wsio/wsio.conf" || fail "etc/wsio/wsio.conf does not listen on loopback"
# The configuration installed is valid.
"$prefix/bin/wsio" --config "$prefix/etc/wsio/wsio.conf" --check-config >"$tmp/check.log" 2>&1 ||
  { cat "$tmp/check.log" >&2; fail "the installed wsio.conf does not pass --check-config"; }

# DESTDIR stages under its folder and writes nothing at the prefix itself.
DESTDIR=$tmp/stage cmake --install "$build" --prefix /opt/wsio-install-check >/dev/null
[ -x "$tmp/stage/opt/wsio-install-check/bin/wsio" ] || fail "DESTDIR: bin/wsio not staged"
[ ! -e /opt/wsio-install-check ] || fail "DESTDIR: files written outside the staging folder"

# Installing again keeps a configuration edited since; the new default goes beside it.
echo "# edited by the administrator" >>"$prefix/etc/wsio/wsio.conf"
cmake --install "$build" --prefix "$prefix" >"$tmp/install2.log"
grep -q "^# edited by the administrator" "$prefix/etc/wsio/wsio.conf" || fail "a second install replaced an edited wsio.conf"
cmp -s "$prefix/etc/wsio/wsio.conf.default" "$build/packaging/wsio.conf" || fail "no wsio.conf.default beside the kept wsio.conf"

# The installed copy of the bundle is marked so that serving any other copy shows.
echo "// the copy installed in $prefix" >>"$client/socket.io.js"

# ---- the installed program ----
[ "$("$prefix/bin/wsio" --version)" = "wsio $version" ] || fail "wsio --version does not say $version"
start_server "$tmp/wsio.log" "$prefix/bin/wsio" --host 127.0.0.1 --port 0
wait_port "$tmp/wsio.log"
[ "$(curl -sf "http://127.0.0.1:$port/healthz")" = ok ] || fail "wsio: /healthz"
curl -sf "http://127.0.0.1:$port/socket.io/socket.io.js" -o "$tmp/served.js" || fail "wsio: no /socket.io/socket.io.js"
cmp -s "$tmp/served.js" "$client/socket.io.js" || fail "wsio serves a socket.io.js other than $client's"
stop_server "$tmp/wsio.log"

# ---- pkg-config and the CMake package agree on the version and the bundle ----
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion wsio)" = "$version" ] || fail "wsio.pc says $(pkg-config --modversion wsio)"
same_path "$(pkg-config --variable=clientdir wsio)" "$client" || fail "wsio.pc's clientdir is not $client"
mkdir "$tmp/version"
cat >"$tmp/version/version.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <wsio.h>
#define STR_(x) #x
#define STR(x) STR_(x)
int main(void) {
  const char *h = STR(WSIO_VERSION_MAJOR) "." STR(WSIO_VERSION_MINOR) "." STR(WSIO_VERSION_PATCH);
  printf("%s\n", wsio_version());
  return strcmp(h, wsio_version()) != 0;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror $(pkg-config --cflags wsio) "$tmp/version/version.c" $(pkg-config --libs wsio) \
   -o "$tmp/version/version"
[ "$(LD_LIBRARY_PATH=$libdir "$tmp/version/version")" = "$version" ] ||
  fail "wsio_version() of the installed library, wsio.h and wsio.pc disagree"

# ---- examples/embed, out of tree, four ways ----
# run_embed DIR LIBRARY_PATH NEEDS_SHARED: runs DIR/embed, talks to it, stops it.
run_embed() {
  exe=$1/embed
  if [ "$3" = yes ]; then
    readelf -d "$exe" | grep -q "(NEEDED).*\[libwsio.so.$major\]" || fail "$exe does not link libwsio.so.$major"
    LD_LIBRARY_PATH=$2 ldd "$exe" | grep -q "libwsio.so.$major => $libdir/" || fail "$exe does not load $libdir's libwsio"
  else
    readelf -d "$exe" | grep -q "(NEEDED).*libwsio" && fail "$exe links libwsio.so, not libwsio.a"
  fi
  start_server "$1/run.log" env LD_LIBRARY_PATH="$2" "$exe" --host 127.0.0.1 --port 0
  wait_port "$1/run.log"
  "$node" "$src/tests/install/embed_client.mjs" "http://127.0.0.1:$port" "$client/socket.io.js" ||
    { cat "$1/run.log" >&2; fail "$exe: the client checks failed"; }
  stop_server "$1/run.log"
  grep -q "^embed: stopped after" "$1/run.log" || fail "$exe did not stop cleanly"
  echo "$name: $exe: ok"
}
for way in pc-shared pc-static cmake-shared cmake-static; do
  mkdir "$tmp/$way"
  cp "$src/examples/embed/main.c" "$src/examples/embed/Makefile" "$src/examples/embed/CMakeLists.txt" "$tmp/$way/"
done
make -s -C "$tmp/pc-shared" >/dev/null
make -s -C "$tmp/pc-static" STATIC=1 >/dev/null
unset PKG_CONFIG_PATH # find_package alone must find it, and the dependencies of wsio::wsio_static
cmake -S "$tmp/cmake-shared" -B "$tmp/cmake-shared/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cmake-shared/b" >/dev/null
cmake -S "$tmp/cmake-static" -B "$tmp/cmake-static/b" -DCMAKE_PREFIX_PATH="$prefix" -DEMBED_STATIC=ON >/dev/null
cmake --build "$tmp/cmake-static/b" >/dev/null

run_embed "$tmp/pc-shared" "$libdir" yes
run_embed "$tmp/pc-static" "" no
run_embed "$tmp/cmake-shared/b" "" yes # CMake's build RPATH finds the library
run_embed "$tmp/cmake-static/b" "" no
echo "$name: installed into $prefix; the program and examples/embed (pkg-config and find_package, shared and static) work"
