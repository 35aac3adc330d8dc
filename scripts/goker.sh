#!/usr/bin/env bash
# GoKer benchmark: runs Go's own goroutine-leak corpus (runtime/testdata/testgoroutineleakprofile of
# Go 1.27.3: micro tests, common patterns and the GoKer bugs) with each Go version, and compares
# what gostall proves leaked in each live process with Go 1.27's built-in leak detector on the same
# process. Builds gostall (release) first.
#
#   scripts/goker.sh [--go VERSION[,VERSION]|all] [--cases strict|all] [--case NAME[,NAME]]
#                    [--jobs N] [--repeat N|go] [--timeout SECONDS] [--leaks]
#
# Prints one table per Go version and a summary; exits non-zero only on harness errors.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p gostall
exec cargo run --release -q -p gostall-corpus --example goker -- \
  --gostall "$CARGO_TARGET_DIR/release/gostall" "$@"
