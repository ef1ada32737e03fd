//! Isolation Forest (Liu, Ting & Zhou 2008), deterministic from a seed.
//!
//! Score in (0, 1): `2^(−E[h(x)] / c(ψ))`, where `h` is the path length to isolate `x` and `c(ψ)`
//! the mean path length of an unsuccessful search in a binary tree of `ψ` samples; ≈ 0.5 for
//! ordinary rows, → 1 for anomalies. Trained unsupervised on the (transformed) feature rows.

use super::lockstep;
use serde::{Deserialize, Serialize};

/// SplitMix64: a tiny, portable PRNG, so a seed gives the same forest on every machine.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// One node: `(feature, threshold, left, right)`; a leaf has `feature = -1` and its sample size
/// in `threshold`.
type Node = (i32, f64, u32, u32);

/// `[train.iforest]` hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IForestParams {
    pub trees: usize,
    /// Sub-sample size ψ per tree.
    pub sample: usize,
}

impl Default for IForestParams {
    fn default() -> Self {
        Self {
            trees: 64,
            sample: 128,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    pub sample: usize,
    pub trees: Vec<Vec<Node>>,
}

/// Average path length of an unsuccessful BST search among `n` points.
fn c(n: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else if n == 2.0 {
        1.0
    } else {
        2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
    }
}

impl IsolationForest {
    /// Fits on `rows` (each of equal length). Errors when there are fewer than 2 rows.
    pub fn fit(rows: &[Vec<f64>], p: &IForestParams, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(rows.len() >= 2, "isolation forest needs at least 2 rows");
        let mut rng = SplitMix64::new(seed);
        let psi = p.sample.min(rows.len()).max(2);
        let max_depth = (psi as f64).log2().ceil() as usize;
        let mut trees = Vec::with_capacity(p.trees);
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        for _ in 0..p.trees {
            // Partial Fisher–Yates: the first ψ entries become the sample.
            for i in 0..psi {
                let j = i + rng.below(idx.len() - i);
                idx.swap(i, j);
            }
            let mut sample: Vec<usize> = idx[..psi].to_vec();
            let mut nodes = Vec::new();
            build(rows, &mut sample[..], 0, max_depth, &mut rng, &mut nodes);
            trees.push(nodes);
        }
        Ok(Self { sample: psi, trees })
    }

    /// Anomaly score in (0, 1).
    pub fn score(&self, x: &[f64]) -> f64 {
        let mut total = 0.0;
        for t in &self.trees {
            let mut i = 0usize;
            let mut depth = 0.0;
            loop {
                let (f, thr, l, r) = t[i];
                if f < 0 {
                    total += depth + c(thr);
                    break;
                }
                i = if x[f as usize] < thr { l } else { r } as usize;
                depth += 1.0;
            }
        }
        let mean = total / self.trees.len() as f64;
        2f64.powf(-mean / c(self.sample as f64))
    }
}

/// A row's path length split by feature (see [`IsolationForest::path_attribution`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PathAttribution {
    /// Expected path length of a training row (mean over trees of the root's expectation).
    pub expected: f64,
    /// The row's mean path length `E[h(x)]`.
    pub path: f64,
    /// Per input: its splits' change of the expected path length, averaged over trees; the
    /// values sum to `path − expected`.
    pub by_feature: Vec<f64>,
}

impl IsolationForest {
    /// Splits a row's mean path length by feature, the way Saabas splits a tree's prediction: in
    /// each tree the expected path length of a training row reaching a node (a leaf: `c(size)`;
    /// a split: 1 + the size-weighted mean of its children's) changes at every split on the
    /// row's path by `1 + E[child] − E[node]`, credited to the split's feature; the changes
    /// telescope from the root's expectation to the row's `depth + c(leaf size)`. A feature that
    /// isolates the row early gets a large negative share (a short path is an anomaly).
    /// `x` is the squashed row the forest scores; a split's size is the sum of its leaves'.
    pub fn path_attribution(&self, x: &[f64]) -> PathAttribution {
        let mut by_feature = vec![0.0; x.len()];
        let (mut expected, mut path) = (0.0, 0.0);
        for t in &self.trees {
            // Children come after their parent: sizes and expectations fill in reverse.
            let mut size = vec![0.0f64; t.len()];
            let mut e = vec![0.0f64; t.len()];
            for i in (0..t.len()).rev() {
                let (f, thr, l, r) = t[i];
                if f < 0 {
                    (size[i], e[i]) = (thr, c(thr));
                } else {
                    let (l, r) = (l as usize, r as usize);
                    size[i] = size[l] + size[r];
                    e[i] = 1.0 + (size[l] * e[l] + size[r] * e[r]) / size[i].max(1.0);
                }
            }
            expected += e[0];
            let (mut i, mut depth) = (0usize, 0.0);
            loop {
                let (f, thr, l, r) = t[i];
                if f < 0 {
                    path += depth + c(thr);
                    break;
                }
                let next = if x[f as usize] < thr { l } else { r } as usize;
                by_feature[f as usize] += 1.0 + e[next] - e[i];
                i = next;
                depth += 1.0;
            }
        }
        let n = self.trees.len() as f64;
        by_feature.iter_mut().for_each(|v| *v /= n);
        PathAttribution {
            expected: expected / n,
            path: path / n,
            by_feature,
        }
    }

