//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent individualized feature
//! attribution for tree ensembles", Algorithm 2) of the GBM's raw score, as LightGBM's own
//! `predict(pred_contrib=True)` computes it.
//!
//! Needs each node's training cover (the rows that reached it, LightGBM's `internal_count` /
//! `leaf_count`): `scripts/train_gbm.py` records them in `gbm.json` (`trees`, pre-order with the
//! `<=` child first) and [`Gbm::attach_covers`] matches them to the ONNX trees, proving the match
//! by the leaf values recorded beside them. The SHAP values of a row plus the expected value (the
//! cover-weighted mean raw score) sum to its raw score.

use super::Gbm;
use anyhow::{ensure, Context, Result};

/// Training covers of every branch node and leaf, indexed like [`Gbm`]'s `nodes` and `leaves`,
/// and the expected raw score.
#[derive(Clone, Debug)]
pub(super) struct Covers {
    node: Vec<f64>,
    leaf: Vec<f64>,
    expected: f64,
    /// Deepest leaf (splits from the root), sizing the path buffer.
    max_depth: usize,
}

/// Largest |leaf value in gbm.json − ONNX leaf weight| accepted when matching the trees (the
/// ONNX weights are float32).
const LEAF_TOLERANCE: f64 = 1e-6;

/// One element of the path of unique features TreeSHAP tracks.
#[derive(Clone, Copy, Debug, Default)]
struct PathElem {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

impl Gbm {
    /// Reads `gbm.json`'s `trees` (per tree `counts` in pre-order, `<=` child first, and `leaves`
    /// in the same order) into covers. Errors when the lists do not fit the ONNX trees node for
    /// node (shape, leaf values), or a node has no rows; a `gbm.json` without `trees` (models
    /// before TreeSHAP) leaves the model without attribution and is not an error.
    pub fn attach_covers(&mut self, meta: &serde_json::Value) -> Result<()> {
        let Some(trees) = meta.get("trees").and_then(|t| t.as_array()) else {
            return Ok(());
        };
        ensure!(
            trees.len() == self.roots.len(),
            "gbm.json: {} trees, the ONNX model {}",
            trees.len(),
            self.roots.len()
        );
        let mut node = vec![f64::NAN; self.nodes.len()];
        let mut leaf = vec![f64::NAN; self.leaves.len()];
        for (k, t) in trees.iter().enumerate() {
            let nums = |key: &str| -> Result<Vec<f64>> {
                t[key]
                    .as_array()
                    .with_context(|| format!("gbm.json: trees[{k}].{key}"))?
                    .iter()
                    .map(|v| v.as_f64().context("gbm.json: a number"))
                    .collect()
            };
            let (counts, values) = (nums("counts")?, nums("leaves")?);
            let (mut c, mut v) = (counts.iter(), values.iter());
            let mut todo = vec![self.roots[k]];
            while let Some(at) = todo.pop() {
                let n = *c
                    .next()
                    .with_context(|| format!("tree {k}: too few counts"))?;
                ensure!(n > 0.0, "tree {k}: a node no training row reached");
                if at < 0 {
                    let want = *v
                        .next()
                        .with_context(|| format!("tree {k}: too few leaves"))?;
                    let got = self.leaves[!at as usize];
                    ensure!(
                        (want - got).abs() <= LEAF_TOLERANCE * want.abs().max(1.0),
                        "tree {k}: leaf {want} in gbm.json, {got} in the ONNX trees"
                    );
                    leaf[!at as usize] = n;
                } else {
                    node[at as usize] = n;
                    let b = self.nodes[at as usize];
                    todo.push(b.no);
                    todo.push(b.yes);
                }
            }
            ensure!(
                c.next().is_none() && v.next().is_none(),
                "tree {k}: more counts or leaves than nodes"
            );
        }
        let mut covers = Covers {
            node,
            leaf,
            expected: self.base,
            max_depth: 0,
        };
        for &root in &self.roots {
            covers.expected += self.expected_of(&covers, root);
            covers.max_depth = covers.max_depth.max(self.depth_of(root));
        }
        self.covers = Some(covers);
        Ok(())
    }

    /// Cover of a node or leaf (`at < 0`).
    fn cover(c: &Covers, at: i32) -> f64 {
        if at < 0 {
            c.leaf[!at as usize]
        } else {
            c.node[at as usize]
        }
    }

    /// Splits from `at` to its deepest leaf.
    fn depth_of(&self, at: i32) -> usize {
        if at < 0 {
            return 0;
        }
        let n = self.nodes[at as usize];
        1 + self.depth_of(n.yes).max(self.depth_of(n.no))
    }

