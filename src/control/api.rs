//! The local control API of a running session: HTTP on 127.0.0.1 (axum), every request
//! authenticated by the bearer token the session writes to `<state>/control.token` (mode 0600).
//!
//! - `GET /status`: trading state, limits, equity, counters, feeds, latency (JSON);
//! - `GET /positions`: open positions and live orders (JSON);
//! - `POST /commands`: a [`Command`] as JSON (`{"command":"pause"}`, `{"command":"set",
//!   "limit":"max_orders","value":"3"}`); answers with the command's decision record once it
//!   is journaled: 200 when applied, 422 with the reason when refused;
//! - `GET /metrics`: Prometheus text format.
//!
//! No token or a wrong one: 401, and nothing changes. The address is in `<state>/control.json`.

use super::hub::ControlHub;
use super::Command;
use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// File with the session's API token.
pub const TOKEN_FILE: &str = "control.token";
/// File with the running session's API address.
pub const ADDRESS_FILE: &str = "control.json";
/// Header naming who sent a command (`cli`, `telegram`, …); `api` when absent.
pub const SOURCE_HEADER: &str = "x-smartflow-source";

/// Contents of [`ADDRESS_FILE`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Address {
    pub url: String,
    pub pid: u32,
}

#[derive(Clone)]
struct Api {
    hub: Arc<ControlHub>,
    token: Arc<str>,
}

/// A started API; dropping it does not stop the server (the runtime does), [`Served::close`]
/// removes the address and token files.
pub struct Served {
    pub url: String,
    dir: PathBuf,
}

impl Served {
    pub fn close(&self) {
        let _ = std::fs::remove_file(self.dir.join(ADDRESS_FILE));
        let _ = std::fs::remove_file(self.dir.join(TOKEN_FILE));
    }
}

/// Writes a fresh token (0600) and the address file, binds `127.0.0.1:port` (0: any free
/// port) and serves on the current tokio runtime.
pub async fn serve(hub: Arc<ControlHub>, state_dir: &Path, port: u16) -> Result<Served> {
    let token = new_token();
    write_private(&state_dir.join(TOKEN_FILE), token.as_bytes())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("control.port: cannot listen on 127.0.0.1:{port}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let addr = Address {
        url: url.clone(),
        pid: std::process::id(),
    };
    std::fs::write(
        state_dir.join(ADDRESS_FILE),
        serde_json::to_vec_pretty(&addr)?,
    )?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/positions", get(positions))
        .route("/metrics", get(metrics))
        .route("/commands", post(command))
        .with_state(Api {
            hub,
            token: token.into(),
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("control API stopped: {e}");
        }
    });
    Ok(Served {
        url,
        dir: state_dir.to_path_buf(),
    })
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates or replaces `path` readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An older file keeps its mode through `open`: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    Ok(())
}

/// Constant-time comparison of the bearer token.
fn authorized(api: &Api, h: &HeaderMap) -> bool {
    let Some(given) = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), api.token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": "missing or wrong token (see control.token in the state folder)"})),
    )
        .into_response()
}

async fn status(State(api): State<Api>, h: HeaderMap) -> Response {
    if !authorized(&api, &h) {
        return unauthorized();
    }
    Json(api.hub.status()).into_response()
}

async fn positions(State(api): State<Api>, h: HeaderMap) -> Response {
    if !authorized(&api, &h) {
        return unauthorized();
    }
    Json(api.hub.positions()).into_response()
}

async fn metrics(State(api): State<Api>, h: HeaderMap) -> Response {
    if !authorized(&api, &h) {
        return unauthorized();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.hub.metrics.encode(),
    )
        .into_response()
}

async fn command(State(api): State<Api>, h: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&api, &h) {
        return unauthorized();
    }
    let bad = |code: StatusCode, msg: String| {
        (code, Json(serde_json::json!({ "error": msg }))).into_response()
    };
    let cmd: Command = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("bad command: {e}")),
    };
    let source = h
        .get(SOURCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 32)
        .unwrap_or("api");
    let rx = match api.hub.submit(cmd, source) {
        Ok(rx) => rx,
        Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(r)) if r.refused => {
            let why = r.detail["reason"].as_str().unwrap_or("refused").to_string();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({ "error": why, "record": r })),
            )
                .into_response()
        }
        Ok(Ok(r)) => Json(serde_json::json!({ "record": r })).into_response(),
        _ => bad(
            StatusCode::GATEWAY_TIMEOUT,
            "the command was sent but not journaled within 30 s".into(),
        ),
    }
}
