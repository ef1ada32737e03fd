//! Universe rules: the pairs of a venue that fit `universe_quotes` and a 24 h quote-volume band,
//! from the venue's REST metadata (Binance `GET /api/v3/ticker/24hr`, Bybit
//! `GET /v5/market/tickers?category=spot`, Hyperliquid `POST /info {"type":"metaAndAssetCtxs"}`).

use super::config::VenueFeedConfig;
use super::rest::RestClient;
use super::venues::Venue;
use serde_json::Value;

fn keep(cfg: &VenueFeedConfig, quote_volume: f64) -> bool {
    quote_volume >= cfg.universe_min_quote_volume
        && (cfg.universe_max_quote_volume <= 0.0 || quote_volume <= cfg.universe_max_quote_volume)
}

/// Splits a venue symbol with one of the wanted quotes (`GNTBTC` → `GNT/BTC`).
fn split<'a>(sym: &'a str, quotes: &[String]) -> Option<(&'a str, String)> {
    quotes
        .iter()
        .find(|q| sym.len() > q.len() && sym.ends_with(q.as_str()))
        .map(|q| (&sym[..sym.len() - q.len()], q.clone()))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0.0),
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Hyperliquid's perpetuals (`COIN/USDC`) in a `metaAndAssetCtxs` answer that match the rule;
/// delisted and nameless entries are left out (not listed as "?/USDC").
fn hyperliquid_pairs(
    v: &Value,
    cfg: &VenueFeedConfig,
    quotes: &[String],
) -> Result<Vec<String>, String> {
    let (meta, ctxs) = (&v[0]["universe"], &v[1]);
    let (Some(meta), Some(ctxs)) = (meta.as_array(), ctxs.as_array()) else {
        return Err("metaAndAssetCtxs: want [meta, assetCtxs]".into());
    };
    if !quotes.iter().any(|q| q == "USDC") {
        return Ok(Vec::new());
    }
    let listed = meta
        .iter()
        .zip(ctxs)
        .filter(|(m, _)| m["isDelisted"] != true);
    Ok(listed
        .filter(|(_, c)| keep(cfg, num(&c["dayNtlVlm"])))
        .filter_map(|(m, _)| m["name"].as_str().map(|n| format!("{n}/USDC")))
        .collect())
}

/// Pairs (`BASE/QUOTE`) matching the rule, in the venue's order, at most `universe_max`.
pub async fn fetch(
    venue: Venue,
    rest: &RestClient,
    cfg: &VenueFeedConfig,
) -> Result<Vec<String>, String> {
    let quotes: Vec<String> = cfg
        .universe_quotes
        .iter()
        .map(|q| q.to_uppercase())
        .collect();
    let mut out = Vec::new();
    match venue {
        Venue::Binance => {
            let v: Value = serde_json::from_str(&rest.get("/api/v3/ticker/24hr").await?)
                .map_err(|e| format!("bad ticker/24hr: {e}"))?;
            for t in v.as_array().ok_or("ticker/24hr: not an array")? {
                let sym = t["symbol"].as_str().unwrap_or("");
                if let Some((b, q)) = split(sym, &quotes) {
                    if keep(cfg, num(&t["quoteVolume"])) {
                        out.push(format!("{b}/{q}"));
                    }
                }
            }
        }
        Venue::Bybit => {
            let v: Value =
                serde_json::from_str(&rest.get("/v5/market/tickers?category=spot").await?)
                    .map_err(|e| format!("bad tickers: {e}"))?;
            for t in v["result"]["list"]
                .as_array()
                .ok_or("tickers: no result.list")?
            {
                let sym = t["symbol"].as_str().unwrap_or("");
                if let Some((b, q)) = split(sym, &quotes) {
                    if keep(cfg, num(&t["turnover24h"])) {
                        out.push(format!("{b}/{q}"));
                    }
                }
            }
        }
        Venue::Hyperliquid => {
            let body = rest
                .post_json("/info", serde_json::json!({"type": "metaAndAssetCtxs"}))
                .await?;
            let v: Value =
                serde_json::from_str(&body).map_err(|e| format!("bad metaAndAssetCtxs: {e}"))?;
            out = hyperliquid_pairs(&v, cfg, &quotes)?;
        }
    }
    if cfg.universe_max > 0 {
        out.truncate(cfg.universe_max);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameless_and_delisted_hyperliquid_entries_are_left_out() {
        let v = serde_json::json!([
            {"universe": [{"name": "BTC"}, {"szDecimals": 2}, {"name": "MATIC", "isDelisted": true}, {"name": "SOL"}]},
            [{"dayNtlVlm": "5000000"}, {"dayNtlVlm": "5000000"}, {"dayNtlVlm": "5000000"}, {"dayNtlVlm": "5000000"}]
        ]);
        let cfg = VenueFeedConfig::default();
        let pairs = hyperliquid_pairs(&v, &cfg, &["USDC".into()]).unwrap();
        assert_eq!(pairs, vec!["BTC/USDC", "SOL/USDC"]);
        assert!(hyperliquid_pairs(&serde_json::json!({}), &cfg, &["USDC".into()]).is_err());
    }
}
