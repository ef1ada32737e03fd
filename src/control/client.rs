//! The CLI side of the control API: `smartflow status` and `smartflow control …`.

use super::api::{Address, ADDRESS_FILE, SOURCE_HEADER, TOKEN_FILE};
use super::Command;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A running session's API, found through its state folder.
pub struct Client {
    url: String,
    token: String,
}

impl Client {
    /// Reads the address and token files; errors when no session is running there.
    pub fn find(state_dir: &Path) -> Result<Self> {
        let addr = state_dir.join(ADDRESS_FILE);
        let Ok(bytes) = std::fs::read(&addr) else {
            bail!(
                "no running session in {} (no {ADDRESS_FILE}; start one with `smartflow paper`)",
                state_dir.display()
            );
        };
        let a: Address = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is unreadable", addr.display()))?;
        let token = std::fs::read_to_string(state_dir.join(TOKEN_FILE))
            .with_context(|| format!("cannot read {TOKEN_FILE} in {}", state_dir.display()))?;
        Ok(Self {
            url: a.url,
            token: token.trim().to_string(),
        })
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(40)))
            .build()
            .into()
    }

    /// `GET path` → (HTTP status, body).
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut r = Self::agent()
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("the session at {} does not answer", self.url))?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }

    /// `POST /commands` → (HTTP status, body with the command's decision record).
    pub fn command(&self, c: &Command) -> Result<(u16, String)> {
        let mut r = Self::agent()
            .post(format!("{}/commands", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header(SOURCE_HEADER, "cli")
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(c)?)
            .with_context(|| format!("the session at {} does not answer", self.url))?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }
}
