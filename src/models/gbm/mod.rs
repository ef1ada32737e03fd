//! Gradient-boosted trees (LightGBM, trained by `scripts/train_gbm.py`), evaluated natively.
//!
//! The artifact ships the trees as ONNX (`gbm.onnx`, an `ai.onnx.ml` `TreeEnsembleClassifier`);
//! [`Gbm::load`] reads them with [`super::onnx`] into flat arrays and walks them itself, so
//! inference needs no ONNX Runtime and no Python. Semantics are the operator's: a node sends its
//! float32 input to the true branch when the comparison holds (or when the input is NaN and the
//! node tracks missing values to the true side); a row's raw score is the sum of its leaves'
//! weights (in f64, as LightGBM sums them) plus the base value; the pump probability is the
//! logistic of the raw score. [`Gbm::check`] proves the result against the probabilities LightGBM
//! itself recorded at training (`gbm.json`).

mod shap;

use super::lockstep;
use super::onnx::TreeEnsembleAttrs;
use anyhow::{bail, ensure, Context, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Largest |LightGBM − ours| accepted on the recorded check rows.
pub const CHECK_TOLERANCE: f64 = 1e-6;

/// How a node compares its input `x` with its threshold `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

impl Mode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            _ => return None,
        })
    }
}

/// A branch node. A child `>= 0` is a node index, `< 0` the leaf `!child`.
#[derive(Clone, Copy, Debug)]
struct Node {
    threshold: f32,
    feature: u16,
    mode: Mode,
    missing_true: bool,
    yes: i32,
    no: i32,
}

impl Node {
    #[inline(always)]
    fn next(&self, x: &[f32]) -> i32 {
        let v = x[self.feature as usize];
        let t = self.threshold;
        let holds = match self.mode {
            Mode::Leq => v <= t,
            Mode::Lt => v < t,
            Mode::Gte => v >= t,
            Mode::Gt => v > t,
            Mode::Eq => v == t,
            Mode::Neq => v != t,
        } || (self.missing_true && v.is_nan());
        if holds {
            self.yes
        } else {
            self.no
        }
    }
}

/// A LightGBM binary classifier as flat trees. Cheap to share (read-only).
#[derive(Clone)]
pub struct Gbm {
    nodes: Vec<Node>,
    /// Per tree: its root (a node index, or `!leaf` for a one-leaf tree).
    roots: Vec<i32>,
    /// Per leaf: the sum of its class weights.
    leaves: Vec<f64>,
    base: f64,
    /// `suffix_max[k]`: the most trees `k..` can add to a raw score (`suffix_max[trees] = 0`).
    suffix_max: Vec<f64>,
    /// Lowest raw score any row can get.
    raw_min: f64,
    /// The same trees for branch-free walks, when every split is `BRANCH_LEQ` (LightGBM's): used
    /// for rows without NaN, where it gives the same leaves (and at most 64 inputs).
    fast: Option<lockstep::Forest<f32, EXIT_CHECK_EVERY>>,
    /// Training covers for TreeSHAP ([`Self::shap`]), when `gbm.json` recorded them.
    covers: Option<shap::Covers>,
    pub n_features: usize,
}

impl std::fmt::Debug for Gbm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Gbm({} trees, {} features)",
            self.roots.len(),
            self.n_features
        )
    }
}

/// [`Gbm::load_checked`] compares TreeSHAP with LightGBM's on every this many check rows.
const SHAP_CHECK_STRIDE: usize = 16;

/// How often (in trees) [`Gbm::raw_reaching`] checks whether the target is still reachable: once
/// per group of trees walked side by side (12: fewer overlap less, more exit later; measured on
/// the dev set's rows with `examples/score_cost.rs`, medians of 3–6 runs, since a group stops at
/// its last leaf: 8 → 1.61 µs a row, 12 → 1.54, 16 → 1.54; before, 4 → 2.79, 8 → 2.37, 32 → 3.57).
const EXIT_CHECK_EVERY: usize = 12;

