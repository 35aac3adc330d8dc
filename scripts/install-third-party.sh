#!/usr/bin/env bash
# Installs the third-party Go release binaries the tests read live, from package registries, and
# prints the path of each. Idempotent; cached in $GOSTALL_THIRD_PARTY_CACHE (default
# ~/.cache/gostall/third-party).
#
#   esbuild 0.28.2 (npm): a Go 1.26 program shipped stripped, without DWARF, symbol table or build
#   information.
set -euo pipefail
cache="${GOSTALL_THIRD_PARTY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gostall/third-party}"
esbuild_version=0.28.2
dir="$cache/esbuild-$esbuild_version"
exe="$dir/node_modules/@esbuild/linux-x64/bin/esbuild"
if [ ! -x "$exe" ] || [ ! -f "$dir/.complete" ]; then
  command -v npm >/dev/null || { echo "install-third-party: npm is needed to fetch esbuild" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent "esbuild@$esbuild_version" >&2)
  [ -x "$exe" ] || { echo "install-third-party: esbuild@$esbuild_version did not provide $exe" >&2; exit 1; }
  touch "$dir/.complete"
fi
echo "esbuild=$exe"
