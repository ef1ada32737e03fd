//! Byte-level mutations of real inputs, aimed at what breaks parsers: numbers at the edges of
//! every numeric type, broken structure, odd strings, truncation and size.
//!
//! Stable Rust has no coverage-guided fuzzer (cargo-fuzz needs nightly, which a fresh machine
//! here cannot fetch), so this is a seeded, dictionary-driven mutator in the style of
//! libFuzzer's: the same seed gives the same inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Numbers at the edges of `Decimal`, `u64`, `i64`, `f64`, event time and our 1e14 venue cap.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "0.0",
    "1e400",
    "-1e400",
    "1e-400",
    "1e14",
    "100000000000001",
    "99999999999999999999999999999",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "0.00000000000000000000000000001",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4102444800001",
    "253402300800000",
    "NaN",
    "inf",
    "-Infinity",
    "1.",
    ".5",
    "5e",
    "1e+30",
    "0x10",
    "1_000",
    "00000000000000000000000000000000000001",
];

/// Tokens that break or bend JSON, CSV, TOML and the capture formats.
const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "\"\"",
    "\n",
    "\r\n",
    ",,",
    "\u{0}",
    "é",
    "\u{feff}",
    "\\u0000",
    "\\ud800",
    "=",
    "#",
    "' '",
    "[[",
    "]]",
    ": {",
    " <-> ",
    "\"data\":[",
    "\"channel\":",
    "T",
    "Z",
    "-",
    "--",
    "::",
];

/// Strings put where a string was (symbols, coins, wallets, ids).
const STRINGS: &[&str] = &[
    "",
    "BTCUSDT",
    "BTC",
    "?",
    "ÄÖÜ€",
    "0x",
    "\\\"",
    "@107",
    "snapshot",
    "delta",
    " ",
];

/// Largest mutant (bytes); a repeat edit stops there.
pub const MAX_INPUT: usize = 1 << 20;

pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }

    /// Writes into `out` a mutant of a random seed: 1 to 6 stacked edits.
    pub fn mutate(&mut self, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&seeds[self.below(seeds.len())]);
        for _ in 0..1 + self.below(6) {
            self.edit(seeds, out);
        }
        out.truncate(MAX_INPUT);
    }

    fn edit(&mut self, seeds: &[Vec<u8>], b: &mut Vec<u8>) {
        match self.below(12) {
            0 => self.flip_bit(b),
            1 => self.delete_range(b),
            2 => self.copy_range(b),
            3 | 4 => self.insert(b, TOKENS),
            5..=7 => self.replace_number(b),
            8 => self.replace_string(b),
            9 => {
                let at = self.below(b.len() + 1);
                b.truncate(at);
            }
            10 => self.splice(seeds, b),
            _ => self.repeat(b),
        }
    }

    fn flip_bit(&mut self, b: &mut [u8]) {
        if !b.is_empty() {
            let i = self.below(b.len());
            b[i] ^= 1 << self.below(8);
        }
    }

    fn delete_range(&mut self, b: &mut Vec<u8>) {
        if !b.is_empty() {
            let i = self.below(b.len());
            let n = (1 + self.below(16)).min(b.len() - i);
            b.drain(i..i + n);
        }
    }

    fn copy_range(&mut self, b: &mut Vec<u8>) {
        if !b.is_empty() {
            let i = self.below(b.len());
            let n = (1 + self.below(64)).min(b.len() - i);
            let chunk = b[i..i + n].to_vec();
            let at = self.below(b.len() + 1);
            b.splice(at..at, chunk);
        }
    }

    fn insert(&mut self, b: &mut Vec<u8>, dict: &[&str]) {
        let t = dict[self.below(dict.len())].as_bytes();
        let at = self.below(b.len() + 1);
        b.splice(at..at, t.iter().copied());
    }

    /// Replaces one run of number characters (digits, sign, dot, exponent) by an edge number.
    fn replace_number(&mut self, b: &mut Vec<u8>) {
        let starts: Vec<usize> = (0..b.len())
            .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !is_num(b[i - 1])))
            .collect();
        if starts.is_empty() {
            return self.insert(b, NUMBERS);
        }
        let s = starts[self.below(starts.len())];
        let e = (s..b.len()).find(|&i| !is_num(b[i])).unwrap_or(b.len());
        let n = NUMBERS[self.below(NUMBERS.len())].as_bytes();
        b.splice(s..e, n.iter().copied());
    }

    /// Replaces the content of one quoted string, sometimes by a long one.
    fn replace_string(&mut self, b: &mut Vec<u8>) {
        let quotes: Vec<usize> = (0..b.len()).filter(|&i| b[i] == b'"').collect();
        if quotes.len() < 2 {
            return self.insert(b, STRINGS);
        }
        let k = self.below(quotes.len() - 1);
        let (s, e) = (quotes[k] + 1, quotes[k + 1]);
        let new: Vec<u8> = match self.below(8) {
            0 => vec![b'A'; 1 + self.below(8192)],
            _ => STRINGS[self.below(STRINGS.len())].as_bytes().to_vec(),
        };
        b.splice(s..e, new);
    }

    /// Keeps a prefix of this input and a suffix of another seed.
    fn splice(&mut self, seeds: &[Vec<u8>], b: &mut Vec<u8>) {
        let other = &seeds[self.below(seeds.len())];
        let at = self.below(b.len() + 1);
        let from = self.below(other.len() + 1);
        b.truncate(at);
        b.extend_from_slice(&other[from..]);
    }

    /// Repeats one range many times: long arrays, deep nesting, big frames.
    fn repeat(&mut self, b: &mut Vec<u8>) {
        if b.is_empty() {
            return;
        }
        let i = self.below(b.len());
        let n = (1 + self.below(32)).min(b.len() - i);
        let chunk = b[i..i + n].to_vec();
        let times = 1 + self.below(4096);
        let mut rep = Vec::with_capacity(n * times);
        for _ in 0..times {
            if b.len() + rep.len() + n > MAX_INPUT {
                break;
            }
            rep.extend_from_slice(&chunk);
        }
        b.splice(i..i, rep);
    }
}

fn is_num(c: u8) -> bool {
    c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants_and_they_differ_from_the_seed() {
        let seeds = vec![br#"{"p":"65114.20","q":"0.5","T":1633998512068}"#.to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed);
            let mut out = Vec::new();
            (0..200)
                .map(|_| {
                    m.mutate(&seeds, &mut out);
                    out.clone()
                })
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(a.iter().filter(|m| **m != seeds[0]).count() > 150);
        assert!(a.iter().all(|m| m.len() <= MAX_INPUT));
        // Edge numbers do land in number positions.
        assert!(a
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("18446744073709551616")));
    }
}