    /// The score of a mean path length (see [`Self::score`]).
    pub fn score_of_path(&self, path: f64) -> f64 {
        2f64.powf(-path / c(self.sample as f64))
    }
}

/// Isolation trees walked side by side, in groups of 16: a group stops at the level where all its
/// trees reached a leaf (measured on the dev set's rows: as fast as 64 at once, within noise).
const IFOREST_GROUP: usize = 16;

/// A fitted forest laid out for scoring ([`lockstep`], with each leaf's `depth + c(size)`
/// precomputed; the reference [`IsolationForest::score`] takes a logarithm per tree). Gives
/// bit-identical scores: the same terms, added in the same order.
#[derive(Clone, Debug)]
pub struct IForestScorer {
    forest: lockstep::Forest<f64, IFOREST_GROUP>,
    /// Per group `g`: the shortest and the longest `depth + c(size)` the trees from group `g` on
    /// can add (bounds of a partial walk, [`IForestWalk::bound`]; `rest[0].0` is the forest's
    /// shortest total).
    rest: Vec<(f64, f64)>,
    c_sample: f64,
}

/// A row's walk through an [`IForestScorer`], one group of trees at a time: the total is summed
/// in tree order, so [`Self::finish`] is bit-identical to [`IForestScorer::score`].
pub struct IForestWalk<'a> {
    scorer: &'a IForestScorer,
    padded: [f64; lockstep::MAX_FEATURES],
    total: f64,
    /// Groups walked.
    done: usize,
}

impl IForestWalk<'_> {
    /// Walks the next group of trees (none left: nothing).
    pub fn step(&mut self) {
        let f = &self.scorer.forest;
        if self.done < f.groups() {
            f.add_group(self.done, &self.padded, |v, t| v < t, &mut self.total);
            self.done += 1;
        }
    }

    /// The highest (`highest`) or the lowest score the row can still get, given the groups
    /// walked (the trees left isolate it as early, or as late, as they can).
    pub fn bound(&self, highest: bool) -> f64 {
        let (short, long) = self
            .scorer
            .rest
            .get(self.done)
            .copied()
            .unwrap_or((0.0, 0.0));
        let rest = if highest { short } else { long };
        self.scorer.score_of_total(self.total + rest)
    }

    /// Walks the groups left (if any); the row's score.
    pub fn finish(&mut self) -> f64 {
        while self.done < self.scorer.forest.groups() {
            self.step();
        }
        self.scorer.score_of_total(self.total)
    }
}

