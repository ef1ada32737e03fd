//! Message catalogs (one TOML file per language in `locales/`, built into the binary) and the
//! escaping of text sent in Telegram's HTML parse mode.
//!
//! Every message is a catalog key; placeholders `{name}` are filled by [`Catalog::fill`] with
//! values escaped by [`html`] (instrument names, ids, numbers, reasons: anything that did not
//! come from the catalog itself), so `<`, `>` and `&` in them never break a message. HTML mode
//! was chosen over MarkdownV2: only three characters need escaping, none of `.`, `-`, `_`, `(`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A bot language (`[telegram] language`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Pl,
}

const EN: &str = include_str!("locales/en.toml");
const PL: &str = include_str!("locales/pl.toml");

/// One language's messages.
#[derive(Clone, Debug)]
pub struct Catalog {
    messages: BTreeMap<String, String>,
}

impl Catalog {
    /// The built-in catalog of `lang`.
    pub fn new(lang: Lang) -> Self {
        let text = match lang {
            Lang::En => EN,
            Lang::Pl => PL,
        };
        Self::parse(text).expect("built-in catalogs parse (tested)")
    }

    /// Parses a catalog file: a flat table of strings.
    pub fn parse(text: &str) -> Result<Self> {
        let messages: BTreeMap<String, String> =
            toml::from_str(text).context("a message catalog must be a flat table of strings")?;
        if messages.is_empty() {
            bail!("empty message catalog");
        }
        Ok(Self { messages })
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.messages.keys()
    }

    /// The message `key` (the key itself when missing, so a gap shows instead of vanishing).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.messages.get(key).map_or(key, String::as_str)
    }

    /// The message `key` with each `{name}` replaced by its value; values must already be
    /// escaped ([`html`]) or be catalog text.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.get(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }
}

/// Escapes text for Telegram's HTML parse mode (`&`, `<`, `>`; quotes need no escaping outside
/// attributes).
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Checks that `text` is well-formed for Telegram's HTML mode as we use it: only `<b>`, `</b>`,
/// `<i>`, `</i>`, `<code>`, `</code>` tags, balanced, and `&` only in `&amp;`, `&lt;`, `&gt;`.
/// Errors name the offending part (tests run every message through it).
pub fn check_html(text: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('&') {
            if !["amp;", "lt;", "gt;"].iter().any(|e| after.starts_with(e)) {
                let near: String = after.chars().take(8).collect();
                return Err(format!("bare & before {near:?}"));
            }
            rest = after;
            continue;
        }
        let end = tail
            .find('>')
            .ok_or_else(|| format!("unclosed tag at {tail:?}"))?;
        let tag = &tail[1..end];
        match tag {
            "b" | "i" | "code" => open.push(tag),
            "/b" | "/i" | "/code" => {
                if open.pop() != Some(&tag[1..]) {
                    return Err(format!("unbalanced </{}>", &tag[1..]));
                }
            }
            _ => return Err(format!("unexpected tag <{tag}>")),
        }
        rest = &tail[end + 1..];
    }
    match open.last() {
        Some(t) => Err(format!("<{t}> not closed")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_every_key_and_valid_html() {
        let (en, pl) = (Catalog::new(Lang::En), Catalog::new(Lang::Pl));
        let a: Vec<&String> = en.keys().collect();
        let b: Vec<&String> = pl.keys().collect();
        assert_eq!(a, b, "en.toml and pl.toml differ in keys");
        for c in [&en, &pl] {
            for k in c.keys() {
                let text = c.get(k);
                assert!(!text.trim().is_empty(), "{k} is empty");
                check_html(text).unwrap_or_else(|e| panic!("{k}: {e}"));
            }
        }
        // Placeholders match between languages.
        let names = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split('}').next().map(String::from))
                .collect();
            v.sort();
            v
        };
        for k in en.keys() {
            assert_eq!(names(en.get(k)), names(pl.get(k)), "placeholders of {k}");
        }
    }

    #[test]
    fn escaped_values_never_break_a_message() {
        let c = Catalog::new(Lang::En);
        let hostile = ["A&B<x>/BTC", "1_000.5-(2)", "<b>", "R&D"];
        for v in hostile {
            let m = c.fill(
                "alert_refusal",
                &[("instrument", &html(v)), ("reasons", "x")],
            );
            check_html(&m).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
        assert!(check_html("a <b>b</b> &amp; c").is_ok());
        assert!(check_html("a & b").is_err());
        assert!(check_html("<b>open").is_err());
        assert!(check_html("<script>").is_err());
    }
}
