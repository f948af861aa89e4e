#!/bin/sh
# Builds the Debian packages (wsio, libwsio0, libwsio-dev) of the source tree SRC in BUILD_DIR, a build
# tree of their own: prefix /usr (the paths compiled into the program and written into the unit and the
# maintainer scripts come from it), the flags CI tests (RelWithDebInfo: -O2 -g; CPack strips the files),
# no tests. The .deb files land in BUILD_DIR/packages.
# Usage: packaging/build-deb.sh [SRC] [BUILD_DIR]      (defaults: the tree above this script, build-package)
set -eu
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-$src/build-package}
jobs=${JOBS:-2}

if [ ! -r "$src/tests/node_modules/socket.io-client/dist/socket.io.js" ]; then
  echo "build-deb: $src/tests/node_modules/socket.io-client/dist is missing: run scripts/deps first" >&2
  exit 1
fi
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v $tool >/dev/null 2>&1 || { echo "build-deb: $tool not found (apt-get install dpkg-dev)" >&2; exit 1; }
done
# Only what the packages hold is built (not the examples and benchmarks): installing does not build "all".
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DWSIO_TESTS=OFF \
      -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
cmake --build "$build" -j "$jobs" --target wsio wsio_shared wsio_dist_static wsio_man_page >/dev/null
rm -f "$build"/packages/*.deb
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/packages/*.deb
