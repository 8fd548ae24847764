#!/usr/bin/env bash
# `make deb`: builds gonet_<version>_<arch>.deb from a build directory, with dpkg-deb.
#
#   /usr/bin/gonet, /usr/bin/gonet-run
#   /usr/lib/<multiarch>/gonet/libgonet.so      (private: preloaded by path, never linked)
#   /usr/share/man/man1/gonet.1.gz (+ gonet-run.1.gz), /usr/share/man/man7/libgonet.7.gz
#   /usr/share/bash-completion/completions/gonet
#   /usr/share/doc/gonet/{copyright,changelog.gz,examples/gonet.conf (a systemd drop-in)}
#
# The files come from `cmake --install BUILD --prefix /usr --strip` (the same install rules as
# make install), then get what Debian policy asks of a package: man pages gzip -9n, shared
# objects 0644, md5sums, a Depends line from dpkg-shlibdeps, root-owned files. The version is
# CMake's project version (a native package: no Debian revision).
#
# Usage: scripts/deb.sh BUILD_DIR [OUT_DIR]   (OUT_DIR defaults to BUILD_DIR)
# Prints the path of the .deb on stdout.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
OUT=$(cd "${2:-$1}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for need in dpkg-deb dpkg-shlibdeps; do
  command -v "$need" >/dev/null || { echo "deb: $need is missing (apt-get install dpkg-dev)" >&2; exit 1; }
done
for need in gonet libgonet.so; do
  [[ -e $BUILD/$need ]] || { echo "deb: $BUILD/$need is missing; build first (make deb)" >&2; exit 1; }
done

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[[ -n $version ]] || { echo "deb: no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt" >&2; exit 1; }
arch=$(dpkg --print-architecture)
deb=$OUT/gonet_${version}_${arch}.deb

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gonet-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
stage=$WORK/root
umask 022

DESTDIR=$stage cmake --install "$BUILD" --prefix /usr --strip >"$WORK/install.log"

# Policy 12.1: man pages compressed with gzip -9n; an alias is a symlink to its page.
find "$stage/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +
ln -s gonet.1.gz "$stage/usr/share/man/man1/gonet-run.1.gz"

# Shared objects are not executables (policy 8.1).
find "$stage/usr/lib" -type f -name '*.so' -exec chmod 0644 {} +

doc=$stage/usr/share/doc/gonet
mkdir -p "$doc"
cat >"$doc/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: gonet
Comment: Go's network poller for unmodified blocking-socket programs (an LD_PRELOAD shim).

Files: *
Copyright: 2026 The gonet authors
License: Expat

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
# A native package's changelog is changelog.gz (policy 12.7), in Debian's changelog format.
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(git -C "$ROOT" log -1 --format=%aD 2>/dev/null || date -R)
cat >"$WORK/changelog" <<EOF
gonet ($version) unstable; urgency=medium

  * Built from commit $commit.

 -- gonet developers <gonet@example.org>  $date
EOF
gzip -9n -c "$WORK/changelog" >"$doc/changelog.gz"

# Depends: what the dynamic linker needs for gonet and libgonet.so, from the shlibs database.
mkdir -p "$WORK/src/debian"
printf 'Source: gonet\n\nPackage: gonet\nArchitecture: any\n' >"$WORK/src/debian/control"
objects=("$stage/usr/bin/gonet" "$stage"/usr/lib/*/gonet/libgonet.so)
depends=$(cd "$WORK/src" && dpkg-shlibdeps -O "${objects[@]}" 2>"$WORK/shlibdeps.err" |
  sed -n 's/^shlibs:Depends=//p') || true
[[ -n $depends ]] || { echo "deb: dpkg-shlibdeps failed: $(cat "$WORK/shlibdeps.err")" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k2) >"$stage/DEBIAN/md5sums"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: gonet
Version: $version
Architecture: $arch
Maintainer: gonet developers <gonet@example.org>
Installed-Size: $installed_kb
Depends: $depends
Section: net
Priority: optional
Description: Go's network poller for unmodified blocking-socket programs
 gonet runs a program written for blocking sockets (a thread-per-connection
 server, a prefork daemon, a command-line client) with libgonet.so preloaded:
 every socket call that would block waits on an edge-triggered epoll loop as
 a goroutine does in Go, so the program gains deadlines given from outside
 (slow-client protection), a close that wakes blocked threads, live counters
 (gonet stats), a dump of every blocked connection with its backtrace (gonet
 dump) and socket fault injection, without being rebuilt. In fibers mode its
 threads become fibers on a few worker threads, for thousands of connections.
 .
 gonet check tells, before a program is started, whether and how it can run
 under gonet.
EOF

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
