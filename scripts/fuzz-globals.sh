#!/usr/bin/env bash
# Fuzzes the code that finds the runtime's globals in stripped binaries (fuzz/fuzz_targets/
# globals.rs) against hostile memory, with a -s -w build of a corpus scenario.
#
#   scripts/fuzz-globals.sh [SECONDS] [GO_VERSION]     # default 600 s, Go 1.27.3
#
# Needs cargo-fuzz and a nightly toolchain (`cargo install cargo-fuzz`, `rustup toolchain install
# nightly`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
secs="${1:-600}"
version="${2:-1.27.3}"
goroot="$("$here/install-go.sh" "$version")"
out="$root/target/fuzz-globals"
mkdir -p "$out"
(cd "$root/scenarios" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOCACHE="$out/gocache" CGO_ENABLED=0 \
  "$goroot/bin/go" build -ldflags='-s -w' -o "$out/abba-deadlock-stripped" ./abba-deadlock)
cd "$root/fuzz"
GOSTALL_FUZZ_STRIPPED="$out/abba-deadlock-stripped" \
  cargo +nightly fuzz run globals -- -max_total_time="$secs" -rss_limit_mb=2048