impl Gbm {
    /// Reads `gbm.onnx`. Errors name the file and the unsupported or inconsistent part (a feature
    /// index ≥ `n_features`, a post-transform other than `LOGISTIC`, more than two classes, a
    /// child that is not in its tree).
    pub fn load(path: &Path, n_features: usize) -> Result<Self> {
        let attrs = TreeEnsembleAttrs::read(path)?;
        Self::from_attrs(&attrs, n_features)
            .with_context(|| format!("unsupported ONNX tree model {}", path.display()))
    }

    /// Builds the flat trees from the operator's parallel arrays.
    pub fn from_attrs(a: &TreeEnsembleAttrs, n_features: usize) -> Result<Self> {
        check_shape(a)?;
        // Leaf weights by (tree, node id).
        let mut weight: HashMap<(i64, i64), f64> = HashMap::new();
        for ((&t, &n), &w) in a
            .class_treeids
            .iter()
            .zip(&a.class_nodeids)
            .zip(&a.class_weights)
        {
            *weight.entry((t, n)).or_default() += w as f64;
        }
        // Slot of every (tree, node id): a branch index or a leaf index.
        let mut slot: HashMap<(i64, i64), i32> = HashMap::new();
        let mut tree_ids: BTreeSet<i64> = BTreeSet::new();
        let (mut n_nodes, mut n_leaves) = (0i32, 0i32);
        for i in 0..a.nodes_nodeids.len() {
            let key = (a.nodes_treeids[i], a.nodes_nodeids[i]);
            tree_ids.insert(key.0);
            let s = if a.nodes_modes[i] == "LEAF" {
                n_leaves += 1;
                !(n_leaves - 1)
            } else {
                n_nodes += 1;
                n_nodes - 1
            };
            ensure!(slot.insert(key, s).is_none(), "node {key:?} twice");
        }
        let mut nodes = Vec::with_capacity(n_nodes as usize);
        let mut leaves = Vec::with_capacity(n_leaves as usize);
        let mut roots: HashMap<i64, (i64, i32)> = HashMap::new();
        for i in 0..a.nodes_nodeids.len() {
            let (tree, id) = (a.nodes_treeids[i], a.nodes_nodeids[i]);
            let s = slot[&(tree, id)];
            let root = roots.entry(tree).or_insert((id, s));
            if id < root.0 {
                *root = (id, s);
            }
            if s < 0 {
                leaves.push(weight.get(&(tree, id)).copied().unwrap_or(0.0));
                continue;
            }
            let child = |c: i64| {
                slot.get(&(tree, c))
                    .copied()
                    .with_context(|| format!("tree {tree} node {id}: child {c} not in the tree"))
            };
            let feature = a.nodes_featureids[i];
            ensure!(
                (0..n_features as i64).contains(&feature),
                "tree {tree} node {id}: feature {feature} outside 0..{n_features}"
            );
            let mode = Mode::parse(&a.nodes_modes[i])
                .with_context(|| format!("node mode {}", a.nodes_modes[i]))?;
            nodes.push(Node {
                threshold: a.nodes_values[i],
                feature: feature as u16,
                mode,
                missing_true: a
                    .nodes_missing_value_tracks_true
                    .get(i)
                    .is_some_and(|&m| m != 0),
                yes: child(a.nodes_truenodeids[i])?,
                no: child(a.nodes_falsenodeids[i])?,
            });
        }
        let roots: Vec<i32> = tree_ids.iter().map(|t| roots[t].1).collect();
        let base = a.base_values.first().copied().unwrap_or(0.0) as f64;
        let mut g = Self {
            nodes,
            roots,
            leaves,
            base,
            suffix_max: Vec::new(),
            raw_min: 0.0,
            fast: None,
            covers: None,
            n_features,
        };
        g.bounds()?;
        if g.nodes.iter().all(|n| n.mode == Mode::Leq) && n_features <= lockstep::MAX_FEATURES {
            let mut f = lockstep::Forest::new();
            for &root in &g.roots {
                f.push(&g.tree_nodes(root))?;
            }
            g.fast = Some(f);
        }
        Ok(g)
    }