    /// Cover-weighted mean leaf value under `at`.
    fn expected_of(&self, c: &Covers, at: i32) -> f64 {
        if at < 0 {
            return self.leaves[!at as usize];
        }
        let n = self.nodes[at as usize];
        (Self::cover(c, n.yes) * self.expected_of(c, n.yes)
            + Self::cover(c, n.no) * self.expected_of(c, n.no))
            / Self::cover(c, at)
    }

    /// Whether [`Self::shap`] can explain this model (its `gbm.json` recorded the covers).
    pub fn has_covers(&self) -> bool {
        self.covers.is_some()
    }

    /// SHAP values of the raw score for one row of float32 inputs: `(expected value, one value
    /// per input)`, summing to [`Self::raw`] (to rounding). `None` without covers.
    pub fn shap(&self, x: &[f32]) -> Option<(f64, Vec<f64>)> {
        let c = self.covers.as_ref()?;
        let mut phi = vec![0.0; self.n_features];
        // One buffer for every level's path (level k starts after levels 0..k, k + 1 long).
        let d = c.max_depth + 2;
        let mut buf = vec![PathElem::default(); d * (d + 1) / 2];
        for &root in &self.roots {
            let walk = Walk { c, x };
            self.tree_shap(&walk, root, &mut buf, 0, 0, 1.0, 1.0, -1, &mut phi);
        }
        Some((c.expected, phi))
    }

    /// Algorithm 2's RECURSE: `buf[parent..]` holds the path of unique features split on so far
    /// (`depth` + 1 long with this node's feature), `(pz, po)` the fractions of the zero
    /// (feature absent) and one (present) paths entering this node through a split on `pi`.
    #[allow(clippy::too_many_arguments)]
    fn tree_shap(
        &self,
        w: &Walk<'_>,
        at: i32,
        buf: &mut [PathElem],
        parent: usize,
        depth: usize,
        pz: f64,
        po: f64,
        pi: i64,
        phi: &mut [f64],
    ) {
        let me = parent + depth + 1;
        // Level 0 copies nothing meaningful: EXTEND overwrites element 0.
        buf.copy_within(parent..parent + depth + 1, me);
        let mut depth = depth;
        {
            let m = &mut buf[me..me + depth + 1];
            extend(m, depth, pz, po, pi);
        }
        if at < 0 {
            let v = self.leaves[!at as usize];
            let m = &buf[me..me + depth + 1];
            if depth < LANES {
                leaf_credit(m, depth, v, phi);
            } else {
                for i in 1..=depth {
                    let s = unwound_sum(m, depth, i);
                    phi[m[i].feature as usize] += s * (m[i].one - m[i].zero) * v;
                }
            }
            return;
        }
        let n = self.nodes[at as usize];
        let hot = n.next(w.x);
        let cold = if hot == n.yes { n.no } else { n.yes };
        let (mut iz, mut io) = (1.0, 1.0);
        let f = n.feature as i64;
        if let Some(k) = (1..=depth).find(|&k| buf[me + k].feature == f) {
            (iz, io) = (buf[me + k].zero, buf[me + k].one);
            unwind(&mut buf[me..me + depth + 1], depth, k);
            depth -= 1;
        }
        let cover = Self::cover(w.c, at);
        let frac = |child: i32| Self::cover(w.c, child) / cover;
        self.tree_shap(w, hot, buf, me, depth + 1, iz * frac(hot), io, f, phi);
        self.tree_shap(w, cold, buf, me, depth + 1, iz * frac(cold), 0.0, f, phi);
    }
}

/// What every node of a walk reads.
struct Walk<'a> {
    c: &'a Covers,
    x: &'a [f32],
}

/// EXTEND: sets element `l` of the path to feature `pi` with fractions `(pz, po)` and updates
/// the weights of the `l` before it.
fn extend(m: &mut [PathElem], l: usize, pz: f64, po: f64, pi: i64) {
    m[l] = PathElem {
        feature: pi,
        zero: pz,
        one: po,
        weight: if l == 0 { 1.0 } else { 0.0 },
    };
    let inv = 1.0 / (l + 1) as f64;
    for i in (0..l).rev() {
        m[i + 1].weight += po * m[i].weight * (i + 1) as f64 * inv;
        m[i].weight = pz * m[i].weight * (l - i) as f64 * inv;
    }
}

