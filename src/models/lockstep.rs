//! Decision trees laid out for branch-free evaluation, several trees at a time.
//!
//! Walking one tree is a chain of unpredictable branches (~15 cycles each when mispredicted). Here
//! every node, leaves included, is a step `next[go_second]`: a leaf steps to itself, so a tree can
//! be walked a fixed number of steps (its depth) with no branch on the data, and `G` trees are
//! walked side by side so that their loads overlap. Leaf values are added in tree order, one by
//! one, so a sum is bit-identical to walking the trees one after the other. A leaf keeps its
//! value in its own step (where a split keeps its test), so reading it touches the cache line the
//! walk just loaded, and a forest takes a quarter (f64 thresholds) to a third (f32) less memory:
//! what a `paper` session, whose caches go cold between messages, waits on.

/// Inputs a forest can split on. A row is walked as an array of this many (the caller pads it), and
/// the step table's length is a power of two: an index masked to either needs no bounds check,
/// which is a third of a step's instructions.
pub const MAX_FEATURES: usize = 64;

/// Flag of a step index that points at a leaf. A group's walk stops after the round in which
/// every tree reached its leaf, instead of one round later, when no tree moved: ~1 round of
/// the ~7.4 a GBM group takes. Indexing masks the flag away (a table has fewer than 2^31 steps).
const LEAF: u32 = 1 << 31;

/// A split's threshold type; a leaf's f64 value is stored in the bits of a threshold and a
/// feature index (exactly: [`Threshold::unpack`] of [`Threshold::pack`] is the same f64).
pub trait Threshold: Copy + Default {
    fn pack(value: f64) -> (Self, u32);
    fn unpack(self, feature: u32) -> f64;
}

impl Threshold for f64 {
    fn pack(value: f64) -> (Self, u32) {
        (value, 0)
    }
    #[inline(always)]
    fn unpack(self, _: u32) -> f64 {
        self
    }
}

/// The high 32 bits in the threshold, the low in the feature (read back as bits, never as a
/// float, so a NaN pattern in the high half is harmless).
impl Threshold for f32 {
    fn pack(value: f64) -> (Self, u32) {
        let b = value.to_bits();
        (f32::from_bits((b >> 32) as u32), b as u32)
    }
    #[inline(always)]
    fn unpack(self, feature: u32) -> f64 {
        f64::from_bits((u64::from(self.to_bits()) << 32) | u64::from(feature))
    }
}

/// One step: a split (`feature`, `threshold`) or, when both `next` are itself (flagged [`LEAF`]),
/// a leaf whose value `threshold` and `feature` hold ([`Threshold::pack`]; the walk's test on a
/// leaf is moot). An index that points at a leaf carries the flag.
#[derive(Clone, Copy, Debug)]
struct Step<T> {
    threshold: T,
    feature: u32,
    /// `[first, second]`: where an input that passes the test goes, and where one that fails.
    next: [u32; 2],
}

/// A tree as its builder describes it: node `i` is a leaf `(value)` or a split.
pub enum Node<T> {
    Leaf(f64),
    Split {
        feature: u32,
        threshold: T,
        first: usize,
        second: usize,
    },
}

/// A forest of trees in groups of `G`. Slot 0 is a leaf of value 0 that pads the last group; the
/// step table is padded with copies of it to a power of two.
#[derive(Clone, Debug)]
pub struct Forest<T, const G: usize> {
    steps: Vec<Step<T>>,
    /// Steps in use (the rest is padding).
    used: usize,
    /// Root slot of every tree, padded with slot 0 to a multiple of `G`.
    roots: Vec<u32>,
    /// Per group: the most steps any of its trees needs.
    depth: Vec<u32>,
    trees: usize,
}

impl<T: Threshold, const G: usize> Forest<T, G> {
    pub fn new() -> Self {
        let (threshold, feature) = T::pack(0.0);
        Self {
            steps: vec![Step {
                threshold,
                feature,
                next: [LEAF, LEAF],
            }],
            used: 1,
            roots: Vec::new(),
            depth: Vec::new(),
            trees: 0,
        }
    }