    /// One tree as [`lockstep::Node`]s, root first and every child after its parent.
    fn tree_nodes(&self, root: i32) -> Vec<lockstep::Node<f32>> {
        let mut out = Vec::new();
        let mut todo = vec![(root, usize::MAX, false)];
        while let Some((at, parent, second)) = todo.pop() {
            let me = out.len();
            if let Some(lockstep::Node::Split {
                first: f,
                second: s,
                ..
            }) = out.get_mut(parent)
            {
                *if second { s } else { f } = me;
            }
            if at < 0 {
                out.push(lockstep::Node::Leaf(self.leaves[!at as usize]));
                continue;
            }
            let n = self.nodes[at as usize];
            out.push(lockstep::Node::Split {
                feature: n.feature as u32,
                threshold: n.threshold,
                first: 0,
                second: 0,
            });
            todo.push((n.no, me, true));
            todo.push((n.yes, me, false));
        }
        out
    }

    /// Fills `suffix_max` and `raw_min` from each tree's highest and lowest reachable leaf; errors
    /// on a cycle.
    fn bounds(&mut self) -> Result<()> {
        let mut suffix = vec![0.0; self.roots.len() + 1];
        let mut min = self.base;
        for k in (0..self.roots.len()).rev() {
            let (lo, hi) = self.leaf_range(self.roots[k], 0)?;
            suffix[k] = suffix[k + 1] + hi;
            min += lo;
        }
        self.suffix_max = suffix;
        self.raw_min = min;
        Ok(())
    }

    fn leaf_range(&self, at: i32, depth: usize) -> Result<(f64, f64)> {
        ensure!(depth <= self.nodes.len(), "a tree has a cycle");
        if at < 0 {
            let w = self.leaves[!at as usize];
            return Ok((w, w));
        }
        let n = self.nodes[at as usize];
        let (a, b) = self.leaf_range(n.yes, depth + 1)?;
        let (c, d) = self.leaf_range(n.no, depth + 1)?;
        Ok((a.min(c), b.max(d)))
    }

    /// Raw score (log-odds) of one row of `n_features` float32 inputs.
    pub fn raw(&self, x: &[f32]) -> f64 {
        self.raw_reaching(x, f64::NEG_INFINITY)
            .expect("every raw score reaches -inf")
    }

    /// The raw score, or `None` as soon as the trees left cannot lift it to `target` (the row
    /// then provably scores below it). A `Some` is bit-identical to [`Self::raw`].
    #[inline]
    pub fn raw_reaching(&self, x: &[f32], target: f64) -> Option<f64> {
        match self.raw_and_lowest_bound(x, target) {
            Some(walked) => walked.map(|(raw, _)| raw),
            None => self.raw_reaching_one_by_one(x, target),
        }
    }

    /// The branch-free walk of [`Self::raw_reaching`], for a target known only later: the raw
    /// score, or `None` as soon as the trees left cannot lift it to `loose`; with the raw score,
    /// the lowest bound checked on the way, so that `raw_reaching(x, t)` is `None` exactly when
    /// that bound is below `t` (for any `t` ≥ `loose`). `None` for a row this cannot walk
    /// branch-free (no fast forest, or a NaN input): then use [`Self::raw_reaching`].
    pub fn raw_and_lowest_bound(&self, x: &[f32], loose: f64) -> Option<Option<(f64, f64)>> {
        assert!(x.len() >= self.n_features, "row shorter than the model");
        let f = self
            .fast
            .as_ref()
            .filter(|_| !x.iter().any(|v| v.is_nan()))?;
        let mut padded = [0.0f32; lockstep::MAX_FEATURES];
        padded[..self.n_features].copy_from_slice(&x[..self.n_features]);
        let (mut sum, mut lowest) = (0.0, f64::INFINITY);
        for g in 0..f.groups() {
            let bound = self.base + sum + self.suffix_max[g * EXIT_CHECK_EVERY];
            if bound < loose {
                return Some(None);
            }
            lowest = lowest.min(bound);
            f.add_group(g, &padded, |v, t| v <= t, &mut sum);
        }
        Some(Some((self.base + sum, lowest)))
    }