impl IForestScorer {
    /// Errors when a tree is malformed (a child that is not after its parent, or out of range).
    pub fn new(f: &IsolationForest) -> anyhow::Result<Self> {
        let mut forest = lockstep::Forest::new();
        let mut ends = Vec::with_capacity(f.trees.len());
        for (k, t) in f.trees.iter().enumerate() {
            let mut nodes = Vec::with_capacity(t.len());
            let mut path = vec![0.0f64; t.len()];
            let (mut shortest, mut longest) = (f64::INFINITY, f64::NEG_INFINITY);
            for (i, &(feature, thr, l, r)) in t.iter().enumerate() {
                if feature < 0 {
                    let v = path[i] + c(thr);
                    shortest = shortest.min(v);
                    longest = longest.max(v);
                    nodes.push(lockstep::Node::Leaf(v));
                    continue;
                }
                let (l, r) = (l as usize, r as usize);
                anyhow::ensure!(
                    l > i && r > i && l < t.len() && r < t.len(),
                    "isolation forest tree {k} node {i}: children {l}, {r} out of order"
                );
                path[l] = path[i] + 1.0;
                path[r] = path[i] + 1.0;
                nodes.push(lockstep::Node::Split {
                    feature: feature as u32,
                    threshold: thr,
                    first: l,
                    second: r,
                });
            }
            anyhow::ensure!(!nodes.is_empty(), "isolation forest tree {k} is empty");
            forest.push(&nodes)?;
            ends.push((shortest, longest));
        }
        anyhow::ensure!(forest.trees() > 0, "isolation forest without trees");
        let rest = (0..forest.groups())
            .map(|g| {
                ends[g * IFOREST_GROUP..]
                    .iter()
                    .fold((0.0, 0.0), |(a, b), &(s, l)| (a + s, b + l))
            })
            .collect();
        Ok(Self {
            forest,
            rest,
            c_sample: c(f.sample as f64),
        })
    }

    /// Anomaly score in (0, 1), equal to [`IsolationForest::score`]. `x` must have every feature
    /// the trees split on.
    pub fn score(&self, x: &[f64]) -> f64 {
        self.walk(x).finish()
    }

    /// A walk of `x` that has not started ([`IForestWalk`]).
    pub fn walk(&self, x: &[f64]) -> IForestWalk<'_> {
        let mut padded = [0.0; lockstep::MAX_FEATURES];
        let n = x.len().min(lockstep::MAX_FEATURES);
        padded[..n].copy_from_slice(&x[..n]);
        IForestWalk {
            scorer: self,
            padded,
            total: 0.0,
            done: 0,
        }
    }

    /// Reads the trees into the calling core's cache ([`lockstep::Forest::warm`]).
    pub fn warm(&self) -> u64 {
        self.forest.warm()
    }

    /// The highest score any row can get (every tree isolates it as early as it can).
    pub fn max_score(&self) -> f64 {
        self.score_of_total(self.rest[0].0)
    }

    fn score_of_total(&self, total: f64) -> f64 {
        let mean = total / self.forest.trees() as f64;
        2f64.powf(-mean / self.c_sample)
    }
}

