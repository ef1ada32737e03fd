#!/usr/bin/env bash
# Choose model changes on the development events only: rolling time folds over the events a model
# trained and calibrated on (its manifest's `split.train` + `split.calibrate`, in pump-time order),
# so its validation events stay unseen until a change is adopted.
#   fold A = the earliest 80 % of those events (60/20/20 again inside: train/calibrate/validate)
#   fold B = all of them
# Each fold trains a throw-away model with the default config plus EXTRA (TOML under [train]) and
# prints its validation lines (ensemble and every member: flagged ≤5/25/60 s, FA per inst-week,
# PR-AUC). Compare a change against a run with EXTRA empty.
# Usage: simulations/dev_folds.sh [MODEL_DIR] [EXTRA]
#   e.g. simulations/dev_folds.sh models/v4 'rearm_secs = 0'
#        simulations/dev_folds.sh models/v4 '[train.chunks]\nlm_window_5s = 500'
# Needs the training packages (pip install -r scripts/requirements-train.txt); ~3 min per run.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/v4}"
extra="${2:-}"
data="${SMARTFLOW_DATA:-../shared/data}/binance_pumps/trades"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smartflow-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/smartflow"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Episode names are "<file>#<pair>"; the split lists are already in pump-time order.
python3 - "$model/manifest.json" "$data" "$work" <<'PY'
import json, sys
manifest, data, work = sys.argv[1:]
split = json.load(open(manifest))["split"]
dev = []
for name in split["train"] + split["calibrate"]:
    f = name.split("#")[0]
    if f not in dev:
        dev.append(f)
folds = {"A": dev[: round(len(dev) * 0.8)], "B": dev}
for k, files in folds.items():
    with open(f"{work}/fold{k}.txt", "w") as out:
        out.write("\n".join(f"{data}/{f}" for f in files) + "\n")
    print(f"fold {k}: {len(files)} events, {files[0]} … {files[-1]}")
PY
for f in A B; do
  d="$work/$f"
  mkdir -p "$d"
  printf '[models]\ndir = "%s"\n[train]\n%b\n' "$d/models" "$extra" > "$d/config.toml"
  # shellcheck disable=SC2046  # one argument per file
  "$bin" train --quiet --config "$d/config.toml" --data $(cat "$work/fold$f.txt") > "$d/train.log" 2>&1 \
    || { cat "$d/train.log"; exit 1; }
  echo "fold $f ${extra:+($extra)}"
  grep -E "split|^ +(ensemble|gbm|iforest|logistic|rules) " "$d/train.log"
done