    /// [`Self::raw_reaching`] walking one tree after the other, any split mode, NaN included.
    fn raw_reaching_one_by_one(&self, x: &[f32], target: f64) -> Option<f64> {
        let mut sum = 0.0;
        for (k, &root) in self.roots.iter().enumerate() {
            if k % EXIT_CHECK_EVERY == 0 && self.base + sum + self.suffix_max[k] < target {
                return None;
            }
            let mut at = root;
            while at >= 0 {
                at = self.nodes[at as usize].next(x);
            }
            sum += self.leaves[!at as usize];
        }
        Some(self.base + sum)
    }

    /// Reads the branch-free trees into the calling core's cache ([`lockstep::Forest::warm`]).
    pub fn warm(&self) -> u64 {
        self.fast.as_ref().map_or(0, |f| f.warm())
    }

    /// The range every raw score lies in: `(lowest, highest)`.
    pub fn raw_range(&self) -> (f64, f64) {
        (self.raw_min, self.base + self.suffix_max[0])
    }

    /// Pump probability of one row.
    pub fn predict_one(&self, x: &[f32]) -> f64 {
        super::linear::sigmoid(self.raw(x))
    }

    /// Compares with the probabilities LightGBM recorded at training (`gbm.json`'s `check.rows`
    /// and `check.probabilities`); returns the largest absolute difference.
    pub fn check(&self, meta: &serde_json::Value) -> Result<f64> {
        let mut worst = 0.0f64;
        for (x, p) in self.check_rows(meta, "probabilities")? {
            let want = p.as_f64().context("gbm.json: probability")?;
            worst = worst.max((self.predict_one(&x) - want).abs());
        }
        Ok(worst)
    }

    /// Compares [`Self::shap`] with the SHAP values LightGBM recorded for the check rows
    /// (`check.contributions`: one per input, then the expected value); returns the largest
    /// absolute difference, `None` when the model has no covers or `gbm.json` no contributions.
    pub fn check_shap(&self, meta: &serde_json::Value) -> Result<Option<f64>> {
        self.check_shap_every(meta, 1)
    }

    /// [`Self::check_shap`] on every `stride`-th check row only (TreeSHAP costs ~1 ms a row).
    fn check_shap_every(&self, meta: &serde_json::Value, stride: usize) -> Result<Option<f64>> {
        if meta["check"]["contributions"].is_null() || !self.has_covers() {
            return Ok(None);
        }
        let mut worst = 0.0f64;
        let rows = self.check_rows(meta, "contributions")?;
        for (x, c) in rows.into_iter().step_by(stride.max(1)) {
            let want: Vec<f64> = c
                .as_array()
                .context("gbm.json: contributions")?
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            ensure!(
                want.len() == self.n_features + 1,
                "gbm.json: a check row with {} contributions",
                want.len()
            );
            let (expected, phi) = self.shap(&x).context("covers")?;
            for (a, b) in phi.iter().chain([&expected]).zip(&want) {
                worst = worst.max((a - b).abs());
            }
        }
        Ok(Some(worst))
    }