    /// Adds a tree given as nodes with the root at index 0. Splits must name valid children (the
    /// builders check them) and form a tree; a split on a feature ≥ [`MAX_FEATURES`] is an error.
    pub fn push(&mut self, nodes: &[Node<T>]) -> anyhow::Result<()> {
        for n in nodes {
            if let Node::Split { feature, .. } = n {
                anyhow::ensure!(
                    (*feature as usize) < MAX_FEATURES,
                    "split on feature {feature}: at most {MAX_FEATURES} inputs"
                );
            }
        }
        self.steps.truncate(self.used);
        anyhow::ensure!(
            self.steps.len() + nodes.len() < LEAF as usize,
            "a forest of more than 2^31 steps"
        );
        let base = self.steps.len() as u32;
        // A node's slot, flagged when it is a leaf.
        let slot = |i: usize| match nodes.get(i) {
            Some(Node::Leaf(_)) => (base + i as u32) | LEAF,
            _ => base + i as u32,
        };
        for (i, n) in nodes.iter().enumerate() {
            let me = base + i as u32;
            match *n {
                Node::Leaf(v) => {
                    let (threshold, feature) = T::pack(v);
                    self.steps.push(Step {
                        threshold,
                        feature,
                        next: [me | LEAF, me | LEAF],
                    });
                }
                Node::Split {
                    feature,
                    threshold,
                    first,
                    second,
                } => {
                    self.steps.push(Step {
                        threshold,
                        feature,
                        next: [slot(first), slot(second)],
                    });
                }
            }
        }
        let d = depth_of(nodes);
        if self.trees.is_multiple_of(G) {
            self.roots.extend([LEAF; G]);
            self.depth.push(0);
        }
        self.roots[self.trees] = slot(0);
        let g = self.trees / G;
        self.depth[g] = self.depth[g].max(d);
        self.trees += 1;
        self.used = self.steps.len();
        let padded = self.used.next_power_of_two();
        self.steps.resize(padded, self.steps[0]);
        Ok(())
    }

    pub fn trees(&self) -> usize {
        self.trees
    }

    /// Adds to `sum`, in tree order, the leaf values of the trees of group `g` for input `x`
    /// (padded to [`MAX_FEATURES`]). `passes(x, threshold)` is the split test. The walk stops
    /// after the level at which the last tree reached its leaf: LightGBM's leaf-wise trees are up
    /// to ~20 deep, the paths of most rows far shorter.
    #[inline(always)]
    pub fn add_group(
        &self,
        g: usize,
        x: &[T; MAX_FEATURES],
        passes: impl Fn(T, T) -> bool,
        sum: &mut f64,
    ) {
        let mut at = [0u32; G];
        at.copy_from_slice(&self.roots[g * G..(g + 1) * G]);
        let mask = self.steps.len() - 1; // a power of two less one
        let steps = &self.steps[..=mask];
        for _ in 0..self.depth[g] {
            let mut at_split = 0u32;
            for a in at.iter_mut() {
                // Both masks only clear the leaf flag from valid indexes (checked when built).
                let s = &steps[*a as usize & mask];
                let v = x[s.feature as usize & (MAX_FEATURES - 1)];
                let n = s.next[!passes(v, s.threshold) as usize];
                at_split |= !n;
                *a = n;
            }
            if at_split & LEAF == 0 {
                break;
            }
        }
        let n = G.min(self.trees - g * G);
        for &a in &at[..n] {
            let s = &steps[a as usize & mask];
            *sum += s.threshold.unpack(s.feature);
        }
    }

    /// Reads every step in use once, so that the forest is in the cache of the core that calls
    /// it ([`crate::actors::idle_spin`]); returns a checksum so the reads are not optimised away.
    pub fn warm(&self) -> u64 {
        // A step is 16 bytes or more, so one in two touches every 64-byte line at least once.
        let acc = self.steps[..self.used]
            .iter()
            .step_by(2)
            .fold(0u64, |a, s| a.wrapping_add(u64::from(s.next[0])));
        std::hint::black_box(acc)
    }

    /// Groups of `G` trees (the last may be partial).
    pub fn groups(&self) -> usize {
        self.depth.len()
    }
}

/// Splits on the longest path from the root (node 0) to a leaf.
fn depth_of<T>(nodes: &[Node<T>]) -> u32 {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0u32)];
    while let Some((i, d)) = stack.pop() {
        if d as usize > nodes.len() {
            break; // a cycle: builders check for them, this only keeps the walk finite
        }
        match nodes[i] {
            Node::Leaf(_) => deepest = deepest.max(d),
            Node::Split { first, second, .. } => {
                stack.push((first, d + 1));
                stack.push((second, d + 1));
            }
        }
    }
    deepest
}

