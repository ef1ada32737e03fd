#!/usr/bin/env bash
# Fuzzes every parser of outside input (venue frames, REST answers, data files, numbers, times,
# config) with mutants of the real captures in the shared data, and prints inputs, panics
# (must be 0), invariant violations (must be 0) and rejections by reason.
# Usage: simulations/fuzz.sh [INPUTS (default 10000000)] [SEED (default 1)]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smartflow-target}"
# The fuzz profile: release speed, overflow checks on (an overflow is a panic, not a wrap).
cargo build --profile fuzz --quiet
"$CARGO_TARGET_DIR/fuzz/smartflow" fuzz --inputs "${1:-10000000}" --seed "${2:-1}"