    /// `gbm.json`'s check rows (float32, `n_features` each) paired with `check.<key>`.
    fn check_rows<'a>(
        &self,
        meta: &'a serde_json::Value,
        key: &str,
    ) -> Result<Vec<(Vec<f32>, &'a serde_json::Value)>> {
        let rows = meta["check"]["rows"]
            .as_array()
            .context("gbm.json: check.rows")?;
        let want = meta["check"][key]
            .as_array()
            .with_context(|| format!("gbm.json: check.{key}"))?;
        ensure!(
            rows.len() == want.len(),
            "gbm.json: check rows and {key} differ in length"
        );
        rows.iter()
            .zip(want)
            .map(|(r, w)| {
                let x: Vec<f32> = r
                    .as_array()
                    .context("gbm.json: row")?
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(0.0) as f32)
                    .collect();
                ensure!(
                    x.len() == self.n_features,
                    "gbm.json: row of {} inputs",
                    x.len()
                );
                Ok((x, w))
            })
            .collect()
    }

    /// Loads `gbm.onnx` and proves it against `gbm.json` (beside it) within [`CHECK_TOLERANCE`]:
    /// its probabilities and, when `gbm.json` recorded covers and SHAP values, its TreeSHAP.
    pub fn load_checked(onnx: &Path, meta_path: &Path, n_features: usize) -> Result<Self> {
        let mut g = Self::load(onnx, n_features)?;
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(meta_path)
                .with_context(|| format!("cannot read {}", meta_path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", meta_path.display()))?;
        let diff = g.check(&meta)?;
        ensure!(
            diff <= CHECK_TOLERANCE,
            "{}: trees differ from LightGBM's recorded probabilities by {diff:e} (> {CHECK_TOLERANCE:e})",
            onnx.display()
        );
        g.attach_covers(&meta)
            .with_context(|| format!("{}: node covers", meta_path.display()))?;
        // Every row's probability, but SHAP on a sample: covers that do not belong to these
        // trees show on any row, and all 200 rows cost a fifth of a second at every start
        // (`train` checks them all).
        if let Some(diff) = g.check_shap_every(&meta, SHAP_CHECK_STRIDE)? {
            ensure!(
                diff <= CHECK_TOLERANCE,
                "{}: TreeSHAP differs from LightGBM's recorded pred_contrib by {diff:e} (> {CHECK_TOLERANCE:e})",
                onnx.display()
            );
        }
        Ok(g)
    }
}

/// The operator's arrays agree in length; binary classes; a logistic output.
fn check_shape(a: &TreeEnsembleAttrs) -> Result<()> {
    let n = a.nodes_nodeids.len();
    ensure!(n > 0, "no tree nodes");
    for (name, len) in [
        ("nodes_treeids", a.nodes_treeids.len()),
        ("nodes_featureids", a.nodes_featureids.len()),
        ("nodes_values", a.nodes_values.len()),
        ("nodes_modes", a.nodes_modes.len()),
        ("nodes_truenodeids", a.nodes_truenodeids.len()),
        ("nodes_falsenodeids", a.nodes_falsenodeids.len()),
    ] {
        ensure!(len == n, "{name} has {len} entries, nodes_nodeids {n}");
    }
    let w = a.class_weights.len();
    ensure!(
        a.class_treeids.len() == w && a.class_nodeids.len() == w && a.class_ids.len() == w,
        "class_* arrays differ in length"
    );
    ensure!(
        a.classlabels_int64s.len() == 2,
        "{} class labels; only binary classifiers are supported",
        a.classlabels_int64s.len()
    );
    if a.class_ids.iter().any(|&c| c != a.class_ids[0]) {
        bail!("leaf weights for more than one class; only one log-odds score is supported");
    }
    ensure!(a.base_values.len() <= 1, "more than one base value");
    ensure!(
        a.post_transform == "LOGISTIC",
        "post_transform {}; only LOGISTIC is supported",
        a.post_transform
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two trees over 2 inputs: tree 0 splits x0 ≤ 0.5 (true → -1, false → split x1 < 2:
    /// 0.5 / 3), tree 1 is one leaf of 0.25; base 0.1.
    fn small() -> Gbm {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = TreeEnsembleAttrs {
            nodes_treeids: vec![0, 0, 0, 0, 0, 1],
            nodes_nodeids: vec![0, 1, 2, 3, 4, 0],
            nodes_featureids: vec![0, 0, 1, 0, 0, 0],
            nodes_values: vec![0.5, 0.0, 2.0, 0.0, 0.0, 0.0],
            nodes_modes: s(&["BRANCH_LEQ", "LEAF", "BRANCH_LT", "LEAF", "LEAF", "LEAF"]),
            nodes_truenodeids: vec![1, 0, 3, 0, 0, 0],
            nodes_falsenodeids: vec![2, 0, 4, 0, 0, 0],
            nodes_missing_value_tracks_true: vec![1, 0, 0, 0, 0, 0],
            class_treeids: vec![0, 0, 0, 1],
            class_nodeids: vec![1, 3, 4, 0],
            class_ids: vec![0; 4],
            class_weights: vec![-1.0, 0.5, 3.0, 0.25],
            classlabels_int64s: vec![0, 1],
            base_values: vec![0.1],
            post_transform: "LOGISTIC".into(),
        };
        Gbm::from_attrs(&a, 2).unwrap()
    }

    #[test]
    fn walks_the_trees_as_the_operator_defines() {
        let g = small();
        let base = 0.1f32 as f64;
        assert_eq!(g.raw(&[0.5, 9.0]), base - 1.0 + 0.25); // 0.5 ≤ 0.5: true branch
        assert_eq!(g.raw(&[0.6, 1.0]), base + 0.5 + 0.25); // x1 < 2
        assert_eq!(g.raw(&[0.6, 2.0]), base + 3.0 + 0.25); // x1 = 2 is not < 2
        assert_eq!(g.raw(&[f32::NAN, 9.0]), base - 1.0 + 0.25); // NaN tracks true at the root
        assert_eq!(g.raw(&[0.6, f32::NAN]), base + 3.0 + 0.25); // … but not at node 2
        let p = g.predict_one(&[0.6, 1.0]);
        assert!((p - 1.0 / (1.0 + (-(base + 0.75)).exp())).abs() < 1e-15);
        assert_eq!(g.raw_range(), (base - 1.0 + 0.25, base + 3.0 + 0.25));
    }

    /// A forest of LEQ splits only (walked branch-free): 20 copies of `small()`'s tree 0 with
    /// varied thresholds and leaves.
    fn leq_forest() -> Gbm {
        let mut a = TreeEnsembleAttrs {
            classlabels_int64s: vec![0, 1],
            post_transform: "LOGISTIC".into(),
            ..Default::default()
        };
        for t in 0..20i64 {
            a.nodes_treeids.extend([t; 5]);
            a.nodes_nodeids.extend([0, 2, 1, 3, 4]); // ids out of order on purpose
            a.nodes_featureids.extend([0, 1, 0, 0, 0]);
            a.nodes_values
                .extend([t as f32 * 0.1, 1.0 - t as f32 * 0.05, 0.0, 0.0, 0.0]);
            a.nodes_modes
                .extend(["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"].map(String::from));
            a.nodes_truenodeids.extend([1, 3, 0, 0, 0]);
            a.nodes_falsenodeids.extend([2, 4, 0, 0, 0]);
            a.class_treeids.extend([t; 3]);
            a.class_nodeids.extend([1, 3, 4]);
            a.class_ids.extend([0; 3]);
            a.class_weights
                .extend([-0.3 + t as f32 * 0.01, 0.7, 0.1 / (1.0 + t as f32)]);
        }
        let g = Gbm::from_attrs(&a, 2).unwrap();
        assert!(g.fast.is_some());
        g
    }

    #[test]
    fn branch_free_and_one_by_one_walks_agree_bit_for_bit() {
        let g = small();
        assert!(g.fast.is_none(), "small() has a BRANCH_LT split");
        let g = leq_forest();
        let mut rng = crate::models::iforest::SplitMix64::new(9);
        for _ in 0..500 {
            let x = [rng.next_f64() as f32 * 2.5, rng.next_f64() as f32 * 1.5];
            let fast = g.raw(&x);
            let slow = g.raw_reaching_one_by_one(&x, f64::NEG_INFINITY).unwrap();
            assert_eq!(fast.to_bits(), slow.to_bits(), "{x:?}");
            let (lo, hi) = g.raw_range();
            assert!(lo <= fast && fast <= hi);
        }
    }

    #[test]
    fn the_lowest_bound_says_which_targets_the_raw_score_reaches() {
        let g = leq_forest();
        let mut rng = crate::models::iforest::SplitMix64::new(17);
        let (lo, hi) = g.raw_range();
        let (mut cut, mut walked) = (0, 0);
        for _ in 0..500 {
            let x = [rng.next_f64() as f32 * 2.5, rng.next_f64() as f32 * 1.5];
            let loose = lo + (hi - lo) * rng.next_f64();
            let Some((raw, lowest)) = g.raw_and_lowest_bound(&x, loose).unwrap() else {
                assert_eq!(g.raw_reaching(&x, loose), None, "{x:?} {loose}");
                cut += 1;
                continue;
            };
            walked += 1;
            assert_eq!(raw.to_bits(), g.raw(&x).to_bits());
            for t in [
                loose,
                (loose + lowest) / 2.0,
                lowest,
                lowest + 1e-9,
                hi + 1.0,
            ] {
                let t = t.max(loose);
                assert_eq!(g.raw_reaching(&x, t).is_none(), lowest < t, "{x:?} {t}");
            }
        }
        assert!(cut > 20 && walked > 20, "{cut} cut, {walked} walked");
    }

    #[test]
    fn early_exit_only_when_the_target_is_out_of_reach() {
        let g = small();
        let x = [0.5, 9.0]; // raw = base - 0.75
        assert_eq!(g.raw_reaching(&x, -10.0), Some(g.raw(&x)));
        // Before any tree the best case is base + 3.25: a target above it is out of reach.
        assert_eq!(g.raw_reaching(&x, 3.5), None);
        // Reachable in the best case, so the row is scored in full even though it ends below.
        assert_eq!(g.raw_reaching(&x, 3.0), Some(g.raw(&x)));
    }

    #[test]
    fn inconsistent_models_are_refused_with_the_reason() {
        let mut a = TreeEnsembleAttrs {
            nodes_treeids: vec![0],
            nodes_nodeids: vec![0],
            nodes_featureids: vec![0],
            nodes_values: vec![0.0],
            nodes_modes: vec!["LEAF".into()],
            nodes_truenodeids: vec![0],
            nodes_falsenodeids: vec![0],
            class_treeids: vec![0],
            class_nodeids: vec![0],
            class_ids: vec![0],
            class_weights: vec![1.0],
            classlabels_int64s: vec![0, 1],
            post_transform: "LOGISTIC".into(),
            ..Default::default()
        };
        assert!(Gbm::from_attrs(&a, 1).is_ok());
        a.post_transform = "SOFTMAX".into();
        let e = Gbm::from_attrs(&a, 1).unwrap_err().to_string();
        assert!(e.contains("SOFTMAX"), "{e}");
        a.post_transform = "LOGISTIC".into();
        a.nodes_modes = vec!["BRANCH_LEQ".into()];
        a.nodes_featureids = vec![5];
        let e = Gbm::from_attrs(&a, 1).unwrap_err().to_string();
        assert!(e.contains("feature 5"), "{e}");
        a.nodes_featureids = vec![0];
        a.nodes_truenodeids = vec![7];
        let e = Gbm::from_attrs(&a, 1).unwrap_err().to_string();
        assert!(e.contains("child 7"), "{e}");
    }
}
