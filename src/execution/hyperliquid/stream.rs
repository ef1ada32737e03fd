//! The account's websocket streams: `orderUpdates` (an order's status: open, filled,
//! canceled, triggered, rejected, marginCanceled, …) and `userFills` (fills with fee and tid;
//! the first frame is a snapshot of recent fills, deduplicated by tid downstream). Frames
//! become [`Report`]s for the venue client, the same ones the worker's polls make, so a fill
//! seen twice (stream and poll) is applied once. The connection heals itself (backoff 1 → 30
//! s); what happened while it was down comes from the worker's polls.

use super::api::parse_fill;
use super::worker::Report;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::mpsc::Sender;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A status of `orderUpdates` or `orderStatus`, by cloid.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub cloid: String,
    pub oid: u64,
    pub status: String,
}

/// What one frame says; malformed items are skipped (and counted by the caller's log).
pub fn reports_of(frame: &str) -> Result<Vec<Report>, String> {
    let v: Value = serde_json::from_str(frame).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    match v["channel"].as_str() {
        Some("orderUpdates") => {
            for u in v["data"].as_array().into_iter().flatten() {
                let o = &u["order"];
                let (Some(cloid), Some(oid), Some(status)) =
                    (o["cloid"].as_str(), o["oid"].as_u64(), u["status"].as_str())
                else {
                    continue;
                };
                out.push(Report::Status(StatusUpdate {
                    cloid: cloid.to_ascii_lowercase(),
                    oid,
                    status: status.to_string(),
                }));
            }
        }
        // `userFills` and the `user` (userEvents) channel carry fills the same way.
        Some("userFills") | Some("user") => {
            for f in v["data"]["fills"].as_array().into_iter().flatten() {
                match parse_fill(f) {
                    Ok(f) => out.push(Report::Fill(f)),
                    Err(e) => out.push(Report::Trouble(format!("stream fill: {e}"))),
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Streams `user`'s order updates and fills from `url` into `reports` until the receiver is
/// gone; on its own thread (a small runtime of its own).
pub fn spawn(url: String, user: String, reports: Sender<Report>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("hyperliquid-user-stream".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(reports.send(Report::Trouble(format!("stream: {e}")))),
            };
            rt.block_on(run(url, user, reports));
        })
        .map(drop)
}

async fn run(url: String, user: String, reports: Sender<Report>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match session(&url, &user, &reports).await {
            Ok(()) => return, // the client is gone
            Err(e) => {
                if reports
                    .send(Report::Trouble(format!("user stream: {e}; reconnecting")))
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One connection: subscribes, then forwards frames; `Ok` when the client is gone.
async fn session(url: &str, user: &str, reports: &Sender<Report>) -> Result<(), String> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    let (mut tx, mut rx) = ws.split();
    for kind in ["orderUpdates", "userFills"] {
        let sub = json!({"method": "subscribe", "subscription": {"type": kind, "user": user}});
        tx.send(Message::text(sub.to_string()))
            .await
            .map_err(|e| e.to_string())?;
    }
    // The venue closes a connection silent for 60 s.
    let mut ping = tokio::time::interval(Duration::from_secs(50));
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    for r in reports_of(&t).unwrap_or_else(|e| vec![Report::Trouble(e)]) {
                        if reports.send(r).is_err() {
                            return Ok(());
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed by the venue".into()),
            },
            _ = ping.tick() => {
                let p = json!({"method": "ping"}).to_string();
                tx.send(Message::text(p)).await.map_err(|e| e.to_string())?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real frames: bytex_live_payloads/ws_orderUpdates.json and
    /// ws_user_fills_channel_user.json (their cloid placeholder replaced by a real-shaped one).
    #[test]
    fn real_frames_become_reports() {
        let upd = r#"{"channel":"orderUpdates","data":[{"order":{"coin":"BTC","side":"B","limitPx":"83000.0","sz":"0.01","oid":556696349186,"timestamp":1790360256851,"origSz":"0.01","cloid":"0x0000000000000000000000000000ABCD"},"status":"open","statusTimestamp":1790360256851}]}"#;
        let r = reports_of(upd).unwrap();
        assert_eq!(
            r,
            vec![Report::Status(StatusUpdate {
                cloid: "0x0000000000000000000000000000abcd".into(),
                oid: 556_696_349_186,
                status: "open".into()
            })]
        );
        let fills = r#"{"channel":"user","data":{"fills":[{"coin":"BTC","px":"83843.0","sz":"0.31975","side":"A","time":1790357129742,"startPosition":"1.5197585293","dir":"Sell","closedPnl":"86.62649561","hash":"0xaa84","oid":556657630865,"crossed":true,"fee":"18.01551309","tid":246814713305894,"cloid":"0x0000000000000000000000000000abcd","feeToken":"USDC","twapId":null}]}}"#;
        let r = reports_of(fills).unwrap();
        assert!(matches!(&r[..], [Report::Fill(f)] if f.tid == 246_814_713_305_894));
        assert!(reports_of("{").is_err());
        assert!(reports_of(r#"{"channel":"pong"}"#).unwrap().is_empty());
    }
}