fn build(
    rows: &[Vec<f64>],
    idx: &mut [usize],
    depth: usize,
    max_depth: usize,
    rng: &mut SplitMix64,
    nodes: &mut Vec<Node>,
) -> u32 {
    let me = nodes.len() as u32;
    nodes.push((-1, idx.len() as f64, 0, 0));
    if idx.len() <= 1 || depth >= max_depth {
        return me;
    }
    let nf = rows[idx[0]].len();
    // A random feature that still varies in this node (a few tries, then give up: leaf).
    for _ in 0..nf.max(1) {
        let f = rng.below(nf);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &i in idx.iter() {
            lo = lo.min(rows[i][f]);
            hi = hi.max(rows[i][f]);
        }
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let thr = lo + rng.next_f64() * (hi - lo);
        // Partition in place: < thr to the left.
        let mut k = 0;
        for j in 0..idx.len() {
            if rows[idx[j]][f] < thr {
                idx.swap(j, k);
                k += 1;
            }
        }
        if k == 0 || k == idx.len() {
            continue;
        }
        let (left, right) = idx.split_at_mut(k);
        let l = build(rows, left, depth + 1, max_depth, rng, nodes);
        let r = build(rows, right, depth + 1, max_depth, rng, nodes);
        nodes[me as usize] = (f as i32, thr, l, r);
        return me;
    }
    me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_attribution_telescopes_to_the_path_and_credits_the_isolating_feature() {
        // Input 0 separates one outlier; input 1 is noise.
        let mut rows: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![(i % 10) as f64 * 0.01, ((i * 7) % 13) as f64])
            .collect();
        rows.push(vec![50.0, 6.0]);
        let f = IsolationForest::fit(&rows, &IForestParams::default(), 3).unwrap();
        for x in [&rows[0], &rows[200]] {
            let a = f.path_attribution(x);
            let sum: f64 = a.by_feature.iter().sum();
            assert!((a.expected + sum - a.path).abs() < 1e-9, "{a:?}");
            assert!((f.score_of_path(a.path) - f.score(x)).abs() < 1e-12);
        }
        let out = f.path_attribution(&rows[200]);
        assert!(out.path < out.expected, "{out:?}");
        assert!(out.by_feature[0] < out.by_feature[1], "{out:?}");
        assert!(out.by_feature[0] < 0.0, "{out:?}");
    }

    #[test]
    fn outlier_scores_higher_and_fit_is_reproducible() {
        let mut rng = SplitMix64::new(7);
        let rows: Vec<Vec<f64>> = (0..500)
            .map(|_| vec![rng.next_f64(), rng.next_f64(), rng.next_f64()])
            .collect();
        let p = IForestParams::default();
        let f = IsolationForest::fit(&rows, &p, 1).unwrap();
        let g = IsolationForest::fit(&rows, &p, 1).unwrap();
        assert_eq!(f, g);
        let inlier = f.score(&[0.5, 0.5, 0.5]);
        let outlier = f.score(&[5.0, -4.0, 9.0]);
        assert!(outlier > 0.6 && inlier < 0.5, "{outlier} {inlier}");
        assert_ne!(f, IsolationForest::fit(&rows, &p, 2).unwrap());
    }

    #[test]
    fn a_partial_walk_bounds_the_score_it_finishes_with() {
        let mut rng = SplitMix64::new(11);
        let mut row = || vec![rng.next_f64() * 4.0 - 2.0, rng.next_f64() * 9.0];
        let rows: Vec<Vec<f64>> = (0..300).map(|_| row()).collect();
        let f = IsolationForest::fit(&rows, &IForestParams::default(), 5).unwrap();
        let s = IForestScorer::new(&f).unwrap();
        assert!(s.forest.groups() >= 4, "{} groups", s.forest.groups());
        let mut tightened = 0;
        for _ in 0..500 {
            let x = row();
            let score = f.score(&x);
            let mut w = s.walk(&x);
            let mut width = f64::INFINITY;
            for _ in 0..=s.forest.groups() {
                let (lo, hi) = (w.bound(false), w.bound(true));
                assert!(lo <= score && score <= hi, "{lo} {score} {hi}");
                assert!(hi - lo <= width);
                tightened += usize::from(hi - lo < width);
                width = hi - lo;
                w.step();
            }
            assert_eq!(w.finish().to_bits(), score.to_bits());
        }
        assert!(tightened > 500 * s.forest.groups(), "{tightened}");
    }

    #[test]
    fn the_flat_scorer_gives_bit_identical_scores_and_a_true_maximum() {
        let mut rng = SplitMix64::new(3);
        let mut row = || {
            vec![
                rng.next_f64() * 4.0 - 2.0,
                rng.next_f64(),
                rng.next_f64() * 9.0,
            ]
        };
        let rows: Vec<Vec<f64>> = (0..400).map(|_| row()).collect();
        let f = IsolationForest::fit(&rows, &IForestParams::default(), 5).unwrap();
        let s = IForestScorer::new(&f).unwrap();
        let mut best: f64 = 0.0;
        for _ in 0..2000 {
            let x = row();
            assert_eq!(s.score(&x).to_bits(), f.score(&x).to_bits());
            best = best.max(s.score(&x));
        }
        for x in [[100.0, -50.0, 1e6], [0.0, 0.0, 0.0]] {
            assert_eq!(s.score(&x).to_bits(), f.score(&x).to_bits());
            best = best.max(s.score(&x));
        }
        assert!(
            best <= s.max_score() && s.max_score() < 1.0,
            "{best} {}",
            s.max_score()
        );
    }
}
