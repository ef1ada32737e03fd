#!/usr/bin/env bash
# Injects one panic into each pipeline stage mid-run and checks that the decision log is
# byte-identical to a clean run (the supervisor restarts the stage; no event is lost).
# Usage: simulations/fault_injection.sh [DATA_PATHS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smartflow-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/smartflow"
data=("${@:-${SMARTFLOW_DATA:-../shared/data}/binance_pumps/trades}")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" --state "$work/clean" replay --quiet --data "${data[@]}" > "$work/clean.txt"
"$bin" --state "$work/clean" log export > "$work/clean.jsonl"
events=$(grep -o 'replay finished: [0-9]*' "$work/clean.txt" | grep -o '[0-9]*$')
echo "clean run: $events events, $(wc -l < "$work/clean.jsonl") records"
for stage in features detector strategy risk executor; do
  at=$((events / 2)); [ "$stage" = strategy ] || [ "$stage" = risk ] && at=0
  "$bin" --state "$work/$stage" replay --quiet --inject-panic "$stage@$at" --data "${data[@]}" > "$work/$stage.txt" 2> "$work/$stage.err"
  "$bin" --state "$work/$stage" log export > "$work/$stage.jsonl"
  if cmp -s "$work/clean.jsonl" "$work/$stage.jsonl"; then same=identical; else same=DIFFERENT; fi
  echo "panic in $stage@$at: $(grep -o 'actor restarts: .*' "$work/$stage.txt" || echo 'no restart'); log $same"
done