/// UNWIND: removes element `i` of the path `m[..=l]` (undoes its EXTEND).
fn unwind(m: &mut [PathElem], l: usize, i: usize) {
    let (o, z) = (m[i].one, m[i].zero);
    let mut n = m[l].weight;
    let d = (l + 1) as f64;
    let inv_d = 1.0 / d;
    if o != 0.0 {
        let inv_o = 1.0 / o;
        for j in (0..l).rev() {
            let t = m[j].weight;
            m[j].weight = n * d * inv_o / (j + 1) as f64;
            n = t - m[j].weight * z * (l - j) as f64 * inv_d;
        }
    } else {
        let inv_z = 1.0 / z;
        for j in (0..l).rev() {
            m[j].weight = m[j].weight * d * inv_z / (l - j) as f64;
        }
    }
    for j in i..l {
        m[j].feature = m[j + 1].feature;
        m[j].zero = m[j + 1].zero;
        m[j].one = m[j + 1].one;
    }
}

/// Paths up to this long take [`leaf_credit`]'s side-by-side loop.
const LANES: usize = 32;

/// A leaf's credit to every feature of its path `m[..=l]` (`l < LANES`): `unwound_sum` of each
/// element times `(one − zero) · v`. An element's `one` is 0 or 1 (a row follows all of its
/// feature's splits on the path or not). For `one = 0` the sum is `(l + 1) / zero · S` with `S`
/// shared by all of them; the `one = 1` elements' recurrences share the path's weights and run
/// side by side (no dependency between elements, where one element's loop is a chain).
fn leaf_credit(m: &[PathElem], l: usize, v: f64, phi: &mut [f64]) {
    let d = (l + 1) as f64;
    // `one = 0`: Σ_j w_j / (l − j), times (l + 1) / zero.
    let mut shared = 0.0;
    for (j, e) in m[..l].iter().enumerate() {
        shared += e.weight * RECIP[l - j];
    }
    let (mut idx, mut n, mut total, mut zd) =
        ([0usize; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let mut h = 0;
    for (i, e) in m.iter().enumerate().take(l + 1).skip(1) {
        if e.one == 0.0 {
            let s = d / e.zero * shared;
            phi[e.feature as usize] -= s * e.zero * v;
        } else {
            // one = 1 (covers are positive, so a fraction is 0 or a product of ones)
            idx[h] = i;
            n[h] = m[l].weight;
            zd[h] = e.zero / d;
            h += 1;
        }
    }
    for j in (0..l).rev() {
        let (a, w, lj) = (d * RECIP[j + 1], m[j].weight, (l - j) as f64);
        for q in 0..h {
            let t = n[q] * a;
            total[q] += t;
            n[q] = w - t * zd[q] * lj;
        }
    }
    for q in 0..h {
        let e = &m[idx[q]];
        phi[e.feature as usize] += total[q] * (1.0 - e.zero) * v;
    }
}

/// `1 / k` for the path lengths trees have (a division costs ~10 multiplications).
const RECIP: [f64; LANES + 1] = {
    let mut t = [0.0; LANES + 1];
    let mut k = 1;
    while k <= LANES {
        t[k] = 1.0 / k as f64;
        k += 1;
    }
    t
};

/// The total weight of the path `m[..=l]` with element `i` unwound (without changing it).
fn unwound_sum(m: &[PathElem], l: usize, i: usize) -> f64 {
    let (o, z) = (m[i].one, m[i].zero);
    let mut n = m[l].weight;
    let d = (l + 1) as f64;
    let mut total = 0.0;
    if o != 0.0 {
        let k = d / o;
        let zd = z / d;
        for j in (0..l).rev() {
            let t = n * k / (j + 1) as f64;
            total += t;
            n = m[j].weight - t * zd * (l - j) as f64;
        }
    } else {
        let k = d / z;
        for j in (0..l).rev() {
            total += m[j].weight * k / (l - j) as f64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use crate::models::gbm::Gbm;
    use crate::models::onnx::TreeEnsembleAttrs;
    use serde_json::json;

    /// Two trees over inputs a (0) and b (1), hand-made:
    /// tree 0: a ≤ 0.5 ? (b ≤ 0.5 ? 1 : 3) : 5, covers root 10, left 6 (b: 3 / 3), right 4;
    /// tree 1: b ≤ 0.5 ? -2 : 2, covers 10 = 5 + 5. Base 0.
    fn two_trees() -> Gbm {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = TreeEnsembleAttrs {
            nodes_treeids: vec![0, 0, 0, 0, 0, 1, 1, 1],
            nodes_nodeids: vec![0, 1, 2, 3, 4, 0, 1, 2],
            nodes_featureids: vec![0, 1, 0, 0, 0, 1, 0, 0],
            nodes_values: vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0],
            nodes_modes: s(&[
                "BRANCH_LEQ",
                "BRANCH_LEQ",
                "LEAF",
                "LEAF",
                "LEAF",
                "BRANCH_LEQ",
                "LEAF",
                "LEAF",
            ]),
            nodes_truenodeids: vec![1, 2, 0, 0, 0, 1, 0, 0],
            nodes_falsenodeids: vec![4, 3, 0, 0, 0, 2, 0, 0],
            nodes_missing_value_tracks_true: vec![0; 8],
            class_treeids: vec![0, 0, 0, 1, 1],
            class_nodeids: vec![2, 3, 4, 1, 2],
            class_ids: vec![0; 5],
            class_weights: vec![1.0, 3.0, 5.0, -2.0, 2.0],
            classlabels_int64s: vec![0, 1],
            base_values: vec![],
            post_transform: "LOGISTIC".into(),
        };
        let mut g = Gbm::from_attrs(&a, 2).unwrap();
        let meta = json!({"trees": [
            {"counts": [10, 6, 3, 3, 4], "leaves": [1.0, 3.0, 5.0]},
            {"counts": [10, 5, 5], "leaves": [-2.0, 2.0]},
        ]});
        g.attach_covers(&meta).unwrap();
        g
    }

    #[test]
    fn matches_a_hand_computed_shap_table() {
        let g = two_trees();
        // E[tree 0] = (3·1 + 3·3 + 4·5) / 10 = 3.2; E[tree 1] = 0.
        // Row (a = 0, b = 1): tree 0 gives 3, tree 1 gives 2 → raw 5.
        // Tree 0 by the Shapley formula over {a, b} with v(S) = E[f | x_S] (path-dependent):
        //   v(∅) = 3.2, v(a) = 2 (left: (1 + 3) / 2), v(b) = 0.6·3 + 0.4·5 = 3.8, v(ab) = 3;
        //   φa = ½(v(a) − v(∅)) + ½(v(ab) − v(b)) = ½(−1.2) + ½(−0.8) = −1.0,
        //   φb = ½(v(b) − v(∅)) + ½(v(ab) − v(a)) = ½(0.6) + ½(1.0) = 0.8.
        // Tree 1 splits on b only: φb += 2 − 0 = 2.
        let (e, phi) = g.shap(&[0.0, 1.0]).unwrap();
        assert!((e - 3.2).abs() < 1e-12, "{e}");
        assert!((phi[0] - -1.0).abs() < 1e-12, "{phi:?}");
        assert!((phi[1] - 2.8).abs() < 1e-12, "{phi:?}");
        assert!((e + phi.iter().sum::<f64>() - g.raw(&[0.0, 1.0])).abs() < 1e-12);
        // Row (a = 1, b = 0): tree 0 leaf 5, b unused on the path: v(a) = 5, v(b) = 0.6·1 + 0.4·5
        // = 2.6, v(ab) = 5: φa = ½(1.8) + ½(2.4) = 2.1, φb = ½(−0.6) + ½(0) = −0.3; tree 1: −2.
        let (_, phi) = g.shap(&[1.0, 0.0]).unwrap();
        assert!((phi[0] - 2.1).abs() < 1e-12, "{phi:?}");
        assert!((phi[1] - -2.3).abs() < 1e-12, "{phi:?}");
    }

    #[test]
    fn covers_that_do_not_fit_the_trees_are_refused() {
        let mut g = two_trees();
        let bad_leaf = json!({"trees": [
            {"counts": [10, 6, 3, 3, 4], "leaves": [1.0, 3.5, 5.0]},
            {"counts": [10, 5, 5], "leaves": [-2.0, 2.0]},
        ]});
        let e = g.attach_covers(&bad_leaf).unwrap_err().to_string();
        assert!(e.contains("tree 0") && e.contains("3.5"), "{e}");
        let short = json!({"trees": [{"counts": [10, 6, 3], "leaves": [1.0, 3.0]}]});
        assert!(g.attach_covers(&short).is_err());
        let zero = json!({"trees": [
            {"counts": [10, 6, 0, 3, 4], "leaves": [1.0, 3.0, 5.0]},
            {"counts": [10, 5, 5], "leaves": [-2.0, 2.0]},
        ]});
        let e = g.attach_covers(&zero).unwrap_err().to_string();
        assert!(e.contains("no training row"), "{e}");
    }
}
