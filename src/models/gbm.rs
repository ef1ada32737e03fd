//! Gradient-boosted trees (LightGBM, trained by `scripts/train_gbm.py`) run through ONNX Runtime.
//!
//! ONNX Runtime is loaded at run time (`ort` with `load-dynamic`): from `ORT_DYLIB_PATH`, else from
//! the `onnxruntime` Python package (`pip install --no-deps onnxruntime==1.31.1`), found by asking
//! `python3` where it lives. The model's input is `input` (float32, `[rows, features]`) and its
//! output `probabilities` (float32, `[rows, 2]`, column 1 = pump).

use anyhow::{anyhow, bail, Context, Result};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// How to install the runtime, for error messages.
pub const INSTALL_HINT: &str =
    "install ONNX Runtime with `pip install --no-deps onnxruntime==1.31.1` \
     (or point ORT_DYLIB_PATH at libonnxruntime.so), or run with detector.mode = \"rules\"";

/// Finds `libonnxruntime.so`: `ORT_DYLIB_PATH`, else the Python package's `capi` folder.
pub fn find_runtime() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "ORT_DYLIB_PATH={} is not a file; {INSTALL_HINT}",
            p.display()
        );
    }
    let python = std::env::var("SMARTFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output();
    if let Ok(out) = out {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut libs: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                    })
                    .collect();
                libs.sort();
                if let Some(p) = libs.pop() {
                    return Ok(p);
                }
            }
        }
    }
    bail!("ONNX Runtime not found; {INSTALL_HINT}")
}

/// Loads ONNX Runtime once per process.
pub fn ensure_runtime() -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    let r = ENV.get_or_init(|| {
        let path = find_runtime().map_err(|e| e.to_string())?;
        let env = ort::init_from(&path)
            .map_err(|e| format!("cannot load {}: {e}; {INSTALL_HINT}", path.display()))?
            .with_name("smartflow")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "ONNX Runtime loaded");
        Ok(env)
    });
    r.as_ref().map_err(|e| anyhow!("{e}"))
}

/// A LightGBM model in ONNX form. Cheap to clone (shared session).
#[derive(Clone)]
pub struct Gbm {
    session: Arc<Mutex<Session>>,
    pub n_features: usize,
}

impl std::fmt::Debug for Gbm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gbm({} features)", self.n_features)
    }
}

impl Gbm {
    pub fn load(path: &Path, n_features: usize) -> Result<Self> {
        let env = ensure_runtime()?;
        let session = Session::builder(env)
            .map_err(|e| anyhow!("ONNX session: {e}"))?
            .with_intra_threads(1)
            .map_err(|e| anyhow!("ONNX session options: {e}"))?
            .commit_from_file(path)
            .with_context(|| format!("cannot load ONNX model {}", path.display()))?;
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            n_features,
        })
    }

    /// Pump probabilities of `rows` (row-major, `n_features` each).
    pub fn predict(&self, rows: &[f32]) -> Result<Vec<f32>> {
        let n = rows.len() / self.n_features;
        let input = TensorRef::from_array_view(([n, self.n_features], rows))
            .map_err(|e| anyhow!("ONNX input: {e}"))?;
        let mut s = self
            .session
            .lock()
            .map_err(|_| anyhow!("ONNX session poisoned"))?;
        let out = s
            .run(ort::inputs!["input" => input])
            .map_err(|e| anyhow!("ONNX run: {e}"))?;
        let (shape, probs) = out["probabilities"]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow!("ONNX output: {e}"))?;
        let cols = shape.get(1).copied().unwrap_or(1).max(1) as usize;
        Ok((0..n).map(|i| probs[i * cols + cols - 1]).collect())
    }

    /// Probability of one row.
    pub fn predict_one(&self, x: &[f32]) -> Result<f32> {
        Ok(self.predict(x)?[0])
    }
}
