#!/usr/bin/env python3
"""Trains smartflow's gradient-boosted member (LightGBM) and converts it to ONNX.

Called by `smartflow train`; can be run by hand on the CSVs it writes:

    train_gbm.py --train train.csv --check check.csv --params params.json --out DIR

train.csv: one column per model input (names as in smartflow's features) and `label` (0/1), values
already finite (NaN -> 0, +-inf clamped). check.csv: the same inputs without label; their LightGBM
probabilities are recorded so the Rust side can verify that its own walk of the trees gives the
same numbers (to 1e-6).
Writes DIR/gbm.onnx (input `input` float32 [n, features], outputs `label`, `probabilities`) and
DIR/gbm.json (params, versions, feature names, check rows with their probabilities and LightGBM's
own SHAP values `pred_contrib`, and per tree the training rows reaching each node, for TreeSHAP).

Deterministic: one thread, `deterministic=True`, seed from params.
"""
import argparse
import json
import sys


def tree_counts(root):
    """One tree's nodes in pre-order, the `<=` (left, ONNX true) child first: the training rows
    reaching each node (`counts`) and, for leaves in the same order, their values (`leaves`, so
    the reader can prove it matched the nodes to the ONNX trees)."""
    counts, leaves, todo = [], [], [root]
    while todo:
        n = todo.pop()
        if "leaf_value" in n:
            counts.append(int(n.get("leaf_count", 0)))
            leaves.append(float(n["leaf_value"]))
        else:
            counts.append(int(n["internal_count"]))
            todo.append(n["right_child"])
            todo.append(n["left_child"])
    return {"counts": counts, "leaves": leaves}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--check", required=True)
    ap.add_argument("--params", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        import numpy as np
        import lightgbm as lgb
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as e:
        print(f"train_gbm.py: {e}; run `pip install -r scripts/requirements-train.txt`", file=sys.stderr)
        return 2

    with open(a.params) as f:
        p = json.load(f)
    with open(a.train) as f:
        names = f.readline().strip().split(",")[:-1]
    data = np.loadtxt(a.train, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    x, y = data[:, :-1], data[:, -1].astype(int)
    check = np.loadtxt(a.check, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)

    clf = lgb.LGBMClassifier(
        n_estimators=p["n_estimators"],
        num_leaves=p["num_leaves"],
        learning_rate=p["learning_rate"],
        min_child_samples=p["min_child_samples"],
        colsample_bytree=p["colsample_bytree"],
        reg_lambda=p["reg_lambda"],
        random_state=p["seed"],
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    clf.fit(x, y)
    onx = onnxmltools.convert_lightgbm(
        clf,
        name="smartflow_gbm",  # fixed: the default graph name is a random uuid
        initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
        zipmap=False,
    )
    # The converter gathers opset imports in a set, so their order follows Python's hash seed:
    # sort them by domain so the same model always gives the same bytes.
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    with open(f"{a.out}/gbm.onnx", "wb") as f:
        f.write(onx.SerializeToString())
    probs = clf.predict_proba(check)[:, 1] if len(check) else np.array([])
    # Per-input SHAP values of the raw score (log-odds), last column the expected value.
    contrib = clf.booster_.predict(check, pred_contrib=True) if len(check) else np.zeros((0, 0))
    meta = {
        "params": p,
        "lightgbm": lgb.__version__,
        "onnxmltools": onnxmltools.__version__,
        "features": names,
        "train_rows": int(len(y)),
        "train_pump_rows": int(y.sum()),
        "check": {
            "rows": check.astype(float).tolist(),
            "probabilities": [float(v) for v in probs],
            "contributions": contrib.astype(float).tolist(),
        },
        "trees": [tree_counts(t["tree_structure"]) for t in clf.booster_.dump_model()["tree_info"]],
    }
    with open(f"{a.out}/gbm.json", "w") as f:
        json.dump(meta, f)
    print(f"train_gbm.py: {len(y)} rows ({int(y.sum())} pump), {p['n_estimators']} trees -> {a.out}/gbm.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