impl<T: Threshold, const G: usize> Default for Forest<T, G> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_value_comes_back_bit_for_bit_from_either_threshold_type() {
        let values = [
            0.0,
            -0.0,
            1.5e-310, // subnormal
            -3.25,
            f64::MAX,
            f64::from_bits(0x7ff8_0000_0000_0001), // a NaN with a payload
            f64::from_bits(0x7fa0_0000_dead_beef), // high half a signalling f32 NaN
            0.1 + 0.2,
        ];
        for v in values {
            let (t, f) = f32::pack(v);
            assert_eq!(t.unpack(f).to_bits(), v.to_bits(), "f32 slot, {v:e}");
            let (t, f) = f64::pack(v);
            assert_eq!(t.unpack(f).to_bits(), v.to_bits(), "f64 slot, {v:e}");
        }
    }

    #[test]
    fn a_group_walk_stops_at_the_level_where_its_last_tree_reached_a_leaf() {
        const GROUP: usize = 2;
        let mut f = Forest::<f64, GROUP>::new();
        // A chain 3 splits deep: x0 < 1 ends at level 1, x0 < 2 at level 2, else at level 3.
        let chain = |v: f64| {
            let mut nodes = Vec::new();
            for d in 0..3 {
                let i = nodes.len();
                nodes.push(Node::Split {
                    feature: 0,
                    threshold: f64::from(d) + 1.0,
                    first: i + 1,
                    second: i + 2,
                });
                nodes.push(Node::Leaf(v * 10.0 + f64::from(d)));
            }
            nodes.push(Node::Leaf(v * 10.0 + 3.0));
            nodes
        };
        f.push(&chain(1.0)).unwrap();
        f.push(&chain(2.0)).unwrap();
        for (x0, levels, sum) in [
            (0.5, 1, 10.0 + 20.0),
            (1.5, 2, 11.0 + 21.0),
            (9.0, 3, 13.0 + 23.0),
        ] {
            let mut x = [0.0; MAX_FEATURES];
            x[0] = x0;
            let tests = std::cell::Cell::new(0);
            let mut s = 0.0;
            let passes = |v: f64, t: f64| {
                tests.set(tests.get() + 1);
                v < t
            };
            f.add_group(0, &x, passes, &mut s);
            assert_eq!(s, sum, "x0 = {x0}");
            assert_eq!(
                tests.get(),
                levels * GROUP,
                "x0 = {x0}: one level walked per split taken"
            );
        }
    }

    #[test]
    fn walks_each_tree_to_its_leaf_and_sums_in_tree_order() {
        const GROUP: usize = 4;
        let mut f = Forest::<f64, GROUP>::new();
        let row = |a: f64, b: f64| {
            let mut x = [0.0; MAX_FEATURES];
            (x[0], x[1]) = (a, b);
            x
        };
        // Tree: x0 < 1 ? (x1 < 5 ? 10 : 20) : 30; then GROUP one-leaf trees of 0.5 (two groups).
        f.push(&[
            Node::Split {
                feature: 0,
                threshold: 1.0,
                first: 1,
                second: 2,
            },
            Node::Split {
                feature: 1,
                threshold: 5.0,
                first: 3,
                second: 4,
            },
            Node::Leaf(30.0),
            Node::Leaf(10.0),
            Node::Leaf(20.0),
        ])
        .unwrap();
        for _ in 0..GROUP {
            f.push(&[Node::Leaf(0.5)]).unwrap();
        }
        assert_eq!((f.trees(), f.groups()), (GROUP + 1, 2));
        let ones = 0.5 * GROUP as f64;
        let total = |x: [f64; MAX_FEATURES]| {
            let mut s = 0.0;
            for g in 0..f.groups() {
                f.add_group(g, &x, |v, t| v < t, &mut s);
            }
            s
        };
        assert_eq!(total(row(0.0, 0.0)), 10.0 + ones);
        assert_eq!(total(row(0.0, 5.0)), 20.0 + ones);
        assert_eq!(total(row(1.0, 0.0)), 30.0 + ones);
        assert_eq!(total(row(f64::NAN, 0.0)), 30.0 + ones); // NaN fails every test
                                                            // A split on an input past the padded row is refused.
        let wide = Node::Split {
            feature: MAX_FEATURES as u32,
            threshold: 0.0,
            first: 1,
            second: 1,
        };
        assert!(f.push(&[wide, Node::Leaf(1.0)]).is_err());
    }
}
