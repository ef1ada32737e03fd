#!/usr/bin/env bash
# Runs `paper` against a loopback venue that misbehaves on a schedule (garbage, truncated
# frames, duplicate and out-of-order sequence numbers, a far-future timestamp, slow bytes, a
# 50 MB frame, a stall, a dropped connection, round after round) for a fixed time, and prints
# the faults injected, the feed's counters (how each was seen), entries approved and refused
# (none while the feed was unhealthy) and the peak RSS of the process.
# Usage: simulations/faults.sh [SECONDS (default 120)]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smartflow-target}"
export SMARTFLOW_FAULT_SECS="${1:-120}"
cargo test --release --quiet --test faults -- --ignored --nocapture fault_figures
