#!/usr/bin/env bash
# Fetches the third-party sources real guest programs are built from, as npm registry
# packages pinned by version and sha256, into third_party/ (never committed):
#   third_party/sqlite3/   sqlite3.c, sqlite3.h   (SQLite amalgamation, from better-sqlite3)
#   third_party/quickjs/   QuickJS 2021-03-27     (from qjsc)
#   third_party/asc/       the AssemblyScript compiler 0.27.37 and its WASI shim, laid out
#                          as node_modules/ (builds guests/assemblyscript/*.ts)
# Safe to run again: a package whose files are extracted from the pinned tarball is skipped,
# and a tarball already in third_party/ is reused, so it also works offline once fetched.
# A checksum mismatch stops with an error and keeps nothing of that package.
set -euo pipefail
cd "$(dirname "$0")/.."
TP="$PWD/third_party"
mkdir -p "$TP"

die() {
  echo "fetch_third_party: $*" >&2
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch NAME VERSION SHA256 DEST SRC_DIR_IN_PACKAGE FILE...
# Extracts package/SRC_DIR/FILE... (or all of SRC_DIR when no FILE is given; the whole
# package when SRC_DIR is "") into third_party/DEST/, and records the tarball's sha256 in
# third_party/DEST/.stamp.
fetch() {
  local name=$1 version=$2 sha=$3 dest=$4 srcdir=$5
  shift 5
  local files=("$@")
  # npm pack names a scoped package's tarball @scope/pkg as scope-pkg-VERSION.tgz.
  local file=${name#@}
  file="${file//\//-}-${version}.tgz"
  local tarball="$TP/$file"
  local out="$TP/$dest"

  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$sha" ]; then
    local complete=1 f
    for f in "${files[@]}"; do [ -f "$out/$f" ] || complete=0; done
    find "$out" -mindepth 1 -maxdepth 1 ! -name .stamp | grep -q . || complete=0
    if [ "$complete" = 1 ]; then
      echo "==> third_party/$dest: $name@$version (already fetched)"
      return
    fi
  fi

  if [ ! -f "$tarball" ] || [ "$(sha256_of "$tarball")" != "$sha" ]; then
    command -v npm >/dev/null ||
      die "npm is needed to fetch $name@$version (scripts/setup.sh installs it)"
    echo "==> fetching $name@$version (npm pack)"
    rm -f "$tarball"
    local tmp
    tmp=$(mktemp -d "$TP/.pack.XXXXXX")
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null) ||
      { rm -rf "$tmp"; die "npm pack $name@$version failed"; }
    [ -f "$tmp/$file" ] ||
      { rm -rf "$tmp"; die "npm pack gave no $file"; }
    mv "$tmp/$file" "$tarball"
    rm -rf "$tmp"
  fi
  local got
  got=$(sha256_of "$tarball")
  if [ "$got" != "$sha" ]; then
    rm -rf "$tarball" "$out"
    die "CHECKSUM MISMATCH for $name@$version: expected $sha, got $got" \
      "(tarball and third_party/$dest deleted)"
  fi

  rm -rf "$out" "$out.tmp"
  mkdir -p "$out.tmp"
  local members=()
  if [ -z "$srcdir" ]; then
    members=("package")
  elif [ ${#files[@]} -eq 0 ]; then
    members=("package/$srcdir")
  else
    local f
    for f in "${files[@]}"; do members+=("package/$srcdir/$f"); done
  fi
  local depth=1
  [ -n "$srcdir" ] && depth=$(tr -cd / <<<"package/$srcdir/" | wc -c)
  # --touch: files get the extraction time (npm stores 1985), so a new version rebuilds.
  tar -xzf "$tarball" -C "$out.tmp" --no-same-owner --touch --strip-components="$depth" \
    "${members[@]}" || {
    rm -rf "$out.tmp"
    die "extracting $name@$version failed"
  }
  echo "$sha" >"$out.tmp/.stamp"
  mv "$out.tmp" "$out"
  echo "==> third_party/$dest: $name@$version"
}

# SQLite 3.53.2 amalgamation.
fetch better-sqlite3 12.11.1 ebf0ed75a7a59dbcb3b24bbd014ef49d9f15bc328e4adcbf516f2a8fadfa2835 \
  sqlite3 deps/sqlite3 sqlite3.c sqlite3.h
# QuickJS 2021-03-27, the whole source folder.
fetch qjsc 0.3.0 4a9ed1852b334d842d5dac42d1782817ae26310b448de39532451fd45c9ba0ee \
  quickjs deps/quickjs_2021_03_27
# The AssemblyScript compiler with its two dependencies at the versions its package.json
# asks for, and the WASI shim, as a node_modules/ tree that `node asc.js` runs from.
fetch assemblyscript 0.27.37 afa76e400f90209e04006f83a112f9890d0950b5b6b37f3e7862fb78f2039a65 \
  asc/node_modules/assemblyscript ""
fetch binaryen 116.0.0-nightly.20240114 \
  3004dd47f97dbd08352ceb51ff97877deae1a715532e3f337cd32c83c993c648 asc/node_modules/binaryen ""
fetch long 5.2.4 881b68e05deaef4ec36dd8e6157e001337c58a8bd9b14c96713cf2be70fdc76c \
  asc/node_modules/long ""
fetch @assemblyscript/wasi-shim 0.1.0 \
  e8b4410255e6f86cb96c2ce1d191fa9a6b45d274f0f506c4132e8075634ea005 \
  asc/node_modules/@assemblyscript/wasi-shim ""
