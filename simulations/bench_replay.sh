#!/usr/bin/env bash
# Replay speed on the whole dev set (136 pump files, ~2.09 M trades), release build: median wall
# time and peak memory of `smartflow replay` with the default detector (the ensemble) and with
# `[models] mode = "rules"`, against `zcat` of the same files, over RUNS runs (default 5).
# Usage: simulations/bench_replay.sh [RUNS]   (needs /usr/bin/time: apt-get install time)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
data="${SMARTFLOW_DATA:-../shared/data}/binance_pumps/trades"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smartflow-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/smartflow"
state="$(mktemp -d)"
out="$(mktemp -d)"
trap 'rm -rf "$state" "$out"' EXIT
printf '[models]\nmode = "rules"\n' > "$out/mode-rules.toml"
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %M" -o "$out/zcat.$i" sh -c "zcat $data/*.csv.gz > /dev/null"
  rm -rf "$state/ens" "$state/rules"
  /usr/bin/time -f "%e %M" -o "$out/ensemble.$i" \
    "$bin" --state "$state/ens" replay --quiet --data "$data" > "$out/summary.ensemble.$i"
  /usr/bin/time -f "%e %M" -o "$out/rules.$i" \
    "$bin" --config "$out/mode-rules.toml" --state "$state/rules" replay --quiet --data "$data" \
    > "$out/summary.rules.$i"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
z=$(cat "$out"/zcat.* | awk '{print $1}' | median)
echo "runs: $runs"
echo "zcat wall median:   ${z} s   (all: $(awk '{printf "%s ", $1}' "$out"/zcat.*))"
for mode in ensemble rules; do
  r=$(cat "$out/$mode".* | awk '{print $1}' | median)
  m=$(cat "$out/$mode".* | awk '{print $2}' | median)
  echo "$mode: $(grep -h "replay finished" "$out/summary.$mode".* | head -1)"
  echo "  wall median ${r} s = $(awk -v r="$r" -v z="$z" 'BEGIN{printf "%.2f", r/z}')x zcat (goal <= 3x); peak RSS median $((m / 1024)) MB (goal < 400 MB)"
  echo "  all runs: $(awk '{printf "%s ", $1}' "$out/$mode".*)"
done
