//! `smartflow record --out FILE`: records raw venue frames (and REST snapshots, connects and
//! feed statuses) with receive times; `smartflow replay --data FILE` replays them.

use crate::config::Config;
use crate::feeds::recording::{RecordingHeader, RecordingWriter};
use crate::feeds::ws::{now_ms, FeedBatch, RawFrame};
use crate::paper::{resolve_venues, start_feeds};
use crate::pipeline::Fault;
use actix::prelude::*;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct RecordOptions {
    pub config: Config,
    pub out: PathBuf,
    pub duration: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordReport {
    pub out: String,
    pub frames: u64,
    /// Frames not recorded: the file writer fell behind the feeds (its queue holds 65 536).
    pub dropped: u64,
    /// Trades the feeds decoded while recording (a replay of the file gives the same).
    pub trades: u64,
    pub events: u64,
    pub venues: BTreeMap<String, Vec<String>>,
}

pub fn run_record(opts: RecordOptions) -> Result<RecordReport> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = opts.config;
    let out = opts.out;
    let duration = opts.duration;
    System::new().block_on(async move {
        let (venues, names) = resolve_venues(&cfg).await?;
        let depth = cfg
            .feeds
            .venues()
            .into_iter()
            .map(|(v, c)| (v.name().to_string(), c.book_depth))
            .collect();
        let header = RecordingHeader {
            smartflow_recording: 1,
            started_ms: now_ms(),
            venues: names.clone(),
            book_depth: depth,
        };
        let mut writer = RecordingWriter::create(&out, &header)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (raw_tx, mut raw_rx) = mpsc::channel::<RawFrame>(crate::feeds::ws::RAW_QUEUE);
        let (tx, mut rx) = mpsc::channel::<FeedBatch>(8192);
        let (counters, feed_addrs, _) =
            start_feeds(&cfg, &venues, tx, Some(raw_tx), shutdown_rx, &Fault::default())?;
        // The events are not traded here, only counted.
        let mut stop_count = shutdown_tx.subscribe();
        let counter = actix::spawn(async move {
            let (mut trades, mut events) = (0u64, 0u64);
            loop {
                tokio::select! {
                    b = rx.recv() => match b {
                        Some(b) => {
                            events += b.events.len() as u64;
                            trades += b.events.iter().filter(|e| e.as_trade().is_some()).count() as u64;
                        }
                        None => break,
                    },
                    _ = stop_count.changed() => {
                        while let Ok(b) = rx.try_recv() {
                            events += b.events.len() as u64;
                            trades += b.events.iter().filter(|e| e.as_trade().is_some()).count() as u64;
                        }
                        break;
                    }
                }
            }
            (trades, events)
        });
        let mut stop_write = shutdown_tx.subscribe();
        let stop = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tokio::pin!(stop);
        let mut stopping = false;
        loop {
            tokio::select! {
                f = raw_rx.recv() => match f {
                    Some(f) => writer.write(&f)?,
                    None => break,
                },
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    let _ = shutdown_tx.send(true);
                }
                _ = stop_write.changed() => {
                    // Let the feeds close, then take what they sent before stopping.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    while let Ok(f) = raw_rx.try_recv() {
                        writer.write(&f)?;
                    }
                    break;
                }
            }
        }
        drop(feed_addrs);
        let (trades, events) = counter.await.unwrap_or((0, 0));
        let frames = writer.frames;
        writer.finish()?;
        let dropped = counters
            .iter()
            .map(|(_, c)| c.raw_dropped.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        Ok(RecordReport {
            out: out.display().to_string(),
            frames,
            dropped,
            trades,
            events,
            venues: names,
        })
    })
}
