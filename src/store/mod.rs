//! Persistence in redb: the decision log and the state a restart resumes from.
//!
//! One file, `<state>/smartflow.redb`. Tables:
//! - `records`: sequence number → JSON [`Record`] (the decision log, in journal order);
//! - `record_ids`: record id → sequence number;
//! - `meta`: key → JSON (executor state with open positions and orders, run summary, run status).
//!
//! Every write is one durable (fsync) redb transaction; the journal batches records so commits do
//! not set the pace of a replay.

pub mod fingerprint;
pub mod record;

pub use record::{Record, RecordKind};

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const IDS: TableDefinition<&str, u64> = TableDefinition::new("record_ids");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Meta key of the executor's state (portfolio, live orders, brackets).
pub const META_EXECUTOR: &str = "executor";
/// Meta key of the risk manager's state (trading state, run-time limits, cooldowns).
pub const META_RISK: &str = "risk";
/// Meta key of what the replay in progress runs on ([`fingerprint::Fingerprint`]).
pub const META_FINGERPRINT: &str = "fingerprint";
/// Meta key of the last run's summary.
pub const META_SUMMARY: &str = "summary";
/// Meta key of a paper session's live status (feeds, positions, latency).
pub const META_STATUS: &str = "status";
/// Meta key of the paper session counter.
pub const META_SESSION: &str = "session";
/// Meta key of the run status: `running` until the run completes.
pub const META_RUN: &str = "run";

/// File of the replay store in a state folder.
pub const REPLAY_STORE: &str = "smartflow.redb";
/// File of the paper-trading store in a state folder.
pub const PAPER_STORE: &str = "paper.redb";

pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating the folder and file if needed) the replay store `<dir>/smartflow.redb`.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_file(dir, REPLAY_STORE)
    }

    /// Opens `<dir>/<file>`: [`REPLAY_STORE`] or [`PAPER_STORE`], so a replay never clears a
    /// paper session's log in the same state folder.
    pub fn open_file(dir: &Path, file: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state folder {}", dir.display()))?;
        let path = dir.join(file);
        let db = Database::create(&path).with_context(|| {
            format!(
                "cannot open the store {} (is another smartflow using it?)",
                path.display()
            )
        })?;
        let w = db.begin_write()?;
        {
            w.open_table(RECORDS)?;
            w.open_table(IDS)?;
            w.open_table(META)?;
        }
        w.commit()?;
        Ok(Self { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes every record and meta entry (a fresh run).
    pub fn clear(&self) -> Result<()> {
        let w = self.db.begin_write()?;
        w.delete_table(RECORDS)?;
        w.delete_table(IDS)?;
        w.delete_table(META)?;
        {
            w.open_table(RECORDS)?;
            w.open_table(IDS)?;
            w.open_table(META)?;
        }
        w.commit()?;
        Ok(())
    }

    /// Number of records in the log.
    pub fn len(&self) -> Result<u64> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(RECORDS)?.len()?)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Appends records (sequence numbers follow the last one) and sets meta keys, in one
    /// durable transaction.
    pub fn append(&self, records: &[Record], meta: &[(&str, Vec<u8>)]) -> Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(RECORDS)?;
            let mut ids = w.open_table(IDS)?;
            let first = t.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
            for (seq, r) in (first..).zip(records) {
                let json = serde_json::to_vec(r)?;
                t.insert(seq, json.as_slice())?;
                ids.insert(r.id.as_str(), seq)?;
            }
            let mut m = w.open_table(META)?;
            for (k, v) in meta {
                m.insert(*k, v.as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }

    /// All records in journal order.
    pub fn records(&self) -> Result<Vec<Record>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(RECORDS)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for e in t.iter()? {
            let (_, v) = e?;
            out.push(serde_json::from_slice(v.value()).context("corrupt record in the store")?);
        }
        Ok(out)
    }

    /// One record by id (`sig-3`, `ord-12`, …).
    pub fn record(&self, id: &str) -> Result<Option<Record>> {
        let r = self.db.begin_read()?;
        let ids = r.open_table(IDS)?;
        let Some(seq) = ids.get(id)?.map(|g| g.value()) else {
            return Ok(None);
        };
        let t = r.open_table(RECORDS)?;
        let v = t.get(seq)?.context("record id points to no record")?;
        Ok(Some(serde_json::from_slice(v.value())?))
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(key)?.map(|g| g.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, ts: i64) -> Record {
        let mut r = Record::new(id.into(), RecordKind::Signal, ts, "X/BTC");
        r.detail = serde_json::json!({ "score": 80.5 });
        r
    }

    #[test]
    fn append_read_lookup_meta_and_clear_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = Store::open(dir.path()).unwrap();
            st.append(
                &[rec("sig-1", 5), rec("sig-2", 6)],
                &[(META_RUN, b"running".to_vec())],
            )
            .unwrap();
            st.append(&[rec("sig-3", 7)], &[]).unwrap();
        }
        let st = Store::open(dir.path()).unwrap();
        let all = st.records().unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["sig-1", "sig-2", "sig-3"]
        );
        assert_eq!(st.record("sig-2").unwrap().unwrap(), rec("sig-2", 6));
        assert!(st.record("sig-9").unwrap().is_none());
        assert_eq!(st.meta(META_RUN).unwrap().as_deref(), Some(&b"running"[..]));
        st.clear().unwrap();
        assert!(st.is_empty().unwrap());
        assert!(st.meta(META_RUN).unwrap().is_none());
    }
}
