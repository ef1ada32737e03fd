#!/usr/bin/env bash
# Replay speed on the whole dev set (136 pump files, ~2.09 M trades), release build:
# median wall time and peak memory of `smartflow replay` against `zcat` of the same files.
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
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %M" -o "$out/zcat.$i" sh -c "zcat $data/*.csv.gz > /dev/null"
  /usr/bin/time -f "%e %M" -o "$out/replay.$i" "$bin" --state "$state" replay --quiet --data "$data" > "$out/summary.$i"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
z=$(cat "$out"/zcat.* | awk '{print $1}' | median)
r=$(cat "$out"/replay.* | awk '{print $1}' | median)
m=$(cat "$out"/replay.* | awk '{print $2}' | median)
grep -h "replay finished" "$out"/summary.* | head -1
echo "runs: $runs"
echo "zcat wall median:   ${z} s"
echo "replay wall median: ${r} s   ($(awk -v r="$r" -v z="$z" 'BEGIN{printf "%.2f", r/z}')x zcat; goal <= 3x)"
echo "replay peak RSS median: $((m / 1024)) MB   (goal < 400 MB)"
